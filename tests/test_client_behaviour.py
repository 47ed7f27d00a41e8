"""Client behaviour: failover, timeouts, versions, fan-out, concurrency, errors."""

from __future__ import annotations

import asyncio
import pickle
import socket
import threading
import time

import pytest

from pyslurmrpc import (
    NO_VAL, SLURM_BATCH_SCRIPT, AsyncClient, CheckpointUnsupported, Client, ConnectionClosedError,
    ConnectionRefusedTransportError, InvalidArgumentError, NoVersionAnsweredError, ProtocolError, SlurmError,
    TimeoutTransportError, UnexpectedMessageError, UnreachableError,
)
from pyslurmrpc.auth.slurm_auth import NoneAuth
from pyslurmrpc.slurm_errno import ERRORS
from pyslurmrpc.testing.netio import free_port
from pyslurmrpc.wire import (
    Address, CheckpointMsg, CheckpointRespMsg, ForwardFailedMsg, Header, Message, MsgType, RetEntry,
    ReturnCodeMsg, decode_message, encode_message,
)

from peers import ReplayPeer

NONE = NoneAuth(uid=0, gid=0, hostname="ctl")


def reply_rc(request: bytes, code: int = 0, ret_list=(), version=None) -> bytes:
    msg = decode_message(request)
    version = version or msg.version
    addr = Address(0, None, 0) if version >= 0x2400 else Address()
    header = Header(version, MsgType.RESPONSE_SLURM_RC, ret_list=tuple(ret_list), orig_addr=addr)
    return encode_message(Message(header, NONE.create(version), ReturnCodeMsg(return_code=code)))


def reply_ckpt(request: bytes, event_time=0, error_code=0, error_msg=None) -> bytes:
    msg = decode_message(request)
    return encode_message(Message(Header(msg.version, MsgType.RESPONSE_CHECKPOINT), NONE.create(msg.version),
                                  CheckpointRespMsg(event_time=event_time, error_code=error_code, error_msg=error_msg)))


def client(peer, **kw):
    kw.setdefault("timeout", 3)
    return Client(peer.host, peer.port, auth="none", **kw)


# -- arguments -----------------------------------------------------------------
def test_bad_arguments_are_named_before_anything_is_sent():
    c = Client("127.0.0.1", free_port(), auth="none")
    for call, name in [(lambda: c.checkpoint_able(2**32, 0), "job_id"),
                       (lambda: c.checkpoint_able(1, -1), "step_id"),
                       (lambda: c.checkpoint_create(1, 0, 70000), "max_wait"),
                       (lambda: c.checkpoint_create(1, 0, 10, "a\0b"), "image_dir"),
                       (lambda: c.checkpoint_complete(1, 0, "now", 0), "begin_time"),
                       (lambda: c.checkpoint_tasks(1, 0, 0, None, 10, "n[3-1]"), "nodelist")]:
        with pytest.raises(InvalidArgumentError, match=name):
            call()
    with pytest.raises(InvalidArgumentError, match="protocol_version: unknown Slurm release '21.05'; known: 17.11"):
        Client("h", protocol_version="21.05")


def test_a_release_may_be_named_with_its_patch_level():
    """As slurmctld -V and scontrol version print it; "22.05.8" was refused."""
    assert Client("h", protocol_version="22.05.8").settings.protocol_version == 0x2600
    assert Client("h", protocol_version="19.05.8").settings.protocol_version == 0x2200
    with pytest.raises(InvalidArgumentError, match="unknown Slurm release '22.05.x'"):
        Client("h", protocol_version="22.05.x")


