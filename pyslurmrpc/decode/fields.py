"""Walk a frame with the wire layer's own construct schemas, recording every field.

The walker interprets ``VERSIONS[code].frame`` (the same interpreted schema
the codec uses to explain failures) node by node: structs, ``If``, ``Switch``
and ``Array`` are followed, every leaf primitive is parsed with its own
``_parsereport`` and its start offset, raw bytes and value are recorded.  No
layout is written down a second time here.

Whether a frame is valid is decided by :func:`pyslurmrpc.wire.decode_message`;
the walker only explains *where* each byte went, and stops quietly at the
first field it cannot read (the codec's error says why).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from construct import Array, Construct, Container, IfThenElse, Pass, Renamed, Struct, Switch, Tell
from construct.core import evaluate

from ..wire.constants import LENGTH_PREFIX_SIZE
from ..wire.versions import VERSIONS

#: Parse failures a leaf may raise on hostile bytes; the walk stops at them.
_STOP = (Exception,)


@dataclass(frozen=True)
class Field:
    """One decoded leaf of a frame: dotted ``path``, byte ``offset`` in the frame, ``raw`` bytes, ``value``."""

    path: str
    offset: int
    raw: bytes
    value: Any

    @property
    def name(self) -> str:
        """The last component of the path (``"job_id"`` for ``body.job_id``)."""
        return self.path.rsplit(".", 1)[-1]

    @property
    def end(self) -> int:
        """Offset just past the field."""
        return self.offset + len(self.raw)


class _Walk:
    """State of one walk: the frame, its stream and the fields found so far."""

    def __init__(self, frame: bytes):
        self.frame = frame
        self.stream = io.BytesIO(frame)
        self.fields: list[Field] = []

    def node(self, con: Construct, path: str, context) -> Any:
        handler = _HANDLERS.get(type(con))
        if handler is None:
            handler = next((h for cls, h in _HANDLERS.items() if isinstance(con, cls)), _leaf)
        return handler(self, con, path, context)


def _join(path: str, name) -> str:
    return f"{path}.{name}" if path else str(name)


def _renamed(walk: _Walk, con: Renamed, path: str, context):
    return walk.node(con.subcon, _join(path, con.name), context)


def _struct(walk: _Walk, con: Struct, path: str, context):
    ctx = Container(_=context, _params=context.get("_params"), _root=None, _parsing=True,
                    _building=False, _sizing=False, _subcons=None, _io=walk.stream, _index=None)
    ctx._root = context.get("_root", ctx) if context else ctx
    obj = Container()
    for sub in con.subcons:
        value = walk.node(sub, path, ctx)
        if sub.name:
            obj[sub.name] = ctx[sub.name] = value
    return obj


def _if(walk: _Walk, con: IfThenElse, path: str, context):
    chosen = con.thensubcon if evaluate(con.condfunc, context) else con.elsesubcon
    return walk.node(chosen, path, context)


def _switch(walk: _Walk, con: Switch, path: str, context):
    key = evaluate(con.keyfunc, context)
    return walk.node(con.cases.get(key, con.default), path, context)


def _array(walk: _Walk, con: Array, path: str, context):
    count = evaluate(con.count, context)
    return [walk.node(con.subcon, _join(path, i), context) for i in range(count)]


def _silent(walk: _Walk, con: Construct, path: str, context):
    """Tell and Pass read nothing; they are bookkeeping, not fields."""
    return con._parsereport(walk.stream, context, path)


def _leaf(walk: _Walk, con: Construct, path: str, context):
    start = walk.stream.tell()
    value = con._parsereport(walk.stream, context, path)
    end = walk.stream.tell()
    walk.fields.append(Field(path, start, walk.frame[start:end], value))
    return value


_HANDLERS = {
    Renamed: _renamed,
    Struct: _struct,
    IfThenElse: _if,
    Switch: _switch,
    Array: _array,
    type(Tell): _silent,  # Tell and Pass are singleton instances in construct
    type(Pass): _silent,
}


def walk_frame(frame: bytes) -> list[Field]:
    """Every field of ``frame`` (length prefix included) that could be read, in wire order.

    The header version at offset 4 picks the schema.  The list ends early at
    the first field that cannot be read, or after the length prefix when the
    version is unknown.
    """
    frame = bytes(frame)
    spec = VERSIONS.get(int.from_bytes(frame[4:6], "big")) if len(frame) >= 6 else None
    if spec is None:
        return _prefix_only(frame)
    walk = _Walk(frame)
    try:
        walk.node(spec.frame, "", Container())
    except _STOP:
        pass
    return walk.fields


def _prefix_only(frame: bytes) -> list[Field]:
    if len(frame) < LENGTH_PREFIX_SIZE:
        return []
    raw = frame[:LENGTH_PREFIX_SIZE]
    return [Field("length", 0, raw, int.from_bytes(raw, "big"))]
