"""The per-release message-type table against Slurm's own enum, release by release."""

import pytest

from pyslurmrpc.wire.msg_types_by_release import MSG_TYPES_BY_RELEASE, msg_type_name, msg_type_number, table_digest
from pyslurmrpc.wire.versions import RELEASES, VERSION_CODES

#: digests of the tables as scripts/check_msgtypes_against_source found them equal to each release's
#: slurm_msg_type_t (tags in scripts/msgtypes_source.py); the source is never vendored, so the check
#: against it is a maintainer script and these pin its result here, where every run checks them
VERIFIED_DIGESTS = {
    "17.11": "ec85e4b922c9ef92", "18.08": "a8c5b2c3f982d651", "19.05": "62564a76a2f77ddb",
    "20.02": "7e0231fd68ba73ab", "20.11": "c3a76502c251e751", "21.08": "8d81090e76e53133",
    "22.05": "4950fc5a3a3ba04b", "23.02": "3e5d65f78f185e18", "23.11": "31cb0fb3cd076955",
    "24.05": "2ac4937bb8c1c6fe", "24.11": "93eeee95926601f0", "25.05": "e40addfadc02702f",
    "25.11": "daee3c7692464115", "26.05": "2fcc3712fd72cec3",
}


@pytest.mark.parametrize("release", list(VERIFIED_DIGESTS))
def test_table_is_the_one_verified_against_that_releases_enum(release):
    assert table_digest(MSG_TYPES_BY_RELEASE[VERSION_CODES[release]]) == VERIFIED_DIGESTS[release]


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
