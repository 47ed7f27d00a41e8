"""Every use of construct beyond its documented subclassing API, in one place.

construct documents ``_parse``/``_build``/``_sizeof`` for subclasses; the rest
used here is internal and may change in any release:

* wire/_fastpath.py translates the schemas into plain Python code (construct's
  own ``compile()`` is not used: its code reads through a BytesIO with a call
  per field); it reads the same attributes as the recording parse below, plus
  ``FormatField.fmtstr``/``length`` and the ``repr`` of ``this`` expressions
  (``this['cnt'] > 0``), and refuses any other construct when it compiles;
* :func:`recording_parse` parses with construct's own interpreter, once,
  wrapping the leaves of a copy of the schema so that each field's path,
  offset and value are recorded as construct reads it (the decoder's
  annotated walk).  It relies on the attributes construct keeps on
  ``Struct``, ``Renamed``, ``IfThenElse``, ``Switch`` and ``Array`` and on
  ``Array`` putting the element index in ``context._index``.

:data:`CONSTRUCT_VERSION` is the release all this was checked against;
tests/test_construct_internals.py fails when another one is installed.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any, NamedTuple

import construct
from construct import Array, Construct, IfThenElse, Renamed, Struct, Subconstruct, Switch

#: the construct release the code below was written against
CONSTRUCT_VERSION = "2.10.70"

#: construct's name for the root of every parse path
_ROOT = "(parsing)"
_SEP = " -> "


# ----------------------------------------------------------------------------
# the recording parse (the decoder's annotated walk)
# ----------------------------------------------------------------------------
class Recorded(NamedTuple):
    """One leaf as construct read it: dotted ``path``, ``start``/``end`` offsets, ``value``."""

    path: str
    start: int
    end: int
    value: Any


class _Recorder:
    """The fields read so far, and the array elements being read (for their index)."""

    def __init__(self):
        self.fields: list[Recorded] = []
        self._elements: list[tuple[str, str]] = []  # (construct path of the array, dotted element path)

    def dotted(self, path: str) -> str:
        """construct's ``(parsing) -> header -> ret_list -> err`` as ``header.ret_list.0.err``."""
        if self._elements:
            prefix, dotted = self._elements[-1]
            rest = _dotted_tail(path[len(prefix):])
            return f"{dotted}.{rest}" if rest else dotted
        return _dotted_tail(path[len(_ROOT):])

    def enter_element(self, path: str, index: int) -> None:
        self._elements.append((path, f"{self.dotted(path)}.{index}"))

    def leave_element(self) -> None:
        self._elements.pop()


@lru_cache(maxsize=4096)
def _dotted_tail(rest: str) -> str:
    return ".".join(p for p in rest.split(_SEP) if p)


class _Leaf(Subconstruct):
    """Records the offsets and value of the primitive it wraps (paths and errors unchanged)."""

    def _parse(self, stream, context, path):
        start = stream.tell()
        value = self.subcon._parsereport(stream, context, path)
        rec = context["_params"]["recorder"]
        rec.fields.append(Recorded(rec.dotted(path), start, stream.tell(), value))
        return value


class _Element(Subconstruct):
    """Tells the recorder which array element is being read (Array keeps the index in the context)."""

    def _parse(self, stream, context, path):
        rec = context["_params"]["recorder"]
        rec.enter_element(path, context._index)
        try:
            return self.subcon._parsereport(stream, context, path)
        finally:
            rec.leave_element()


#: constructs that read nothing worth recording (Tell, Pass are singletons)
_SILENT = (type(construct.Tell), type(construct.Pass))


@lru_cache(maxsize=None)
def _recording(con: Construct) -> Construct:
    """A copy of the schema ``con`` with every leaf wrapped in :class:`_Leaf`."""
    if isinstance(con, Struct):
        return type(con)(*[_recording(sc) for sc in con.subcons])
    if isinstance(con, Renamed):
        return Renamed(_recording(con.subcon), newname=con.name)
    if isinstance(con, IfThenElse):
        return IfThenElse(con.condfunc, _recording(con.thensubcon), _recording(con.elsesubcon))
    if isinstance(con, Switch):
        return Switch(con.keyfunc, {k: _recording(v) for k, v in con.cases.items()}, _recording(con.default))
    if isinstance(con, Array):
        return Array(con.count, _Element(_recording(con.subcon)), discard=con.discard)
    if isinstance(con, _SILENT):
        return con
    return _Leaf(con)


def recording_parse(schema: Construct, data: bytes, catch: tuple) -> tuple[Any, list[Recorded], Any]:
    """Parse ``data`` with ``schema`` interpreted, once, recording every leaf read.

    Returns ``(parsed, fields, error)``: ``parsed`` is what ``schema.parse``
    returns (None on failure), ``error`` the exception of a type in ``catch``
    that stopped it (the same exception, path included, ``schema.parse``
    raises), ``fields`` every leaf read before that, in wire order.
    """
    recorder = _Recorder()
    try:
        parsed = _recording(schema).parse_stream(io.BytesIO(data), recorder=recorder)
    except catch as exc:
        return None, recorder.fields, exc
    return parsed, recorder.fields, None
