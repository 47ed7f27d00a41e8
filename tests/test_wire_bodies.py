"""The body table: one frozen dataclass per C struct, what decode returns and encode takes."""

from __future__ import annotations

import dataclasses

import pytest

from pyslurmrpc.wire import (
    BODY_TABLE, CheckpointMsg, MungeAuthCred, NoneAuthCred, decode_message, encode_message,
)
from pyslurmrpc.wire import bodies
from pyslurmrpc.wire.bodies import _entry, checkpoint_msg_t

from fixtures_data import FIXTURES

#: every recorded frame (the 19.05 recordings and the 22.05 slurmctld ones), not the fuzz inputs
RECORDED = sorted(p for p in FIXTURES.glob("**/*.bin") if "fuzz" not in p.parts)


def _camel(struct_name: str) -> str:
    """checkpoint_task_comp_msg_t -> CheckpointTaskCompMsg"""
    return "".join(part.capitalize() for part in struct_name[:-2].split("_"))


def test_every_dataclass_is_named_after_its_struct_and_lists_its_fields_in_wire_order():
    schemas = {id(v): k for k, v in vars(bodies).items() if k.endswith("_msg_t")}
    assert set(schemas.values()) >= {"checkpoint_msg_t", "return_code_msg_t", "ping_msg_t"}
    for msg_type, (schema, cls) in BODY_TABLE.items():
        assert cls.__name__ == _camel(schemas[id(schema)]), msg_type
        assert [f.name for f in dataclasses.fields(cls)] == [sc.name for sc in schema.subcons]
        assert cls.__dataclass_params__.frozen


def test_a_dataclass_that_differs_from_its_schema_is_refused_at_import():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Swapped(bodies.Body):
        data: int
        op: int
        job_id: int
        step_id: int
        image_dir: str | None = None

    with pytest.raises(TypeError, match="Swapped"):
        _entry(checkpoint_msg_t, Swapped)


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.name)
def test_recordings_decode_to_the_tables_dataclasses(path):
    message = decode_message(path.read_bytes())
    assert type(message.body) is BODY_TABLE[message.msg_type].cls
    for entry in message.header.ret_list:
        assert type(entry.body) is BODY_TABLE[entry.msg_type].cls
    assert type(message.auth) in (MungeAuthCred, NoneAuthCred, type(None))


def test_decoded_bodies_are_frozen_values():
    frame = (FIXTURES / "create_imagedir.request.bin").read_bytes()
    body = decode_message(frame).body
    built = CheckpointMsg(op=body.op, data=body.data, job_id=body.job_id, step_id=body.step_id,
                          image_dir=body.image_dir)
    assert body == built and hash(body) == hash(built) and repr(body) == repr(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        body.job_id = 3
    changed = dataclasses.replace(body, job_id=3)
    assert decode_message(encode_message(dataclasses.replace(decode_message(frame), body=changed))).body == changed


def test_envelope_classes_fix_plugin_and_hide_the_credential():
    frame = (FIXTURES / "create_imagedir.request.bin").read_bytes()
    auth = decode_message(frame).auth
    assert type(auth) is MungeAuthCred
    assert (auth.plugin, auth.plugin_id) == ("auth/munge", 101)
    assert auth.credential.startswith("MUNGE:") and auth.credential not in repr(auth)
    none = NoneAuthCred(uid=1, gid=2)
    assert (none.plugin, none.plugin_id, none.hostname) == ("auth/none", 100, None)

