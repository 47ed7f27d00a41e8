"""The decode boundary and the encoder.

``decode_message`` runs construct's compiled parser first (fast); if that
raises anything, the frame is parsed again with the interpreted schema, whose
primitives record the field path and offset, and the failure becomes a
:class:`~pyslurmrpc.errors.ProtocolError` subclass.  No other exception type
leaves this module for any input bytes.
"""

from __future__ import annotations

from construct import ConstructError
from munch import Munch

from ..errors import (
    FrameTooLargeError, InvalidFieldError, ProtocolError, TrailingBytesError, TruncatedError,
    UnknownMessageTypeError, UnsupportedVersionError,
)
from .constants import (
    AUTH_PLUGIN_IDS, AUTH_PLUGIN_NAMES, LENGTH_PREFIX_SIZE, MAX_MSG_SIZE, SLURM_NO_AUTH_CRED,
)
from .primitives import BadField, FieldError, OversizedField, TruncatedField, UnknownType
from .types import Address, Auth, Forward, Header, Message, RetEntry
from .versions import VERSIONS, VersionSpec

#: construct-level error -> our error class
_ERROR_CLASSES = {
    TruncatedField: TruncatedError,
    OversizedField: FrameTooLargeError,
    BadField: InvalidFieldError,
    UnknownType: UnknownMessageTypeError,
}


def _u32(frame: bytes, at: int) -> int:
    return int.from_bytes(frame[at:at + 4], "big")


def check_prefix(frame: bytes) -> int:
    """Validate the 4-byte length prefix against the frame; return the declared length."""
    if len(frame) < LENGTH_PREFIX_SIZE:
        raise TruncatedError(f"length prefix needs 4 bytes, {len(frame)} present", field="length", offset=0)
    declared = _u32(frame, 0)
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
        raise UnsupportedVersionError(f"protocol version 0x{version:04x} is not supported",
                                      field="header.version", offset=4)
    return spec


def decode_message(frame) -> Message:
    """Decode one whole frame (length prefix included) into a :class:`Message`.

    Raises a :class:`ProtocolError` subclass naming the field and offset for
    any malformed input; never any other exception.
    """
    frame = bytes(frame)
    check_prefix(frame)
    spec = spec_for(frame)
    try:
        parsed = spec.compiled.parse(frame)
    except Exception:  # the fast path gives no detail: parse again to explain
        raise _explain(spec, frame) from None
    _check_extent(spec, parsed, frame)
    return _to_message(spec, parsed)


