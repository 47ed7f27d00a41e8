"""The decode boundary and the encoder.

``decode_message`` runs construct's compiled parser first (fast); if that
raises anything, the frame is parsed again with the interpreted schema, whose
primitives record the field path and offset, and the failure becomes a
:class:`~pyslurmrpc.errors.RemoteProtocolError` subclass.  No other exception type
leaves this module for any input bytes.
"""

from __future__ import annotations

import struct
from dataclasses import MISSING, fields as dataclass_fields

from construct import ConstructError

from ..errors import (
    FailureReason, FrameTooLargeError, InvalidFieldError, LocalProtocolError, ProtocolError, RemoteProtocolError,
    TrailingBytesError, TruncatedError, UnknownMessageTypeError, UnsupportedVersionError,
)
from .bodies import BODY_CLASSES, Body
from .constants import LENGTH_PREFIX_SIZE, MAX_MSG_SIZE, SLURM_NO_AUTH_CRED
from .primitives import BadField, FieldError, OversizedField, TruncatedField, UnknownType
from .types import AUTH_CLASSES, Address, Auth, Forward, Header, Message, RetDataInfo
from .versions import VERSIONS, VersionSpec, version_text

#: construct-level error -> our error class
_ERROR_CLASSES = {
    TruncatedField: TruncatedError,
    OversizedField: FrameTooLargeError,
    BadField: InvalidFieldError,
    UnknownType: UnknownMessageTypeError,
}


#: length prefix and header version, read together on the decoder's fast path
_PREFIX = struct.Struct(">IH")


def u32_at(frame: bytes, at: int) -> int:
    """The big-endian u32 at ``at`` (the caller has checked that four bytes are there)."""
    return int.from_bytes(frame[at:at + 4], "big")


def check_prefix(frame: bytes) -> int:
    """Validate the 4-byte length prefix against the frame; return the declared length."""
    if len(frame) < LENGTH_PREFIX_SIZE:
        raise TruncatedError(f"length prefix needs 4 bytes, {len(frame)} present", field="length", offset=0)
    declared = u32_at(frame, 0)
    if declared > MAX_MSG_SIZE:
        raise FrameTooLargeError(f"length prefix {declared} over Slurm's maximum {MAX_MSG_SIZE}",
                                 field="length", offset=0)
    have = len(frame) - LENGTH_PREFIX_SIZE
    if have < declared:
        raise TruncatedError(f"frame declares {declared} bytes, {have} present", field="length", offset=0)
    if have > declared:
        raise TrailingBytesError(f"{have - declared} bytes after the frame's declared end",
                                 field="length", offset=LENGTH_PREFIX_SIZE + declared)
    return declared


def spec_for(frame: bytes) -> VersionSpec:
    """The VersionSpec for the header version of ``frame`` (prefix already checked)."""
    if len(frame) < LENGTH_PREFIX_SIZE + 2:
        raise TruncatedError("header.version needs 2 bytes", field="header.version", offset=4)
    version = int.from_bytes(frame[4:6], "big")
    spec = VERSIONS.get(version)
    if spec is None:
        raise UnsupportedVersionError(f"protocol version {version_text(version)} is not supported",
                                      field="header.version", offset=4)
    return spec


def as_frame_bytes(frame) -> bytes:
    """``frame`` as bytes; only bytes-like objects are frames (``bytes(12)`` is 12 NULs)."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise TypeError(f"a frame is bytes, a bytearray or a memoryview, not {type(frame).__name__}")
    return bytes(frame)


def decode_message(frame) -> Message:
    """Decode one whole frame (length prefix included) into a :class:`Message`.

    Raises a :class:`ProtocolError` subclass naming the field and offset for
    any malformed input; never any other exception.  ``frame`` is bytes, a bytearray or
    a memoryview (a TypeError otherwise: an int was taken as that many NUL bytes).
    """
    if type(frame) is not bytes:
        frame = as_frame_bytes(frame)
    declared, version = _PREFIX.unpack_from(frame) if len(frame) >= _PREFIX.size else (None, None)
    spec = VERSIONS.get(version)
    if spec is None or declared != len(frame) - LENGTH_PREFIX_SIZE or declared > MAX_MSG_SIZE:
        check_prefix(frame)  # these two raise the error that names what is wrong
        spec = spec_for(frame)
    try:
        parsed = spec.compiled.parse(frame)
    except Exception:  # the fast path gives no detail: parse again to explain
        raise _explain(spec, frame) from None
    end = parsed["end"]
    if end != len(frame) or parsed["header"]["body_length"] != end - parsed["body_start"]:
        _check_extent(spec, parsed, frame)   # raises the error that says which
    return _to_message(spec, parsed)  # the fast path's dicts are plain and fresh: adopted as they are


def message_from_parsed(spec: VersionSpec, parsed, frame: bytes) -> Message:
    """The Message of a frame ``spec``'s interpreted schema parsed (checks what the schema cannot)."""
    _check_extent(spec, parsed, frame)
    return _to_message(spec, _plain_tree(parsed))


