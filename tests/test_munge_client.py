"""MungeClient / AsyncMungeClient against a real munged (tests/conftest.py ``munged``)."""

import array
import asyncio
import os
import re
import socket
import threading
import time

import pytest

from pyslurmrpc.auth import errors as E
from pyslurmrpc.auth.munge import AsyncMungeClient, MungeClient, RetryPolicy, decode_offline, encode_offline
from pyslurmrpc.auth.munge_constants import GID_ANY, UID_ANY, Cipher, Mac, MsgType, MungeErr, Zip
from pyslurmrpc.auth.munge_proto import (
    build_request, pack_encode_response, pack_header, parse_encode_request, unpack_header,
)
from pyslurmrpc.errors import AuthError
from pyslurmrpc.testing.ci import needs_root

#: the largest TTL a request carries (a uint32)
TTL_FIELD_MAX = 2 ** 32 - 1

FAST = RetryPolicy(connect_attempts=3, connect_backoff_ms=1, xfer_attempts=3, xfer_backoff_ms=1,
                   timeout_ms=2000)


@pytest.fixture
def client(munged):
    return MungeClient(munged.socket_path)


def test_round_trip_defaults(client):
    text = client.encode()
    assert text.startswith("MUNGE:") and text.endswith(":")
    cred = client.decode(text)
    assert (cred.uid, cred.gid) == (os.geteuid(), os.getegid())
    assert cred.payload == b""
    assert cred.ttl == 300 and cred.cipher == Cipher.AES128 and cred.mac == Mac.SHA256
    assert cred.zip == Zip.NONE and cred.addr == "127.0.0.1"
    assert cred.encode_time <= cred.decode_time <= time.time() + 1
    assert cred.uid_restriction is None and cred.gid_restriction is None


@pytest.mark.parametrize("payload", [b"x", b"\0binary\xff" * 40, os.urandom(5000)])
def test_payload_round_trip(client, payload):
    assert client.decode(client.encode(payload)).payload == payload


def test_ttl_and_options(client):
    cred = client.decode(client.encode(b"p" * 200, ttl=42, zip=Zip.ZLIB, cipher=Cipher.AES256,
                                       mac=Mac.SHA512, realm="lab"))
    assert (cred.ttl, cred.zip, cred.cipher, cred.mac, cred.realm) == (42, Zip.ZLIB, Cipher.AES256, Mac.SHA512, "lab")
    assert client.decode(client.encode(ttl=-1)).ttl == 3600  # MUNGE_TTL_MAXIMUM -> --max-ttl


def test_uid_restriction(client):
    mine = client.decode(client.encode(uid=os.geteuid()))
    assert mine.uid_restriction == os.geteuid()
    with pytest.raises(E.MungeCredentialUnauthorizedError) as info:
        client.decode(client.encode(uid=4242))
    assert info.value.code == MungeErr.CRED_UNAUTHORIZED == 18
    assert info.value.text.startswith("Unauthorized credential for client UID=")


def test_gid_restriction(client):
    assert client.decode(client.encode(gid=os.getegid())).gid_restriction == os.getegid()
    with pytest.raises(E.MungeCredentialUnauthorizedError):
        client.decode(client.encode(gid=4242))


def test_replay_detected(client):
    text = client.encode(b"once")
    client.decode(text)
    with pytest.raises(E.MungeCredentialReplayedError) as info:
        client.decode(text)
    assert info.value.code == 17 and info.value.text == "Replayed credential"
    assert info.value.credential.payload == b"once"  # munged still reports the fields
    assert isinstance(info.value, AuthError)


def test_expired(client):
    text = client.encode(ttl=1)
    time.sleep(2.2)
    with pytest.raises(E.MungeCredentialExpiredError) as info:
        client.decode(text)
    assert info.value.code == 15 and info.value.credential.ttl == 1


def test_rewound_from_offline_mint(client, munged):
    future = int(time.time()) + 1000  # beyond munged's clock-skew allowance (= ttl)
    text = encode_offline(munged.key_file, uid=1, gid=1, ttl=60, encode_time=future)
    with pytest.raises(E.MungeCredentialRewoundError) as info:
        client.decode(text)
    assert info.value.code == 16


def test_wrong_key_invalid(client):
    text = encode_offline(os.urandom(64), uid=0, gid=0)
    with pytest.raises(E.MungeCredentialInvalidError) as info:
        client.decode(text)
    assert info.value.code == 14


