"""pyslurmrpc.compat keeps libslurm's conventions where a C caller would notice them: what a bad
argument, a missing slurm.conf, a controller index not configured, a success after a failure,
and an output that is no Ref give (a new user's trial found each of these wrong)."""

from __future__ import annotations

import errno as os_errno

import pytest

from pyslurmrpc import AsyncClient, Client, compat
from pyslurmrpc.auth.slurm_auth import NoneAuth
from pyslurmrpc.errors import ConfigError, InvalidArgumentError
from pyslurmrpc.wire import MsgType, decode_message

from peers import ReplayPeer
from fixtures_data import manifest, recording
from test_client_replay import _client
from test_faults import rc_frame

ENTRIES = {e["name"]: e for e in manifest()}


@pytest.fixture(autouse=True)
def client_restored(monkeypatch):
    """Each test's slurm_init is undone after it: no later test inherits a closed peer's client."""
    monkeypatch.setattr(compat, "_client", compat._client)


@pytest.fixture
def nothing_listens(monkeypatch):
    """A client whose controller nobody serves: a call that sent anything would be 1800."""
    monkeypatch.setattr(compat, "_client", Client("127.0.0.1", 1, auth="none", timeout=1))


@pytest.mark.parametrize("call, named", [
    (lambda: compat.slurm_checkpoint_able(-1, 0, compat.Ref()), "job_id"),
    (lambda: compat.slurm_checkpoint_able("5", 0, compat.Ref()), "job_id"),
    (lambda: compat.slurm_checkpoint_disable(2, None), "step_id"),
    (lambda: compat.slurm_checkpoint_create(5, 0, 65536, None), "max_wait"),
    (lambda: compat.slurm_checkpoint_create(5, 0, 10, "a\0b"), "image_dir"),
    (lambda: compat.slurm_checkpoint_restart(5, 0, 2, None), "stick"),
    (lambda: compat.slurm_checkpoint_restart(5, 0, "no", None), "stick"),
    (lambda: compat.slurm_checkpoint_tasks(5, 0, 0, None, 70000, "n1"), "max_wait"),
    (lambda: compat.slurm_checkpoint_able(2, 0, None), "start_time"),
    (lambda: compat.slurm_checkpoint_error(2, 0, compat.Ref(), None), "error_msg"),
    (lambda: compat.slurm_ping("0"), "controller"),
])
def test_a_bad_argument_is_einval_and_last_error_names_it(nothing_listens, call, named):
    """It was errno 1000, "Unexpected message received", with the reason lost."""
    assert call() == -1
    assert compat.slurm_get_errno() == os_errno.EINVAL
    assert compat.slurm_strerror(compat.slurm_get_errno()) == "Invalid argument"
    assert isinstance(compat.last_error(), InvalidArgumentError) and named in str(compat.last_error())


@pytest.mark.parametrize("nodelist", ["", None, " ", "n[1-", "n[3-1]"])
def test_a_nodelist_naming_no_node_is_slurm_error_as_libslurms_no_list(nothing_listens, nodelist):
    """libslurm 19.05's checkpoint_tasks gets no list from slurm_send_recv_msgs for an empty or
    unparsable node list and sets errno SLURM_ERROR (-1); compat did EINVAL."""
    assert compat.slurm_checkpoint_tasks(5, 0, 0, None, 10, nodelist) == -1
    assert compat.slurm_get_errno() == compat.SLURM_ERROR
    error = compat.last_error()
    assert isinstance(error, InvalidArgumentError) and error.argument == "nodelist"
    assert "nodelist" in str(error)


def test_an_output_that_is_no_ref_is_refused_before_anything_is_sent():
    with ReplayPeer(lambda frame: recording("able_running", "response")) as peer:
        compat.slurm_init(client=_client(Client, ENTRIES["able_running"], peer))
        assert compat.slurm_checkpoint_able(2, 0, None) == -1
        assert compat.slurm_checkpoint_error(2, 0, None, None) == -1
        assert peer.requests == 0