@pytest.mark.parametrize("release", ["20.02", "22.05", "26.05"])
def test_a_pinned_release_without_checkpoint_rpcs_sends_no_checkpoint_call(release):
    """protocol_version took only 17.11-19.05; a newer release is taken for ping, and a
    checkpoint call says it cannot be made there, without a request or a detection."""
    with ReplayPeer(reply_rc) as peer:
        c = Client("127.0.0.1", peer.port, auth="none", protocol_version=release)
        for call in (lambda: c.checkpoint_able(1, 0), lambda: c.checkpoint_tasks(1, 0, 0, None, 10, "n1")):
            with pytest.raises(CheckpointUnsupported) as info:
                call()
            assert info.value.pinned and info.value.version == release
            assert f"the client's protocol_version (--protocol) is {release}, a release without checkpoint " \
                "RPCs (removed in Slurm 20.02): nothing was sent to " in str(info.value)
        assert peer.requests == 0


def test_no_val_and_batch_script_are_exported_with_their_1905_meaning():
    assert NO_VAL == SLURM_BATCH_SCRIPT == 0xFFFFFFFE
    with ReplayPeer(reply_rc) as peer:
        client(peer).checkpoint_disable(7, SLURM_BATCH_SCRIPT)
        assert decode_message(peer.received[0]).body.step_id == 0xFFFFFFFE
        client(peer).checkpoint_requeue(7, 5)
        assert decode_message(peer.received[1]).body.step_id == SLURM_BATCH_SCRIPT


@pytest.mark.parametrize("errno", sorted(n for n in ERRORS if n > 0))
def test_every_slurm_error_has_slurms_text(errno):
    with ReplayPeer(lambda req: reply_rc(req, errno)) as peer:
        with pytest.raises(SlurmError) as info:
            client(peer).checkpoint_enable(1, 0)
    assert info.value.errno == errno
    assert (info.value.name, str(info.value)) == ERRORS[errno]


# -- versions ------------------------------------------------------------------
@pytest.mark.parametrize("version, code, plugin_field", [("17.11", 0x2000, "plugin_type"),
                                                         ("18.08", 0x2100, "plugin_type"),
                                                         ("19.05", 0x2200, "plugin_id")])
def test_pinned_protocol_version_sets_header_and_auth_framing(version, code, plugin_field):
    with ReplayPeer(lambda req: reply_ckpt(req, event_time=5)) as peer:
        assert client(peer, protocol_version=version).checkpoint_able(3, 0) == 5
    sent = decode_message(peer.received[0])
    assert sent.version == code
    assert sent.auth.plugin == "auth/none"
    assert sent.body == CheckpointMsg(op=0, data=0, job_id=3, step_id=0, image_dir=None)


def test_reply_of_the_wrong_type_or_version_is_a_protocol_error():
    with ReplayPeer(lambda req: reply_ckpt(req)) as peer:
        with pytest.raises(UnexpectedMessageError, match="message type 5010"):
            client(peer, protocol_version="19.05").ping()  # RESPONSE_CHECKPOINT exists in 19.05 headers only
    with ReplayPeer(lambda req: reply_rc(req, version=0x2600)) as peer:
        with pytest.raises(UnexpectedMessageError, match="protocol version"):
            client(peer).checkpoint_disable(1, 0)
    with ReplayPeer(lambda req: b"\x00\x00\x00\x03abc") as peer:
        with pytest.raises(ProtocolError):
            client(peer).checkpoint_disable(1, 0)


def test_too_new_controller_gets_a_one_line_verdict():
    """A controller answering pings only in 22.05 headers: checkpoint calls say why they cannot work."""
    def modern(request):   # 22.05 takes 20.11 - 22.05 headers (SLURM_MIN_PROTOCOL_VERSION)
        msg = decode_message(request)
        return reply_rc(request) if 0x2400 <= msg.version <= 0x2600 and msg.msg_type == MsgType.REQUEST_PING else None

    with ReplayPeer(modern) as peer:
        c = client(peer)
        start = time.monotonic()
        with pytest.raises(CheckpointUnsupported) as info:
            c.checkpoint_able(1, 0)
        assert time.monotonic() - start < 2
        text = str(info.value)
        assert "22.05" in text and "removed in Slurm 20.02" in text and str(peer.port) in text
        assert "\n" not in text
        assert c.controller_version() == "22.05"
        assert c.ping() is True
        n = len(peer.received)
        with pytest.raises(CheckpointUnsupported):  # cached: no further probing
            c.checkpoint_disable(1, 0)
        assert len(peer.received) == n