def _plain_tree(value):
    """construct's Containers as plain dicts without its bookkeeping keys ("_", "_io")."""
    if isinstance(value, dict):
        return {k: _plain_tree(v) for k, v in value.items() if k not in ("_", "_io")}
    if isinstance(value, list):
        return [_plain_tree(v) for v in value]
    return value


#: what the interpreted schema raises on bad bytes
PARSE_ERRORS = (ConstructError, ValueError, OverflowError, RecursionError, MemoryError)


def _explain(spec: VersionSpec, frame: bytes) -> ProtocolError:
    try:
        spec.frame.parse(frame)
    except PARSE_ERRORS as exc:
        return parse_failure(spec, exc, frame)
    return RemoteProtocolError("frame rejected by the fast decoder but accepted by the checker")


def parse_failure(spec: VersionSpec, exc: Exception, frame: bytes) -> ProtocolError:
    """The ProtocolError for one of :data:`PARSE_ERRORS` raised by ``spec.frame``."""
    if isinstance(exc, FieldError):
        return _convert(spec, exc, frame)
    return RemoteProtocolError(f"malformed frame: {exc}", field=_path(getattr(exc, "path", None)))


def _path(path) -> str | None:
    """construct's '(parsing) -> header -> forward -> nodelist' to 'header.forward.nodelist'."""
    if not path:
        return None
    parts = [p.strip() for p in str(path).split("->")]
    return ".".join(p for p in parts if p and not p.startswith("("))


def _convert(spec: VersionSpec, exc: FieldError, frame: bytes) -> ProtocolError:
    field = _path(exc.path)
    cls = _ERROR_CLASSES.get(type(exc), RemoteProtocolError)
    message = str(exc).split("\n")[-1]
    if isinstance(exc, UnknownType) and field == "body":
        return UnknownMessageTypeError(message, field="header.msg_type", offset=spec.msg_type_offset)
    return cls(message, field=field, offset=exc.offset)


def _check_extent(spec: VersionSpec, parsed, frame: bytes) -> None:
    end = parsed["end"]
    if end != len(frame):
        raise TrailingBytesError(f"{len(frame) - end} bytes after the body", field="body", offset=end)
    body_length = end - parsed["body_start"]
    if parsed["header"]["body_length"] != body_length:
        raise InvalidFieldError(
            f"header.body_length says {parsed['header']['body_length']}, the body has {body_length} bytes",
            field="header.body_length", offset=spec.msg_type_offset + 2)


# ----------------------------------------------------------------------------
# parsed dicts -> plain objects.  Frozen dataclasses are filled through
# __dict__ here: the decoder makes thousands of them a second and the checked
# __init__ of a frozen dataclass costs more than the parse itself.  The dicts
# are fresh per parse and hold exactly the dataclass's fields.
# ----------------------------------------------------------------------------
_new = object.__new__
_set = object.__setattr__


def frozen_instance(cls, **fields):
    """An instance of the frozen dataclass ``cls`` holding ``fields`` (all of them), without
    its checked __init__ (what the decoder builds; repeats.py builds the same)."""
    obj = _new(cls)
    _set(obj, "__dict__", fields)
    return obj


def _adopt(cls, values: dict):
    """An instance of ``cls`` whose __dict__ is ``values`` (a dict nothing else keeps)."""
    obj = _new(cls)
    _set(obj, "__dict__", values)
    return obj


def _body(msg_type: int, parsed: dict) -> Body:
    """The body dataclass of ``msg_type``, made from the parsed dict (fresh per parse)."""
    obj = _new(BODY_CLASSES[msg_type])
    _set(obj, "__dict__", parsed)
    return obj