def test_garbage_is_format_error(client):
    with pytest.raises(E.MungeCredentialFormatError) as info:
        client.decode("MUNGE:!!!!:")
    assert info.value.code == MungeErr.BAD_CRED


@pytest.mark.parametrize("cipher", [Cipher.NONE, Cipher.BLOWFISH, Cipher.CAST5, Cipher.AES128, Cipher.AES256])
@pytest.mark.parametrize("mac,zip_", [(Mac.SHA1, Zip.ZLIB), (Mac.SHA256, Zip.BZLIB), (Mac.SHA512, Zip.NONE)])
def test_munged_and_offline_agree(client, munged, cipher, mac, zip_):
    payload = b"agree" * 30
    if cipher == Cipher.AES256 and mac == Mac.SHA1:   # 20-byte DEK < 32-byte key: refused
        with pytest.raises(E.MungeBadMacError):
            client.encode(payload, cipher=cipher, mac=mac)
        with pytest.raises(E.MungeBadMacError):
            encode_offline(munged.key_file, uid=1, gid=1, cipher=cipher, mac=mac)
        return
    minted = client.encode(payload, cipher=cipher, mac=mac, zip=zip_)
    assert decode_offline(minted, munged.key_file).payload == payload
    ours = encode_offline(munged.key_file, uid=123, gid=456, payload=payload, cipher=cipher, mac=mac, zip=zip_)
    cred = client.decode(ours)
    assert (cred.uid, cred.gid, cred.payload, cred.cipher) == (123, 456, payload, cipher)


def test_md5_with_aes256_refused(client):
    with pytest.raises(E.MungeBadMacError):
        client.encode(cipher=Cipher.AES256, mac=Mac.MD5)


# --- socket failures ---------------------------------------------------------------
def test_missing_socket(tmp_path):
    with pytest.raises(E.MungeSocketMissingError) as info:
        MungeClient(str(tmp_path / "nope")).encode()
    assert info.value.code == MungeErr.SOCKET == 6
    assert "Did you start munged?" in info.value.text


def test_not_a_socket(tmp_path):
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(E.MungeSocketError, match="Invalid file type"):
        MungeClient(str(path)).encode()


def test_munged_not_running_stale_socket(tmp_path):
    path = str(tmp_path / "stale")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)          # bound but never listening: connect() is refused
    try:
        t0 = time.monotonic()
        with pytest.raises(E.MungedNotRunningError) as info:
            MungeClient(path, retry=FAST).encode()
        assert info.value.code == 6 and "Connection refused" in info.value.text
        assert time.monotonic() - t0 < 1
    finally:
        s.close()


def test_munged_stopped(munged):
    from pyslurmrpc.testing.munged import MungedHarness
    with MungedHarness() as other:
        path = other.socket_path
        MungeClient(path).encode()
    with pytest.raises(E.MungeSocketError):   # socket removed or refused, both EMUNGE_SOCKET
        MungeClient(path, retry=FAST).encode()


def test_permission_denied(munged):
    needs_root(pytest, "runs a child as nobody")
    # the harness directory is 0700: a child turned into uid 65534 may not reach the socket
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            MungeClient(munged.socket_path, retry=FAST).encode()
        except E.MungeSocketPermissionError as err:
            status = 13 if err.code == 6 else 2
        except BaseException:
            status = 3
        os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 13


def test_socket_path_too_long(munged, tmp_path):
    """As libmunge's _m_msg_client_connect: stat() first, so a missing over-long path says it
    is missing; one that exists and is a socket is too long to connect to (EMUNGE_OVERFLOW)."""
    with pytest.raises(E.MungeError, match="Failed to access .*No such file or directory") as err:
        MungeClient("/" + "x" * 200).encode()
    assert err.value.code == MungeErr.SOCKET
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / "file").write_text("")
    with pytest.raises(E.MungeError, match="Invalid file type for socket"):
        MungeClient(str(deep / "file")).encode()
    os.symlink(munged.socket_path, deep / "munge.socket")
    for client in (MungeClient(str(deep / "munge.socket")), AsyncMungeClient(str(deep / "munge.socket"))):
        with pytest.raises(E.MungeOverflowError, match="Exceeded maximum length of 108 bytes"):
            asyncio.run(client.encode()) if isinstance(client, AsyncMungeClient) else client.encode()


