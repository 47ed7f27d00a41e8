"""Secrets never leak into reprs, exception texts or logs (issue 8, protocol_specs/security.md §5).

A MUNGE credential is a bearer token for its TTL (anyone holding it can have
it decoded once), and the key file is the cluster's root of trust.  These
tests take real credentials minted by a real munged and the real key bytes and
check that no ``repr``/``str`` of the objects that hold them, no exception
raised while handling them, no debug log line of an RPC (the CLI's ``-v``)
and no output of ``pyslurmrpc decode`` contains either.
"""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stderr, redirect_stdout

import pytest

from pyslurmrpc import Client
from pyslurmrpc.auth.errors import SlurmAuthError
from pyslurmrpc.auth.munge import MungeClient, decode_offline
from pyslurmrpc.auth.munge_cred import MungeKey
from pyslurmrpc.auth.slurm_auth import AsyncMungeAuth, MungeAuth, OfflineMungeAuth
from pyslurmrpc.decode import MungeOpener, decode_stream
from pyslurmrpc.decode.render import stream_json, stream_lines
from pyslurmrpc.fake.daemon_auth import DaemonAuth
from pyslurmrpc.wire import (
    Address, CheckpointMsg, CheckpointRespMsg, Header, Message, MsgType, MungeAuthCred, ReturnCodeMsg, decode_message,
    encode_message,
)
from pyslurmrpc.wire.types import describe

from peers import ReplayPeer


def secret_forms(key: bytes) -> list[str]:
    """Textual forms key material could take in a leak: hex, repr, latin-1, derived subkeys."""
    forms = [key.hex(), repr(key)[2:-1][:64], key[:32].decode("latin-1")]
    mk = MungeKey(key)
    for sub in (mk._dek_key, mk._mac_key):
        forms += [sub.hex(), repr(sub)[2:-1]]
    return [f for f in forms if len(f) >= 16]


def assert_clean(text: str, credentials=(), key: bytes | None = None, what: str = "") -> None:
    for cred in credentials:
        assert cred not in text, f"{what}: a MUNGE credential appears in {text[:200]!r}"
        assert cred[6:40] not in text, f"{what}: part of a MUNGE credential appears"
    if key is not None:
        for form in secret_forms(key):
            assert form not in text, f"{what}: key material appears"


def signed_rc(request: bytes, signer, code: int = 0) -> bytes:
    version = decode_message(request).version
    return encode_message(Message(Header(version, MsgType.RESPONSE_SLURM_RC, orig_addr=Address()),
                                  signer.create(version), ReturnCodeMsg(return_code=code)))


def test_reprs_and_errors_hold_no_credential_or_key(munged):
    key = open(munged.key_file, "rb").read()
    sync_auth = MungeAuth(munged.socket_path)
    envelope = sync_auth.create()
    cred = envelope.credential
    assert cred.startswith("MUNGE:")
    verified = sync_auth.verify(envelope)
    offline = decode_offline(cred, MungeKey(key))
    message = Message(Header(0x2200, MsgType.REQUEST_CHECKPOINT), envelope,
                      CheckpointMsg(op=0, data=0, job_id=2, step_id=0, image_dir=None))
    objects = [envelope, verified, verified.credential, offline, message, message.header,
               MungeKey(key), MungeKey.from_file(munged.key_file), OfflineMungeAuth(key),
               OfflineMungeAuth(munged.key_file), sync_auth, AsyncMungeAuth(munged.socket_path),
               sync_auth.client, MungeClient(munged.socket_path), DaemonAuth(OfflineMungeAuth(key)),
               MungeOpener(munged.key_file), munged]
    for obj in objects:
        for text in (repr(obj), str(obj)):
            assert_clean(text, [cred], key, type(obj).__name__)
    assert_clean(describe(message), [cred], key, "describe")
    assert "credential redacted" in describe(message)

    # a credential munged refuses (tampered), one from another key, one replayed: the
    # exceptions name the MUNGE error, never the credential
    tampered = cred[:20] + ("A" if cred[20] != "A" else "B") + cred[21:]
    stranger = OfflineMungeAuth(b"k" * 1024).create().credential
    for bad in (tampered, stranger, cred):  # cred was verified once above: now a replay
        with pytest.raises(SlurmAuthError) as info:
            sync_auth.verify(MungeAuthCred(credential=bad))
        for text in (str(info.value), repr(info.value), str(info.value.munge_error),
                     repr(info.value.munge_error)):
            assert_clean(text, [bad], key, "SlurmAuthError")