# -- transport -------------------------------------------------------------------
def test_failover_to_backup_and_sticky_backup():
    dead = free_port()
    with ReplayPeer(reply_rc) as backup:
        c = Client("127.0.0.1", dead, backups=[("127.0.0.1", backup.port)], auth="none", timeout=3)
        c.checkpoint_enable(1, 0)
        c.checkpoint_enable(1, 0)
        assert len(backup.received) == 2
        assert c._state.use_backup is True


def test_all_controllers_down_is_bounded_by_message_timeout():
    ports = free_port(), free_port()
    c = Client("127.0.0.1", ports[0], backups=[("127.0.0.1", ports[1])], auth="none", timeout=2)
    start = time.monotonic()
    with pytest.raises(ConnectionRefusedTransportError) as info:
        c.checkpoint_able(1, 0)
    assert time.monotonic() - start < 3
    assert info.value.slurm_errno == 1800
    assert str(info.value) == (f"no slurmctld answered (127.0.0.1:{ports[0]}: connection refused; "
                               f"127.0.0.1:{ports[1]}: connection refused)")   # each named once
    assert list(info.value.failures) == [f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}"]
    assert all(isinstance(e, ConnectionRefusedTransportError) for e in info.value.failures.values())


def test_a_controller_that_cannot_be_looked_up_is_unreachable_not_refused(monkeypatch):
    """A name that does not resolve is no refusal: the call fails with UnreachableError, whose
    ``failures`` say what each address did (libslurm's errno stays 1800 for both)."""
    real = socket.getaddrinfo

    def no_such_name(host, *args, **kwargs):
        if host == "ctl.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    port = free_port()
    c = Client("ctl.invalid", 6817, backups=[("127.0.0.1", port)], auth="none", timeout=1)
    with pytest.raises(UnreachableError) as info:
        c.ping()
    assert type(info.value) is UnreachableError
    assert info.value.slurm_errno == 1800
    first, second = info.value.failures.values()
    assert type(first) is UnreachableError and "ctl.invalid:6817: " in str(first)
    assert type(second) is ConnectionRefusedTransportError
    assert str(info.value).startswith("no slurmctld answered (ctl.invalid:6817: ")
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is UnreachableError and list(again.failures) == list(info.value.failures)
    with pytest.raises(UnreachableError, match="^ctl.invalid:6817: Name or service not known$") as one:
        c.ping(0)                                  # one address, no failover: its own error
    assert type(one.value) is UnreachableError and one.value.failures == {} and one.value.slurm_errno == 1800


# a silent controller on a real socket: test_async_timeout; the blocking runner's timeout,
# to the virtual second, in test_flows_scripted.py (test_silent_controller_times_out_after_message_timeout)


def test_half_a_frame_then_close():
    with ReplayPeer(lambda req: reply_rc(req)[:10]) as peer:
        with pytest.raises((ConnectionClosedError, NoVersionAnsweredError, ProtocolError)):
            client(peer).checkpoint_enable(1, 0)


# -- checkpoint_tasks fan-out ----------------------------------------------------------------
class Cluster:
    """Fake slurmds that forward like slurmd: answer for themselves and the nodes in forward."""

    def __init__(self, names, codes=None, down=()):
        self.codes = codes or {}
        self.peers = {n: ReplayPeer(self._answer(n)) for n in names if n not in down}
        self.nodes = {n: ("127.0.0.1", self.peers[n].port if n in self.peers else free_port()) for n in names}

    def _answer(self, name):
        def answer(request):
            msg = decode_message(request)
            ret = []
            if msg.header.forward.cnt:
                from pyslurmrpc.hostlist import expand
                for other in expand(msg.header.forward.nodelist):
                    if other in self.peers:
                        ret.append(RetEntry(other, 0, int(MsgType.RESPONSE_SLURM_RC),
                                            ReturnCodeMsg(return_code=self.codes.get(other, 0))))
                    else:
                        ret.append(RetEntry(other, 1001, int(MsgType.RESPONSE_FORWARD_FAILED), ForwardFailedMsg()))
            return reply_rc(request, self.codes.get(name, 0), ret_list=ret)
        return answer

    def close(self):
        for p in self.peers.values():
            p.close()