# --- retry behaviour against a scripted fake munged --------------------------------
def _fake_munged(path, script):
    """Serve one connection per script entry: 'drop' closes early, 'ok' answers."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(8)
    seen = []

    def run():
        for step in script:
            conn, _ = srv.accept()
            with conn:
                hdr = conn.recv(11, socket.MSG_WAITALL)
                mtype, retry, n = unpack_header(hdr)
                body = conn.recv(n, socket.MSG_WAITALL) if n else b""
                seen.append((mtype, retry, parse_encode_request(body)))
                if step == "ok":
                    rsp = pack_encode_response("MUNGE:AAAA:")
                    conn.sendall(pack_header(MsgType.ENC_RSP, len(rsp)) + rsp)
        srv.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, seen


def test_retry_after_dropped_connection(tmp_path):
    path = str(tmp_path / "fake")
    t, seen = _fake_munged(path, ["drop", "drop", "ok"])
    assert MungeClient(path, retry=FAST).encode(b"hi", ttl=7, uid=5) == "MUNGE:AAAA:"
    t.join(5)
    assert [r for _, r, _ in seen] == [0, 1, 2]            # header retry counter
    req = seen[0][2]
    assert (req.payload, req.ttl, req.uid_restriction, req.gid_restriction) == (b"hi", 7, 5, 0xFFFFFFFF)


def test_retry_gives_up(tmp_path):
    path = str(tmp_path / "fake")
    t, seen = _fake_munged(path, ["drop"] * 3)
    with pytest.raises(E.MungeSocketError, match="incomplete message header"):
        MungeClient(path, retry=FAST).encode()
    t.join(5)
    assert len(seen) == 3


def test_bad_length_not_sent():
    with pytest.raises(E.MungeBadLengthError):
        build_request(MsgType.ENC_REQ, b"x" * (1 << 21))


# --- asyncio -------------------------------------------------------------------------
async def test_async_round_trip(munged):
    client = AsyncMungeClient(munged.socket_path)
    texts = await asyncio.gather(*(client.encode(b"n%d" % i, ttl=60) for i in range(64)))
    creds = await asyncio.gather(*(client.decode(t) for t in texts))
    assert [c.payload for c in creds] == [b"n%d" % i for i in range(64)]
    assert all(c.uid == os.geteuid() and c.ttl == 60 for c in creds)


async def test_async_errors(munged, tmp_path):
    client = AsyncMungeClient(munged.socket_path)
    text = await client.encode(uid=4242)
    with pytest.raises(E.MungeCredentialUnauthorizedError):
        await client.decode(text)
    with pytest.raises(E.MungeSocketMissingError):
        await AsyncMungeClient(str(tmp_path / "none")).encode()


async def test_async_retry(tmp_path):
    path = str(tmp_path / "fake")
    t, seen = _fake_munged(path, ["drop", "ok"])
    assert await AsyncMungeClient(path, retry=FAST).encode() == "MUNGE:AAAA:"
    t.join(5)
    assert [r for _, r, _ in seen] == [0, 1]


def test_repr_has_no_secrets(munged):
    assert "key" not in repr(MungeClient(munged.socket_path)).lower()


@pytest.mark.parametrize("path, code, text", [
    ("", MungeErr.SOCKET, "MUNGE socket name is undefined"),
    ("/run/" + "m" * 103, MungeErr.SOCKET, "Failed to access"),   # stat()ed first, as libmunge does
])
def test_a_bad_socket_name_is_refused_every_time_without_a_connect(path, code, text, monkeypatch):
    """libmunge's checks of the name (remembered only for a good one): each call refuses again."""
    from pyslurmrpc import runners
    monkeypatch.setitem(runners.SYNC.table, runners.Connect, lambda a: pytest.fail("connected"))
    monkeypatch.setitem(runners.SYNC.table, runners.Transact, lambda a: pytest.fail("connected"))
    client = MungeClient(path)
    for _ in range(3):
        with pytest.raises(E.MungeError) as err:
            client.encode()
        assert err.value.code == code and text in err.value.text


def test_a_good_socket_name_is_checked_once(munged, monkeypatch):
    from pyslurmrpc.auth import munge_xfer
    munge_xfer._path_fits.cache_clear()
    client = MungeClient(munged.socket_path)
    for _ in range(3):
        client.decode(client.encode())
    info = munge_xfer._path_fits.cache_info()
    assert (info.misses, info.hits) == (1, 5)


def test_the_usual_answer_takes_no_runner(munged, monkeypatch):
    """The blocking client's first attempt is the runner's Transact handler called at once: a
    whole answer never enters a flow (every credential of a blocking call passes here)."""
    from pyslurmrpc.auth import munge
    monkeypatch.setattr(munge, "run_sync", lambda flow: pytest.fail("the usual answer went through a flow"))
    client = MungeClient(munged.socket_path)
    assert client.decode(client.encode(b"x")).payload == b"x"


