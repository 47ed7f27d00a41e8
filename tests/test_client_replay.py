"""The client against peers that answer with the recorded 19.05 bytes.

For every recording: the client returns exactly what libslurm returned (the
manifest's outcome), the response credential is verified offline with the
recordings' key, and the request the client sent equals the recorded one byte
for byte once the credential (the only field that varies) is swapped in.
"""

from __future__ import annotations

import pytest

from pyslurmrpc import AsyncClient, Client, SlurmError, compat
from pyslurmrpc.auth.slurm_auth import OfflineMungeAuth
from pyslurmrpc.wire import Message, decode_message, encode_message

from fixtures_data import FIXTURES, manifest, recording
from peers import ReplayPeer

ENTRIES = manifest()
KEY = FIXTURES / "munge.key"

#: libslurm function -> (client method, argument names in order)
METHODS = {
    "slurm_checkpoint_able": ("checkpoint_able", ("job_id", "step_id")),
    "slurm_checkpoint_disable": ("checkpoint_disable", ("job_id", "step_id")),
    "slurm_checkpoint_enable": ("checkpoint_enable", ("job_id", "step_id")),
    "slurm_checkpoint_create": ("checkpoint_create", ("job_id", "step_id", "max_wait", "image_dir")),
    "slurm_checkpoint_vacate": ("checkpoint_vacate", ("job_id", "step_id", "max_wait", "image_dir")),
    "slurm_checkpoint_requeue": ("checkpoint_requeue", ("job_id", "max_wait", "image_dir")),
    "slurm_checkpoint_restart": ("checkpoint_restart", ("job_id", "step_id", "stick", "image_dir")),
    "slurm_checkpoint_complete": ("checkpoint_complete",
                                  ("job_id", "step_id", "begin_time", "error_code", "error_msg")),
    "slurm_checkpoint_task_complete": ("checkpoint_task_complete",
                                       ("job_id", "step_id", "task_id", "begin_time", "error_code", "error_msg")),
    "slurm_checkpoint_error": ("checkpoint_error", ("job_id", "step_id")),
    "slurm_checkpoint_tasks": ("checkpoint_tasks",
                               ("job_id", "step_id", "begin_time", "image_dir", "max_wait", "nodelist")),
    "scontrol ping (REQUEST_PING)": ("ping", ()),
}


def _client(cls, entry, peer):
    auth = OfflineMungeAuth(KEY, ignore_expiry=True, uid=entry.get("caller_uid", 0))
    return cls(peer.host, peer.port, auth=auth, timeout=5, protocol_version="19.05",  # as recorded
               nodes={"localhost": (peer.host, peer.port)})


def _expected(entry, result):
    outcome = entry["outcome"]
    if entry["function"] == "slurm_checkpoint_able":
        assert result == outcome["start_time"]
    elif entry["function"] == "slurm_checkpoint_error":
        assert result == (outcome["error_code"], outcome["error_msg"])
    elif entry["function"].startswith("scontrol ping"):
        assert result is True
    elif entry["function"] == "slurm_checkpoint_tasks":
        assert result == {"localhost": 0}
    else:
        assert result is None


def _check_request(entry, sent: bytes):
    recorded = decode_message(recording(entry["name"], "request"))
    ours = decode_message(sent)
    assert ours.auth.plugin == recorded.auth.plugin
    # swap our credential into the recorded message: everything else must be identical
    assert encode_message(Message(recorded.header, ours.auth, recorded.body)) == sent


def replay(entry, response: bytes, call, check_request) -> None:
    """Answer ``call(peer)``'s one request with the recorded ``response``; the result (or the
    SlurmError) must be the manifest's, and ``check_request(sent)`` judges what was sent."""
    with ReplayPeer(lambda frame: response) as peer:
        errno = entry["outcome"].get("slurm_errno", 0)
        if errno:
            with pytest.raises(SlurmError) as info:
                call(peer)
            assert info.value.errno == errno
            assert str(info.value) == entry["outcome"]["strerror"]
        else:
            _expected(entry, call(peer))
        assert len(peer.received) == 1
        check_request(peer.received[0])


def _run(entry, call):
    replay(entry, recording(entry["name"], "response"), call, lambda sent: _check_request(entry, sent))


def _args(entry):
    method, names = METHODS[entry["function"]]
    return method, [entry["args"][n] for n in names]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_sync_client_reproduces_libslurm(entry):
    method, args = _args(entry)
    _run(entry, lambda peer: getattr(_client(Client, entry, peer), method)(*args))


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_async_client_reproduces_libslurm(entry):
    import asyncio

    method, args = _args(entry)
    _run(entry, lambda peer: asyncio.run(getattr(_client(AsyncClient, entry, peer), method)(*args)))


@pytest.mark.parametrize("entry", [e for e in ENTRIES if not e["function"].startswith("scontrol")],
                         ids=lambda e: e["name"])
def test_compat_follows_the_man_page(entry):
    response = recording(entry["name"], "response")
    compat_reports_the_manifest(entry, response, lambda peer: _client(Client, entry, peer))


#: an errno no recording ends with
STALE_ERRNO = 4242


def compat_reports_the_manifest(entry, response: bytes, make_client) -> None:
    """Run the entry's C-like call against a peer answering ``response``; errno and outputs as in the manifest."""
    _, args = _args(entry)
    c_name = entry["function"]
    outputs = {"slurm_checkpoint_able": [compat.Ref("stale")],
               "slurm_checkpoint_error": [compat.Ref("stale"), compat.Ref("stale")]}.get(c_name, [])
    with ReplayPeer(lambda frame: response) as peer:
        compat.slurm_init(client=make_client(peer))
        compat.slurm_seterrno(STALE_ERRNO)     # a success leaves 0 (slurm_receive_msg), not what was there
        rc = getattr(compat, c_name)(*args, *outputs)
    errno = entry["outcome"]["slurm_errno"]
    assert rc == (-1 if errno else 0)
    assert compat.slurm_get_errno() == errno
    assert (compat.last_error() is None) == (errno == 0)
    if errno:
        assert compat.slurm_strerror(errno) == entry["outcome"]["strerror"]
    if errno and c_name == "slurm_checkpoint_able":
        assert outputs[0].value == "stale"          # libslurm leaves *start_time on an error code
    elif c_name == "slurm_checkpoint_able":
        assert outputs[0].value == entry["outcome"]["start_time"]
    elif c_name == "slurm_checkpoint_error":
        assert (outputs[0].value, outputs[1].value) == (entry["outcome"]["error_code"],
                                                        entry["outcome"]["error_msg"])