"""The per-release message-type table against Slurm's own enum, release by release."""

import pytest

from pyslurmrpc.wire.msg_types_by_release import MSG_TYPES_BY_RELEASE, msg_type_name, msg_type_number
from pyslurmrpc.wire.versions import RELEASES, VERSION_CODES

import msgtypes_source as source


@pytest.mark.skipif(not source.available(), reason="the Slurm source mirror is not on this machine")
@pytest.mark.parametrize("release", list(source.TAGS))
def test_table_is_the_enum_of_that_release(release):
    assert MSG_TYPES_BY_RELEASE[VERSION_CODES[release]] == source.parse_enum(source.enum_text(source.TAGS[release]))


def test_every_release_has_a_table():
    assert set(MSG_TYPES_BY_RELEASE) == {r.code for r in RELEASES}
    for code, table in MSG_TYPES_BY_RELEASE.items():
        assert len(table) > 200, code


@pytest.mark.parametrize("release, number, name", [
    ("19.05", 5009, "REQUEST_CHECKPOINT"),
    ("20.02", 5009, "DEFUNCT_RPC_5009"),
    ("23.02", 5009, "RESPONSE_STEP_BY_CONTAINER_ID"),
    ("17.11", 2015, "REQUEST_BLOCK_INFO"),
    ("20.02", 2015, "REQUEST_CONFIG"),
    ("22.05", 2003, "REQUEST_JOB_INFO"),
    ("26.05", 1029, "REQUEST_NODE_HEALTH_CHECK"),
])
def test_a_number_is_named_as_its_release_names_it(release, number, name):
    assert msg_type_name(VERSION_CODES[release], number) == name
    assert msg_type_number(VERSION_CODES[release], name) == number


def test_types_added_later_are_absent_from_older_releases():
    assert msg_type_name(VERSION_CODES["25.11"], 1029) is None
    assert msg_type_name(VERSION_CODES["17.11"], 2200) is None


def test_unknown_version_lists_every_name_the_number_had():
    assert msg_type_name(0x1234, 2015).split(" / ") == ["REQUEST_CONFIG", "DEFUNCT_REQUEST_BLOCK_INFO",
                                                        "REQUEST_BLOCK_INFO"]
    assert msg_type_name(None, 65000) is None