def test_tasks_direct_to_each_node_when_under_tree_width():
    cl = Cluster(["n1", "n2", "n3"])
    try:
        c = Client("127.0.0.1", free_port(), auth="none", nodes=cl.nodes, timeout=3)
        assert c.checkpoint_tasks(5, 65535, 1795460000, "/ck", 10, "n[1-3]") == {"n1": 0, "n2": 0, "n3": 0}
        sent = decode_message(cl.peers["n2"].received[0])
        assert sent.header.forward.cnt == 0
        assert sent.body.job_step_id == 65535  # libslurm's uint16_t, widened to 32 bits on the wire
    finally:
        cl.close()


def test_tasks_forwarding_tree_and_a_node_down():
    cl = Cluster(["n1", "n2", "n3", "n4", "n5"], codes={"n3": 4027}, down=["n4"])
    try:
        c = Client("127.0.0.1", free_port(), auth="none", nodes=cl.nodes, timeout=3, tree_width=2)
        with pytest.raises(SlurmError) as info:
            c.checkpoint_tasks(5, 0, 1795460000, None, 7, "n[1-5]")
        assert info.value.details == {"n1": 0, "n2": 0, "n3": 4027, "n4": 1001, "n5": 0}
        assert info.value.errno == 4027
        first = decode_message(cl.peers["n1"].received[0]).header.forward
        assert (first.cnt, first.nodelist, first.timeout, first.tree_width) == (2, "n[2-3]", 7000, 2)
        assert "n4" not in cl.peers
    finally:
        cl.close()


def test_tasks_first_hop_down_rest_of_branch_sent_directly():
    """forward.c _fwd_tree_thread: n1 refused (tried 1 + 1 times), n2 and n3 each get their own copy."""
    cl = Cluster(["n1", "n2", "n3"], down=["n1"])
    try:
        c = Client("127.0.0.1", free_port(), auth="none", nodes=cl.nodes, timeout=1, tree_width=1)
        with pytest.raises(SlurmError) as info:
            c.checkpoint_tasks(5, 0, 1, None, 5, "n[1-3]")
        assert info.value.details == {"n1": 1001, "n2": 0, "n3": 0}
        assert decode_message(cl.peers["n2"].received[0]).header.forward.cnt == 0
        assert decode_message(cl.peers["n3"].received[0]).header.forward.cnt == 0
    finally:
        cl.close()


# -- concurrency -------------------------------------------------------------------------
async def test_async_many_calls_in_flight():
    with ReplayPeer(lambda req: reply_ckpt(req, event_time=decode_message(req).body.job_id)) as peer:
        c = AsyncClient(peer.host, peer.port, auth="none", timeout=5)
        results = await asyncio.gather(*(c.checkpoint_able(i, 0) for i in range(1, 65)))
    assert results == list(range(1, 65))


async def test_async_cancellation_closes_the_connection():
    gate = threading.Event()
    with ReplayPeer(lambda req: gate.wait(5) and None) as peer:
        c = AsyncClient(peer.host, peer.port, auth="none", timeout=5)
        task = asyncio.create_task(c.checkpoint_able(1, 0))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()


async def test_async_timeout():
    with ReplayPeer(lambda req: time.sleep(2) or None) as peer:
        with pytest.raises(TimeoutTransportError):
            await AsyncClient(peer.host, peer.port, auth="none", timeout=0.3).checkpoint_able(1, 0)


def test_sync_client_shared_between_threads():
    with ReplayPeer(lambda req: reply_ckpt(req, event_time=decode_message(req).body.job_id)) as peer:
        c = client(peer)
        results = {}

        def work(i):
            results[i] = c.checkpoint_able(i, 0)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(1, 33)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == {i: i for i in range(1, 33)}