def _explain(spec: VersionSpec, frame: bytes) -> ProtocolError:
    try:
        spec.frame.parse(frame)
    except FieldError as exc:
        return _convert(spec, exc, frame)
    except (ConstructError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
        return ProtocolError(f"malformed frame: {exc}", field=_path(getattr(exc, "path", None)))
    return ProtocolError("frame rejected by the fast decoder but accepted by the checker")


def _path(path) -> str | None:
    """construct's '(parsing) -> header -> forward -> nodelist' to 'header.forward.nodelist'."""
    if not path:
        return None
    parts = [p.strip() for p in str(path).split("->")]
    return ".".join(p for p in parts if p and not p.startswith("("))


def _convert(spec: VersionSpec, exc: FieldError, frame: bytes) -> ProtocolError:
    field = _path(exc.path)
    cls = _ERROR_CLASSES.get(type(exc), ProtocolError)
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
# __init__ of a frozen dataclass costs more than the parse itself.
# ----------------------------------------------------------------------------
def _make(cls, **fields):
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


def _plain(parsed) -> Munch:
    return Munch({k: v for k, v in parsed.items() if k[0] != "_"})


def _to_message(spec: VersionSpec, parsed) -> Message:
    h = parsed["header"]
    return _make(
        Message,
        header=_make(
            Header, version=h["version"], msg_type=h["msg_type"], flags=h["flags"],
            msg_index=h.get("msg_index", 0), body_length=h["body_length"],
            forward=_to_forward(h["forward"]),
            ret_list=tuple(_to_ret(r) for r in h["ret_list"]) if h["ret_cnt"] else (),
            orig_addr=_to_addr(h["orig_addr"]),
        ),
        auth=_to_auth(parsed["auth"]),
        body=_plain(parsed["body"]),
    )


_NO_FORWARD = Forward()


def _to_forward(f) -> Forward:
    if not f["cnt"]:
        return _NO_FORWARD
    return Forward(cnt=f["cnt"], nodelist=f["nodelist"], timeout=f["timeout"],
                   tree_width=f["tree_width"], net_cred=f.get("net_cred"),
                   tree_depth=f.get("tree_depth"))


def _to_ret(r) -> RetEntry:
    return RetEntry(node_name=r["node_name"], err=r["err"], msg_type=r["msg_type"], body=_plain(r["body"]))


def _to_addr(a) -> Address:
    if "family" not in a:
        return _make(Address, family=None, addr=a["addr"], port=a["port"])
    inner = a["in"]
    if inner is None:
        return Address(a["family"], None, 0)
    return Address(a["family"], inner["addr"], inner["port"])


def _to_auth(a) -> Auth | None:
    if a is None:
        return None
    cred = a["cred"]
    if "plugin_id" in a:
        pid = a["plugin_id"]
        name = AUTH_PLUGIN_NAMES.get(pid, str(pid))
        version = 0
    else:
        name = a["plugin_type"]
        pid = AUTH_PLUGIN_IDS.get(name, 0)
        version = a["plugin_version"]
    return _make(Auth, plugin=name, plugin_id=pid, credential=cred.get("credential"),
                 uid=cred.get("uid"), gid=cred.get("gid"), hostname=cred.get("hostname"),
                 plugin_version=version)


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
    spec = VERSIONS.get(message.header.version)
    if spec is None:
        raise UnsupportedVersionError(f"protocol version {message.header.version!r} is not supported",
                                      field="header.version")
    no_auth = spec.layout.no_auth_flag and bool(message.header.flags & SLURM_NO_AUTH_CRED)
    if (message.auth is None) != no_auth:
        raise InvalidFieldError("auth must be None exactly when flags carry SLURM_NO_AUTH_CRED "
                                "(23.02 and later headers)", field="auth")
    tree = {
        "length": 0,
        "header": _header_tree(message.header),
        "auth": _auth_tree(spec, message.auth),
        "body": dict(message.body),
    }
    try:
        body = spec.layout.bodies[message.header.msg_type]
    except KeyError:
        raise UnknownMessageTypeError(
            f"message type {message.header.msg_type} has no schema in {spec.name}",
            field="header.msg_type") from None
    msg_type = int(message.header.msg_type)
    if body_bytes is None:
        body_bytes = _build(spec.compiled_bodies[msg_type], body, tree["body"], "body")
    tree["header"]["body_length"] = len(body_bytes)
    head = _build(spec.compiled_head, spec.head, {"header": tree["header"], "auth": tree["auth"]}, "")
    return (len(head) + len(body_bytes)).to_bytes(4, "big") + head + body_bytes


def encode_body(version: int, msg_type: int, body) -> bytes:
    """The packed body alone (what Slurm 22.05+ hashes into the credential's payload)."""
    spec = VERSIONS[version]
    return _build(spec.compiled_bodies[int(msg_type)], spec.layout.bodies[msg_type], dict(body), "body")


def _build(compiled, interpreted, tree, where: str) -> bytes:
    """Build with the compiled schema; on failure explain with the interpreted one."""
    try:
        return compiled.build(tree)
    except Exception:
        pass
    try:
        interpreted.build(tree)
    except FieldError as exc:
        raise InvalidFieldError(str(exc).split("\n")[-1], field=_join(where, _path(exc.path))) from None
    except Exception as exc:
        raise InvalidFieldError(f"cannot encode: {str(exc).splitlines()[-1]}",
                                field=_join(where, _path(getattr(exc, "path", None)))) from None
    raise InvalidFieldError("value rejected by the compiled encoder", field=where or None)


def _join(where: str, path: str | None) -> str | None:
    return ".".join(p for p in (where, path) if p) or None


def _header_tree(h: Header) -> dict:
    f = h.forward
    a = h.orig_addr
    if a.family is None:
        addr = {"addr": a.addr or 0, "port": a.port}
    else:
        addr = {"family": a.family, "in": {"addr": a.addr, "port": a.port} if a.addr is not None else None}
    return {
        "version": h.version, "flags": h.flags, "msg_index": h.msg_index, "msg_type": h.msg_type,
        "body_length": 0,
        "forward": {"cnt": f.cnt, "nodelist": f.nodelist, "timeout": f.timeout,
                    "tree_width": f.tree_width, "net_cred": f.net_cred,
                    "tree_depth": f.tree_depth or 0},
        "ret_cnt": len(h.ret_list),
        "ret_list": [{"err": r.err, "msg_type": r.msg_type, "node_name": r.node_name,
                      "body": dict(r.body or {})} for r in h.ret_list],
        "orig_addr": addr,
    }


def _auth_tree(spec: VersionSpec, a: Auth | None) -> dict | None:
    if a is None:
        return None
    cred = {"credential": a.credential, "uid": a.uid, "gid": a.gid, "hostname": a.hostname}
    if spec.layout.auth == "by_type":
        return {"plugin_type": a.plugin, "plugin_version": a.plugin_version, "cred": cred}
    return {"plugin_id": a.plugin_id or AUTH_PLUGIN_IDS.get(a.plugin, 0), "cred": cred}