def test_stick_is_sent_as_given():
    """libslurm sends its uint16_t stick unchanged and 19.05 keeps the nodes only for 1: a true
    value other than 1 (once sent as 1) is refused, 0 and 1 go as they are."""
    with ReplayPeer(lambda frame: recording("restart_step", "response")) as peer:
        compat.slurm_init(client=_client(Client, ENTRIES["restart_step"], peer))
        for stick in (1, 0):
            compat.slurm_checkpoint_restart(2, 0, stick, None)
            assert decode_message(peer.received[-1]).body.data == stick
        assert compat.slurm_checkpoint_restart(2, 0, 2, None) == -1 and peer.requests == 2


def test_a_controller_index_not_configured_is_1800_as_libslurm_s():
    """slurm_open_controller_conn_spec has no address for it; _send_message_controller sets 1800
    (without a connect: the index was refused, not tried)."""
    with ReplayPeer(lambda frame: None) as peer:
        compat.slurm_init(client=Client(peer.host, peer.port, auth="none"))
        for dest in (1, -1, 7):
            assert compat.slurm_ping(dest) == -1
            assert compat.slurm_get_errno() == 1800 and isinstance(compat.last_error(), InvalidArgumentError)
        assert peer.requests == 0


def test_no_slurm_conf_is_raised_not_an_errno(monkeypatch, tmp_path):
    """libslurm's slurm_init exits naming the file; it was -1 with errno 1000."""
    monkeypatch.setattr(compat, "_client", None)
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "missing.conf"))
    for call in (lambda: compat.slurm_ping(0), lambda: compat.slurm_checkpoint_able(1, 0, compat.Ref())):
        with pytest.raises(ConfigError, match="missing.conf"):
            call()


@pytest.mark.parametrize("client, named", [(AsyncClient("127.0.0.1", 1, auth="none"), "AsyncClient"),
                                           ("x", "str")])
def test_slurm_init_takes_only_a_blocking_client(client, named):
    """An AsyncClient made every call 0 (its coroutine never awaited); a str failed later."""
    with pytest.raises(InvalidArgumentError, match=f"client must be a pyslurmrpc.Client .*not {named}"):
        compat.slurm_init(client=client)


def test_a_reply_of_another_type_zeroes_start_time():
    """slurm_checkpoint_able's default case: *start_time = 0 (errno: the unexpected message)."""
    answer = lambda frame: rc_frame(frame, NoneAuth(), msg_type=MsgType.RESPONSE_CHECKPOINT_COMP)  # noqa: E731
    with ReplayPeer(answer) as peer:
        compat.slurm_init(client=Client(peer.host, peer.port, auth="none", timeout=5, protocol_version="19.05"))
        start = compat.Ref(7)
        assert compat.slurm_checkpoint_able(2, 0, start) == -1
    assert start.value == 0 and compat.slurm_get_errno() == 1000


def test_a_reply_in_another_version_leaves_start_time():
    """That fails libslurm's receive (slurm_receive_msg), before the switch that zeroes it."""
    answer = lambda frame: rc_frame(frame, NoneAuth(), version=0x2100)  # noqa: E731  (18.08 to a 19.05 request)
    with ReplayPeer(answer) as peer:
        compat.slurm_init(client=Client(peer.host, peer.port, auth="none", timeout=5, protocol_version="19.05"))
        start = compat.Ref(7)
        assert compat.slurm_checkpoint_able(2, 0, start) == -1
    assert start.value == 7 and "version" in str(compat.last_error()), compat.last_error()


def test_errnum_and_errno_must_be_ints():
    with pytest.raises(TypeError, match="errnum must be an int, not str"):
        compat.slurm_strerror("2017")
    with pytest.raises(TypeError, match="errnum must be an int, not NoneType"):
        compat.slurm_strerror(None)
    with pytest.raises(TypeError, match="errno must be an int, not float"):
        compat.slurm_seterrno(1.5)
    with pytest.raises(InvalidArgumentError, match="errno must be a C int"):
        compat.slurm_seterrno(2 ** 70)
    compat.slurm_seterrno(2017)
    assert compat.slurm_get_errno() == 2017


def test_every_public_function_says_what_it_does():
    assert [n for n in compat.__all__ if not (getattr(compat, n).__doc__ or "").strip()] == []