def test_a_first_attempt_without_an_answer_goes_on_as_the_second(tmp_path, monkeypatch):
    """Its outcome is handed to the flow, which goes on with libmunge's retries from there: the
    second request carries retry 1 and the first attempt is not made again."""
    from pyslurmrpc import runners
    path = str(tmp_path / "fake")
    t, seen = _fake_munged(path, ["drop", "ok"])
    transacts = []
    handler = runners.SYNC.table[runners.Transact]
    monkeypatch.setitem(runners.SYNC.table, runners.Transact, lambda a: transacts.append(a) or handler(a))
    assert MungeClient(path, retry=FAST).encode() == "MUNGE:AAAA:"
    t.join(5)
    assert [r for _, r, _ in seen] == [0, 1] and len(transacts) == 2


@pytest.mark.parametrize("kwargs, error, says", [
    ({"uid": 2 ** 32}, "range", "uid must be -1 or 4294967295 (anyone) or an id from 0 to 4294967294, not 4294967296"),
    ({"gid": -2}, "range", "gid must be -1 or 4294967295 (anyone) or an id from 0 to 4294967294, not -2"),
    ({"uid": "root"}, TypeError, "uid must be an integer, not str 'root'"),
    ({"ttl": 2 ** 32 + 1}, "range", "ttl must be seconds up to 4294967295"),
    ({"ttl": 1.5}, TypeError, "ttl must be an integer, not float 1.5"),
    ({"ttl": True}, TypeError, "ttl must be an integer, not bool True"),
    ({"payload": 5}, TypeError, "payload must be bytes-like (bytes, bytearray, memoryview, array...), not int"),
    ({"payload": [1, 2]}, TypeError, "payload must be bytes-like (bytes, bytearray, memoryview, array...), not list"),
    ({"payload": "text"}, TypeError, "payload must be bytes-like (bytes, bytearray, memoryview, array...), not str"),
])
def test_an_argument_munged_would_take_as_another_is_refused_before_any_io(kwargs, error, says, monkeypatch):
    """uid 2**32 would have been uid 0 on the wire, ttl 2**32+1 one second, 5 five NUL bytes:
    a value out of range is an InvalidArgumentError (a ValueError), a wrong type a TypeError."""
    from pyslurmrpc import runners
    from pyslurmrpc.errors import InvalidArgumentError
    error = InvalidArgumentError if error == "range" else error
    monkeypatch.setitem(runners.SYNC.table, runners.Transact, lambda a: pytest.fail("asked munged"))
    for client in (MungeClient("/nowhere"), AsyncMungeClient("/nowhere")):
        with pytest.raises(error, match=re.escape(says)):
            if isinstance(client, MungeClient):
                client.encode(**kwargs)
            else:
                asyncio.run(client.encode(**kwargs))


class _Index:
    """An integer-like object (as numpy's integers are): it has __index__."""

    def __init__(self, n):
        self.n = n

    def __index__(self):
        return self.n


def test_the_largest_ids_and_ttl_and_anyone_still_go_through(munged):
    client = MungeClient(munged.socket_path)
    cred = client.decode(client.encode(bytearray(b"p"), ttl=TTL_FIELD_MAX, uid=os.getuid(), gid=-1))
    assert cred.payload == b"p" and cred.uid_restriction == os.getuid() and cred.gid_restriction is None
    anyone = client.decode(client.encode(array.array("B", b"ab"), uid=UID_ANY, gid=_Index(GID_ANY)))
    assert anyone.payload == b"ab" and anyone.uid_restriction is None and anyone.gid_restriction is None
    assert client.decode(client.encode(b"", uid=_Index(os.getuid()))).uid_restriction == os.getuid()
    assert cred.ttl > 0                       # munged's own maximum, as `munge -t` with a huge TTL
    with pytest.raises(E.MungeError):         # the largest id is an id: restricted to it, not anyone
        client.decode(client.encode(b"", uid=2 ** 32 - 2))


def test_a_first_attempt_and_a_deadline_are_not_given_together():
    from pyslurmrpc.auth import munge_xfer
    with pytest.raises(ValueError, match="no deadline"):
        next(munge_xfer.transaction("/x", MsgType.ENC_REQ, b"", deadline=1.0, first=(0, b"")))