def test_rpc_debug_log_and_cli_verbose_redact_credentials(munged, caplog):
    signer = MungeAuth(munged.socket_path)
    replies: list[bytes] = []

    def answer(request):
        replies.append(signed_rc(request, signer))
        return replies[-1]

    with ReplayPeer(answer) as peer:
        # the library's debug log, as the -v CLI sets it up
        with caplog.at_level(logging.DEBUG, logger="pyslurmrpc"):
            Client(peer.host, peer.port, auth="munge", munge_socket=munged.socket_path,
                   timeout=5).checkpoint_disable(2, 0)
        # the CLI itself with -v
        from pyslurmrpc.cli import main

        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["-v", "--controller", f"{peer.host}:{peer.port}", "--munge-socket",
                         munged.socket_path, "--timeout", "5", "checkpoint", "enable", "2.0"])
    assert code == 0, err.getvalue()
    credentials = [decode_message(f).auth.credential for f in peer.received + replies]
    assert len(credentials) == 4 and all(c.startswith("MUNGE:") for c in credentials)

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "credential redacted" in logged and "REQUEST_CHECKPOINT" in logged
    assert_clean(logged, credentials, what="pyslurmrpc.rpc debug log")
    assert "credential redacted" in err.getvalue()
    assert_clean(out.getvalue() + err.getvalue(), credentials, what="pyslurmrpc -v")


def test_debug_log_withholds_a_credential_in_a_request_or_reply_string(munged, caplog):
    """A credential's text in a body's string (an image_dir given by mistake, an error message a
    peer sends) was logged as it was by -v."""
    signer = MungeAuth(munged.socket_path)
    in_request, in_reply = signer.create().credential, signer.create().credential

    def answer(request):
        version = decode_message(request).version
        return encode_message(Message(Header(version, MsgType.RESPONSE_CHECKPOINT, orig_addr=Address()),
                                      signer.create(version),
                                      CheckpointRespMsg(event_time=1, error_code=5, error_msg=f"see {in_reply}")))

    with ReplayPeer(answer) as peer, caplog.at_level(logging.DEBUG, logger="pyslurmrpc"):
        client = Client(peer.host, peer.port, auth="munge", munge_socket=munged.socket_path, timeout=5)
        assert client.checkpoint_error(2, 0) == (5, f"see {in_reply}")
        client.checkpoint_create(2, 0, 0, image_dir=f"/ckpt/{in_request}")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "image_dir=<withheld: a credential?>" in logged and "error_msg=<withheld: a credential?>" in logged
    assert_clean(logged, [in_request, in_reply], what="pyslurmrpc.rpc debug log")


def test_capture_decoder_output_redacts_credentials(munged):
    """``pyslurmrpc decode`` (text and JSON, with --munge-key opening the credential) never prints it."""
    from pathlib import Path

    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    data = (fixtures / "able_running.request.bin").read_bytes() + \
        (fixtures / "able_access_denied.response.bin").read_bytes()
    credentials = [decode_message(f).auth.credential for f in (
        (fixtures / "able_running.request.bin").read_bytes(),
        (fixtures / "able_access_denied.response.bin").read_bytes())]
    report = decode_stream(data, "fixtures", MungeOpener(fixtures / "munge.key"))
    assert all(f.munge for f in report.frames)  # the opener did open them
    key = (fixtures / "munge.key").read_bytes()
    assert_clean("\n".join(stream_lines(report)), credentials, key, "decode text")
    assert_clean("\n".join(stream_json(report)), credentials, key, "decode json")
    # and through the CLI entry point
    from pyslurmrpc.decode.cli import main

    out, err = io.StringIO(), io.StringIO()
    main([str(fixtures / "able_running.request.bin"), "--munge-key", str(fixtures / "munge.key")],
         stdout=out, stderr=err)
    assert "not shown" in out.getvalue()
    assert_clean(out.getvalue() + err.getvalue(), credentials[:1], key, "pyslurmrpc decode")
