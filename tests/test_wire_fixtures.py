"""Every real 19.05 recording decodes, matches the manifest, and re-encodes byte for byte."""

from __future__ import annotations

import pytest

from pyslurmrpc.wire import CheckOp, Framer, MsgType, decode_message, encode_message

from fixtures_data import all_recordings, manifest, recording

ENTRIES = manifest()
IDS = [e["name"] for e in ENTRIES]

#: libslurm function -> (message type, op, how each manifest arg maps to a body field)
REQUESTS = {
    "slurm_checkpoint_able": (MsgType.REQUEST_CHECKPOINT, CheckOp.CHECK_ABLE, {}),
    "slurm_checkpoint_disable": (MsgType.REQUEST_CHECKPOINT, CheckOp.CHECK_DISABLE, {}),
    "slurm_checkpoint_enable": (MsgType.REQUEST_CHECKPOINT, CheckOp.CHECK_ENABLE, {}),
    "slurm_checkpoint_error": (MsgType.REQUEST_CHECKPOINT, CheckOp.CHECK_ERROR, {}),
    "slurm_checkpoint_create": (MsgType.REQUEST_CHECKPOINT, CheckOp.CHECK_CREATE, {"max_wait": "data"}),
    "slurm_checkpoint_vacate": (MsgType.REQUEST_CHECKPOINT, CheckOp.CHECK_VACATE, {"max_wait": "data"}),
    "slurm_checkpoint_requeue": (MsgType.REQUEST_CHECKPOINT, CheckOp.CHECK_REQUEUE, {"max_wait": "data"}),
    "slurm_checkpoint_restart": (MsgType.REQUEST_CHECKPOINT, CheckOp.CHECK_RESTART, {"stick": "data"}),
    "slurm_checkpoint_complete": (MsgType.REQUEST_CHECKPOINT_COMP, None, {}),
    "slurm_checkpoint_task_complete": (MsgType.REQUEST_CHECKPOINT_TASK_COMP, None, {}),
    "slurm_checkpoint_tasks": (MsgType.REQUEST_CHECKPOINT_TASKS, None,
                               {"step_id": "job_step_id", "begin_time": "timestamp",
                                "max_wait": None, "nodelist": None}),
    "scontrol ping (REQUEST_PING)": (MsgType.REQUEST_PING, None, {}),
}


@pytest.mark.parametrize("path", all_recordings(), ids=lambda p: p.name)
def test_recording_decodes_and_reencodes_exactly(path):
    frame = path.read_bytes()
    message = decode_message(frame)
    assert message.header.version == 0x2200
    assert message.auth.plugin == "auth/munge"
    assert message.auth.credential.startswith("MUNGE:")
    assert encode_message(message) == frame


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_request_fields_equal_manifest_args(entry):
    message = decode_message(recording(entry["name"], "request"))
    msg_type, op, renames = REQUESTS[entry["function"]]
    assert message.msg_type == msg_type
    if op is not None:
        assert message.body.op == op
    for arg, value in entry["args"].items():
        field = renames.get(arg, arg)
        if field is None:  # travels outside the body (socket timeout, node addresses)
            continue
        assert getattr(message.body, field) == value, (field, message.body)


def _expected_response(entry):
    outcome = entry["outcome"]
    errno = outcome.get("slurm_errno", 0)
    if errno or "start_time" not in outcome and "error_code" not in outcome:
        return MsgType.RESPONSE_SLURM_RC, {"return_code": errno}
    if "start_time" in outcome:
        return MsgType.RESPONSE_CHECKPOINT, {"event_time": outcome["start_time"]}
    return MsgType.RESPONSE_CHECKPOINT, {"error_code": outcome["error_code"],
                                         "error_msg": outcome["error_msg"] or None}


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_response_matches_manifest_outcome(entry):
    message = decode_message(recording(entry["name"], "response"))
    msg_type, fields = _expected_response(entry)
    assert message.msg_type == msg_type
    for name, value in fields.items():
        assert getattr(message.body, name) == value


@pytest.mark.parametrize("path", all_recordings(), ids=lambda p: p.name)
def test_recording_one_byte_at_a_time(path):
    data = path.read_bytes()
    framer = Framer()
    frames = []
    for i in range(len(data)):
        frames.extend(framer.feed(data[i:i + 1]))
    framer.close()
    assert frames == [data]
    assert encode_message(decode_message(frames[0])) == data


def test_all_recordings_in_one_stream_any_chunking():
    stream = b"".join(p.read_bytes() for p in all_recordings())
    for chunk in (1, 3, 7, 64, 1000, len(stream)):
        framer = Framer()
        frames = []
        for i in range(0, len(stream), chunk):
            frames.extend(framer.feed(stream[i:i + chunk]))
        assert b"".join(frames) == stream
        assert [decode_message(f).msg_type for f in frames]