def _to_message(spec: VersionSpec, parsed) -> Message:
    h = parsed["header"]  # fresh per parse: becomes the Header's __dict__
    h["ret_list"] = tuple(map(_to_ret, h["ret_list"])) if h.pop("ret_cnt") else ()
    forward = h["forward"]
    h["forward"] = _to_forward(forward) if forward["cnt"] else _NO_FORWARD
    h["orig_addr"] = _to_addr(h["orig_addr"])
    if "msg_index" not in h:
        h["msg_index"] = 0  # 22.05+ headers have none
    return _adopt(Message, {"header": _adopt(Header, h), "auth": _to_auth(parsed["auth"]),
                            "body": _body(h["msg_type"], parsed["body"])})


_NO_FORWARD = Forward()
#: orig_addr of a message nobody forwarded, per layout (shared: the dataclasses are frozen)
_NO_ADDR = Address(None, 0, 0)


def _to_forward(f) -> Forward:
    return Forward(cnt=f["cnt"], nodelist=f["nodelist"], timeout=f["timeout"],
                   tree_width=f["tree_width"], net_cred=f.get("net_cred"),
                   tree_depth=f.get("tree_depth"))


def _to_ret(r) -> RetDataInfo:
    return RetDataInfo(node_name=r["node_name"], err=r["err"], msg_type=r["msg_type"],
                       body=_body(r["msg_type"], r["body"]))


def _to_addr(a) -> Address:
    if "family" not in a:
        if not a["addr"] and not a["port"]:
            return _NO_ADDR
        return frozen_instance(Address, family=None, addr=a["addr"], port=a["port"])
    inner = a["in"]
    if inner is None:
        return Address(a["family"], None, 0)
    return Address(a["family"], inner["addr"], inner["port"])


#: plugin id (19.05+) or name (older layouts) -> (envelope class, the defaults of the fields its
#: schema may leave out: the 17.11 auth/none credential has no hostname)
_AUTH_BY_KEY = {key: (cls, tuple((f.name, f.default) for f in dataclass_fields(cls)
                                 if f.default is not MISSING and f.name != "plugin_version"))
                for cls in AUTH_CLASSES.values() for key in (cls.plugin_id, cls.plugin)}
_AUTH_TYPES = frozenset(AUTH_CLASSES.values())


def _to_auth(a) -> Auth | None:
    if a is None:
        return None
    plugin = a.get("plugin_id")
    if plugin is None:
        plugin, version = a["plugin_type"], a["plugin_version"]
    else:
        version = 0
    known = _AUTH_BY_KEY.get(plugin)
    if known is None:  # a credential schema without an envelope class: the tables disagree
        raise UnknownMessageTypeError(f"auth plugin {plugin!r} has no envelope class", field="auth")
    cls, defaults = known
    values = a["cred"]  # fresh per parse: becomes the envelope's __dict__
    for name, default in defaults:
        if name not in values:
            values[name] = default
    values["plugin_version"] = version
    return _adopt(cls, values)


# ----------------------------------------------------------------------------
# plain objects -> bytes
# ----------------------------------------------------------------------------
def encode_message(message: Message, *, body_bytes: bytes | None = None) -> bytes:
    """Encode a :class:`Message` into a whole frame (length prefix included).

    ``body_bytes``: the body already encoded (by :func:`encode_body`), used as is.

    ``header.body_length`` and the counts (forward.cnt is taken as given,
    ret_cnt from ``len(ret_list)``) are computed from the content, so
    ``encode_message(decode_message(f)) == f`` for every frame decode accepts.
    """
    header, auth = message.header, message.auth
    spec = VERSIONS.get(header.version)
    if spec is None:
        raise LocalProtocolError(f"protocol version {header.version!r} is not supported",
                                 field="header.version", reason=FailureReason.UNSUPPORTED_VERSION)
    layout = spec.layout
    if (auth is None) != (layout.no_auth_flag and bool(header.flags & SLURM_NO_AUTH_CRED)):
        raise LocalProtocolError("auth must be None exactly when flags carry SLURM_NO_AUTH_CRED "
                                 "(23.02 and later headers)", field="auth", reason=FailureReason.INVALID_FIELD)
    msg_type = header.msg_type
    if msg_type not in layout.bodies:
        raise LocalProtocolError(
            f"message type {msg_type} has no schema in {spec.name}",
            field="header.msg_type", reason=FailureReason.UNKNOWN_MESSAGE_TYPE)
    # the header's and auth's faults are named before the body's (the trees raise them)
    tree = {"header": _header_tree(header), "auth": _auth_tree(spec, auth)}
    if body_bytes is None:
        msg_type = int(msg_type)
        body_bytes = _build(spec.compiled_bodies[msg_type], layout.bodies[msg_type],
                            _body_fields(msg_type, message.body), "body")
    tree["header"]["body_length"] = len(body_bytes)
    head = _build(spec.compiled_head, spec.head, tree, "")
    return (len(head) + len(body_bytes)).to_bytes(4, "big") + head + body_bytes


