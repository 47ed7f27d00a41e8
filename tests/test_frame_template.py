"""Request frames packed into a template built once per kind of request (wire.repeats.CredentialTemplate,
client.core.request_frame): byte for byte what encoding the whole message gives, for every
release, call, forwarding and credential; what a template cannot take is encoded whole."""

import pytest

from pyslurmrpc.client import calls, core
from pyslurmrpc.errors import LocalProtocolError
from pyslurmrpc.wire import VERSIONS, Forward, MungeAuthCred, NoneAuthCred, encode_message
from pyslurmrpc.wire.codec import encode_body
from pyslurmrpc.wire.repeats import _SLOT, CredentialTemplate
from pyslurmrpc.wire.versions import CHECKPOINT_VERSIONS, VERSION_CODES

CHECKPOINT = [VERSION_CODES[name] for name in CHECKPOINT_VERSIONS]
CALLS = [
    calls.able(7, 0), calls.disable(7, 1), calls.enable(7, 2), calls.create(7, 3, 60, "/img"),
    calls.vacate(7, 4, 0), calls.requeue(7, 9), calls.restart(7, 5, True, "/img/x"), calls.error(7, 6),
    calls.complete(7, 7, 1_700_000_000, 0, "done"), calls.task_complete(7, 8, 3, 1_700_000_000, 1, None),
    calls.tasks(7, 9, 1_700_000_000, "/img"),
]
CREDENTIALS = ["", "M", "MUNGE:" + "A" * 121 + ":", "MUNGE:" + "b" * 300 + ":", None]
FORWARDS = [Forward(), Forward(cnt=3, nodelist="n[1-3]", timeout=10000, tree_width=50)]


def whole(call, auth, version, forward=Forward(), body=None):
    return encode_message(core._request(call, auth, version, forward), body_bytes=body)


@pytest.fixture(autouse=True)
def fresh_templates():
    core._TEMPLATES.clear()
    yield
    core._TEMPLATES.clear()


@pytest.mark.parametrize("version", sorted(VERSIONS), ids=hex)
@pytest.mark.parametrize("credential", CREDENTIALS, ids=lambda c: "none" if c is None else f"{len(c)}b")
def test_a_ping_is_the_whole_encoding_in_every_release(version, credential):
    for plugin_version in (0, 0x2000):
        auth = MungeAuthCred(credential=credential, plugin_version=plugin_version)
        assert core.request_frame(calls.ping(), auth, version) == whole(calls.ping(), auth, version)


@pytest.mark.parametrize("version", CHECKPOINT, ids=hex)
@pytest.mark.parametrize("call", CALLS, ids=lambda c: c.name)
@pytest.mark.parametrize("forward", FORWARDS, ids=["direct", "forwarded"])
def test_every_checkpoint_call_is_the_whole_encoding(version, call, forward):
    for credential in CREDENTIALS:
        auth = MungeAuthCred(credential=credential)
        assert core.request_frame(call, auth, version, forward) == whole(call, auth, version, forward)


@pytest.mark.parametrize("version", [v for v in sorted(VERSIONS) if v >= 0x2600], ids=hex)
def test_a_body_encoded_beforehand_goes_in_as_given(version):
    body = encode_body(version, calls.ping().msg_type, calls.ping().body)
    auth = MungeAuthCred(credential="MUNGE:xyz:")
    assert core.request_frame(calls.ping(), auth, version, body=body) == whole(calls.ping(), auth, version, body=body)


def test_one_template_per_kind_of_request_and_reused():
    for n in range(5):
        core.request_frame(calls.ping(), MungeAuthCred(credential=f"MUNGE:{n}:"), 0x2500)
    assert len(core._TEMPLATES) == 1
    core.request_frame(calls.able(1, 2), MungeAuthCred(credential="MUNGE:a:"), 0x2200)
    core.request_frame(calls.able(1, 3), MungeAuthCred(credential="MUNGE:a:"), 0x2200)
    assert len(core._TEMPLATES) == 3


def test_the_kept_templates_are_bounded(monkeypatch):
    monkeypatch.setattr(core, "MAX_FRAME_TEMPLATES", 8)
    for job in range(50):
        call = calls.able(job, 0)
        auth = MungeAuthCred(credential="MUNGE:a:")
        assert core.request_frame(call, auth, 0x2200) == whole(call, auth, 0x2200)
        assert len(core._TEMPLATES) <= 8


def test_a_credential_with_a_nul_is_refused_as_the_whole_encoding_refuses_it():
    auth = MungeAuthCred(credential="MUNGE:a\0b:")
    with pytest.raises(LocalProtocolError) as whole_error:
        whole(calls.ping(), auth, 0x2500)
    core.request_frame(calls.ping(), MungeAuthCred(credential="MUNGE:ok:"), 0x2500)   # a template exists
    with pytest.raises(LocalProtocolError) as packed_error:
        core.request_frame(calls.ping(), auth, 0x2500)
    assert str(packed_error.value) == str(whole_error.value)
    assert packed_error.value.field == whole_error.value.field == "auth.cred.credential"


def test_a_body_holding_the_placeholder_is_encoded_whole():
    call = calls.create(7, 3, 60, _SLOT)
    auth = MungeAuthCred(credential="MUNGE:a:")
    assert core.request_frame(call, auth, 0x2200) == whole(call, auth, 0x2200)
    assert list(core._TEMPLATES.values()) == [None]
    with pytest.raises(ValueError, match="placeholder"):
        CredentialTemplate(core._request(call, auth, 0x2200, Forward()))


def test_auth_none_is_encoded_whole():
    auth = NoneAuthCred(uid=1000, gid=1000, hostname="h")
    assert core.request_frame(calls.ping(), auth, 0x2200) == whole(calls.ping(), auth, 0x2200)
    assert not core._TEMPLATES
    with pytest.raises(TypeError, match="MungeAuthCred"):
        CredentialTemplate(core._request(calls.ping(), auth, 0x2200, Forward()))


def test_an_unknown_version_fails_as_the_whole_encoding_fails():
    auth = MungeAuthCred(credential="MUNGE:a:")
    with pytest.raises(Exception) as whole_error:
        whole(calls.ping(), auth, 0x1f00)
    with pytest.raises(type(whole_error.value)):
        core.request_frame(calls.ping(), auth, 0x1f00)
