"""Property tests: every schema round-trips, and only ProtocolError escapes the decoder."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings, strategies as st

from pyslurmrpc.errors import ProtocolError
from pyslurmrpc.wire import (
    BODY_TABLE, VERSIONS, Address, Forward, Header, Message, MsgType, MungeAuthCred, NoneAuthCred,
    RetDataInfo, ReturnCodeMsg, decode_message, encode_message,
)
from pyslurmrpc.wire.codec import check_prefix, spec_for

from fixtures_data import all_recordings

u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
i32 = st.integers(-2**31, 2**31 - 1)
i64 = st.integers(-2**63, 2**63 - 1)
text = st.one_of(st.none(), st.text(st.characters(blacklist_characters="\0",
                                                  blacklist_categories=("Cs",)), max_size=40))

#: field name -> strategy, for every body field of every schema
FIELD_VALUES = {
    "op": u16, "data": u16, "job_id": u32, "step_id": u32, "job_step_id": u32, "task_id": u32,
    "image_dir": text, "error_msg": text, "error_code": u32, "begin_time": i64,
    "event_time": i64, "timestamp": i64, "return_code": i32,
}


def _body_strategy(msg_type):
    schema, cls = BODY_TABLE[msg_type]
    values = st.fixed_dictionaries({sc.name: FIELD_VALUES[sc.name] for sc in schema.subcons})
    return st.builds(lambda v: cls(**v), values)


def _auth_strategy(spec):
    munge = st.builds(lambda c: MungeAuthCred(credential=c), text.filter(bool))
    if spec.layout.auth == "by_type":
        none = st.builds(lambda u, g: NoneAuthCred(uid=u, gid=g), u32, u32)
        munge = st.builds(lambda c, v: MungeAuthCred(credential=c, plugin_version=v),
                          text.filter(bool), u32)
        return st.one_of(munge, none)
    if 100 in spec.layout.creds:
        none = st.builds(lambda u, g, h: NoneAuthCred(uid=u, gid=g, hostname=h), u32, u32, text)
        return st.one_of(munge, none)
    return munge


def _addr_strategy(spec):
    if "family" not in [sc.name for sc in spec.layout.addr.subcons]:
        return st.builds(lambda a, p: Address(None, a, p), u32, u16)
    return st.one_of(
        st.builds(lambda: Address(0, None, 0)),
        st.builds(lambda a, p: Address(2, a, p), u32, u16),
        st.builds(lambda a, p: Address(10, a, p), st.binary(min_size=16, max_size=16), u16),
    )


def _forward_strategy(spec):
    names = [sc.name for sc in spec.layout.forward.subcons]
    has_net_cred, has_depth = "net_cred" in names, "tree_depth" in names
    return st.one_of(
        st.just(Forward()),
        st.builds(lambda c, n, t, w, cred, d: Forward(c, n, t, w, cred if has_net_cred else None,
                                                      d if has_depth else None),
                  st.integers(1, 2**16 - 1), text, u32, u16, text, u16),
    )


@st.composite
def messages(draw):
    code = draw(st.sampled_from(sorted(VERSIONS)))
    spec = VERSIONS[code]
    msg_type = draw(st.sampled_from(sorted(int(k) for k in spec.layout.bodies)))
    forward = draw(_forward_strategy(spec))
    flags = draw(u16)
    if forward.net_cred is not None:
        flags |= 0x80
    else:
        flags &= ~0x80
    rets = draw(st.lists(st.builds(
        lambda n, e, rc: RetDataInfo(n, e, int(MsgType.RESPONSE_SLURM_RC), ReturnCodeMsg(return_code=rc)),
        text, i32, i32), max_size=3))
    auth = draw(_auth_strategy(spec))
    flags &= ~0x40
    if spec.layout.no_auth_flag and draw(st.booleans()):
        flags |= 0x40
        auth = None
    header = Header(version=code, msg_type=msg_type, flags=flags,
                    msg_index=draw(u16) if spec.layout.msg_index else 0,
                    forward=forward, ret_list=tuple(rets), orig_addr=draw(_addr_strategy(spec)))
    return Message(header, auth, draw(_body_strategy(msg_type)))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_every_schema_round_trips(message):
    frame = encode_message(message)
    decoded = decode_message(frame)
    assert decoded.header.msg_type == message.header.msg_type
    assert type(decoded.body) is type(message.body) and decoded.body == message.body
    assert decoded.auth == message.auth
    assert decoded.header.forward == message.header.forward
    assert decoded.header.forward.nodelist == message.header.forward.nodelist
    assert [r.body for r in decoded.header.ret_list] == [r.body for r in message.header.ret_list]
    assert decoded.header.orig_addr.addr == message.header.orig_addr.addr
    assert encode_message(decoded) == frame


def _decode_only_protocol_errors(data: bytes):
    try:
        message = decode_message(data)
    except ProtocolError:
        return None
    assert encode_message(message) == data
    return message


def _interpreted_agrees(data: bytes):
    """The compiled fast path and the interpreted checker accept the same frames."""
    try:
        check_prefix(data)
        spec = spec_for(data)
    except ProtocolError:
        return
    try:
        spec.compiled.parse(data)
        compiled_ok = True
    except Exception:
        compiled_ok = False
    try:
        spec.frame.parse(data)
        interpreted_ok = True
    except Exception:
        interpreted_ok = False
    assert compiled_ok == interpreted_ok


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_protocol_error(data):
    _decode_only_protocol_errors(data)
    _decode_only_protocol_errors(len(data).to_bytes(4, "big") + data)


FIXTURE_FRAMES = [p.read_bytes() for p in all_recordings()]


@settings(max_examples=2500, deadline=None)
@given(st.sampled_from(FIXTURE_FRAMES), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)),
                                                 min_size=1, max_size=6),
       st.integers(0, 3))
def test_mutated_fixtures_raise_only_protocol_error(frame, edits, cut):
    data = bytearray(frame)
    for pos, value in edits:
        data[pos % len(data)] = value
    data = bytes(data[:len(data) - cut])
    _decode_only_protocol_errors(data)
    _interpreted_agrees(data)
    # keep the prefix consistent so the mutation reaches the inner fields
    fixed = (len(data) - 4).to_bytes(4, "big") + data[4:]
    _decode_only_protocol_errors(fixed)
    _interpreted_agrees(fixed)


def test_fuzz_many_mutations_deterministic():
    """A cheap, seeded mutation loop over every fixture (big count, no hypothesis shrinking)."""
    rng = random.Random(1905)
    for _ in range(20000):
        frame = bytearray(rng.choice(FIXTURE_FRAMES))
        for _ in range(rng.randint(1, 4)):
            frame[rng.randrange(4, len(frame))] = rng.randrange(256)
        frame[:4] = (len(frame) - 4).to_bytes(4, "big")
        _decode_only_protocol_errors(bytes(frame))