def encode_body(version: int, msg_type: int, body) -> bytes:
    """The packed body alone (what Slurm 22.05+ hashes into the credential's payload)."""
    spec = VERSIONS[version]
    values = _body_fields(int(msg_type), body)
    return _build(spec.compiled_bodies[int(msg_type)], spec.layout.bodies[msg_type], values, "body")


def _body_fields(msg_type: int, body, ret_index: int | None = None) -> dict:
    """The fields of ``body``, which must be the dataclass the body table lists for ``msg_type``."""
    cls = BODY_CLASSES.get(msg_type)
    if type(body) is not cls:
        expected = cls.__name__ if cls else "a known message type's"
        where = "body" if ret_index is None else f"header.ret_list.{ret_index}.body"
        raise _unencodable(f"message type {msg_type} takes a {expected} body, not {type(body).__name__}",
                                where)
    return body.__dict__  # the builders only read it


def _build(compiled, interpreted, tree, where: str) -> bytes:
    """Build with the compiled schema; on failure explain with the interpreted one."""
    try:
        return compiled.build(tree)
    except Exception:
        pass
    try:
        interpreted.build(tree)
    except FieldError as exc:
        raise _unencodable(str(exc).split("\n")[-1], _join(where, _path(exc.path))) from None
    except Exception as exc:
        raise _unencodable(f"cannot encode: {str(exc).splitlines()[-1]}",
                           _join(where, _path(getattr(exc, "path", None)))) from None
    raise _unencodable("value rejected by the compiled encoder", where or None)


def _unencodable(message: str, field: str | None) -> LocalProtocolError:
    return LocalProtocolError(message, field=field, reason=FailureReason.INVALID_FIELD)


def _join(where: str, path: str | None) -> str | None:
    return ".".join(p for p in (where, path) if p) or None


#: the forward part of a message nobody forwards: with cnt 0 the schema packs nothing else
_NO_FORWARD_TREE = {"cnt": 0, "nodelist": None, "timeout": 0, "tree_width": 0, "net_cred": None, "tree_depth": 0}


def _forward_tree(f: Forward) -> dict:
    if not f.cnt:
        return _NO_FORWARD_TREE  # shared: the builders only read it
    return {"cnt": f.cnt, "nodelist": f.nodelist, "timeout": f.timeout, "tree_width": f.tree_width,
            "net_cred": f.net_cred, "tree_depth": f.tree_depth or 0}


#: the tree of _NO_ADDR, orig_addr of a decoded message nobody forwarded (shared: the builders only read it)
_NO_ADDR_TREE = {"addr": 0, "port": 0}


def _header_tree(h: Header) -> dict:
    a = h.orig_addr
    if a is _NO_ADDR:
        addr = _NO_ADDR_TREE
    elif a.family is None:
        addr = {"addr": a.addr or 0, "port": a.port}
    else:
        addr = {"family": a.family, "in": {"addr": a.addr, "port": a.port} if a.addr is not None else None}
    ret_list = h.ret_list
    return {
        "version": h.version, "flags": h.flags, "msg_index": h.msg_index, "msg_type": h.msg_type,
        "body_length": 0,
        "forward": _forward_tree(h.forward),
        "ret_cnt": len(ret_list),
        "ret_list": [{"err": r.err, "msg_type": r.msg_type, "node_name": r.node_name,
                      "body": _body_fields(r.msg_type, r.body, i)}
                     for i, r in enumerate(ret_list)] if ret_list else (),
        "orig_addr": addr,
    }


def _auth_tree(spec: VersionSpec, a: Auth | None) -> dict | None:
    if a is None:
        return None
    if type(a) not in _AUTH_TYPES:
        raise _unencodable(f"auth must be a MungeAuthCred or NoneAuthCred, not {type(a).__name__}",
                                "auth")
    cred = a.__dict__  # each plugin's schema reads the fields it packs
    if spec.layout.auth == "by_type":
        return {"plugin_type": a.plugin, "plugin_version": a.plugin_version, "cred": cred}
    return {"plugin_id": a.plugin_id, "cred": cred}
