"""The codec's fast path: Python code generated from the construct schemas.

The schemas (header.py, bodies.py) stay the one description of the wire.
construct interprets them to explain a failure with a field path and offset;
for the common case this module turns each schema into a pair of plain Python
functions that read with ``unpack_from`` at an offset and write into a list of
parts: one ``struct`` call per run of fixed-width integers instead of one per
field, no stream object, no Container.  construct's own ``compile()`` still
goes through a BytesIO and a call per field, which cost more than the message.

The generated code is strict and explains nothing: any exception it raises
(``struct.error``, ``KeyError``, :class:`FastPathFailed` ...) sends the caller
to the interpreted schema, which names the field (wire/codec.py).  Parsed
values are plain dicts shaped as construct's compiled parse shaped them (the
parent context under ``"_"``), so the codec's conversions read either.

Supported: (Fast)Struct, Renamed, Int, SlurmString, FixedMem, IfThenElse,
Switch and Array whose conditions are construct ``this`` expressions, Pass,
Tell, Unknown.  Anything else is refused when the schema is compiled (at
import), never at run time.
"""

from __future__ import annotations

import struct
from itertools import count

import construct
from construct import Array, FormatField, IfThenElse, Renamed, Struct, Switch
from construct.expr import ExprMixin

from .primitives import FixedMem, SlurmString, Unknown

__all__ = ["FastPathFailed", "FastCodec", "compile_schema"]

_PASS = type(construct.Pass)
_TELL = type(construct.Tell)


class FastPathFailed(Exception):
    """The generated code met something only the interpreted schema can explain."""


def _fail(*_args):
    raise FastPathFailed


class FastCodec:
    """``parse(buf) -> dict`` and ``build(obj) -> bytes`` for one schema."""

    __slots__ = ("parse", "build", "source")

    def __init__(self, parse, build, source: str):
        self.parse = parse
        self.build = build
        self.source = source  # the generated code, for tests and debugging


def _unwrap(sc):
    """(name, inner construct) of a Struct member."""
    if isinstance(sc, Renamed):
        return sc.name, sc.subcon
    return sc.name, sc


def _is_fixed(con) -> bool:
    return isinstance(con, FormatField) and con.fmtstr[0] == ">" and getattr(con, "maximum", None) is None


def _expr(value, ctx: str, up: str) -> str:
    """Source text of a construct ``this`` expression (or a constant): ``this`` is the dict named
    ``ctx``, ``this._`` the enclosing Struct's dict, named ``up`` (no link is stored)."""
    if isinstance(value, ExprMixin):
        text = repr(value)
        if "this['_']['_']" in text:
            raise TypeError(f"fast path reads one enclosing level only: {text}")
        return text.replace("this['_']", up).replace("this[", f"{ctx}[")
    if isinstance(value, int):
        return repr(value)
    raise TypeError(f"fast path needs a construct expression, not {value!r}")


class _Gen:
    """Collects generated functions and the constants they use."""

    def __init__(self):
        self.ns = {"_fail": _fail, "FastPathFailed": FastPathFailed}
        self.defs: list[str] = []
        self._ids = count()
        self._consts: dict[tuple, str] = {}
        self.tables: dict[str, dict] = {}

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def const(self, key: tuple, value) -> str:
        if key not in self._consts:
            self._consts[key] = self.name("k")
            self.ns[self._consts[key]] = value
        return self._consts[key]

    def switch(self, table: dict) -> str:
        """A case table: key -> generated function name, bound to the functions by :func:`_link`."""
        name = self.name("cases")
        self.tables[name] = table
        return name

    def packer(self, fmt: str) -> str:
        return self.const(("struct", fmt), struct.Struct(fmt))


# ----------------------------------------------------------------------------
# parsing: every function is f(buf, pos, parent) -> (value, pos)
# ----------------------------------------------------------------------------
def _parse_fn(gen: _Gen, con) -> str:
    """Name of a generated function parsing ``con`` (a Switch case or an Array element)."""
    key = ("parse", id(con))
    if key in gen._consts:
        return gen._consts[key]
    fname = gen.name("p")
    gen._consts[key] = fname
    body = _parse_value(gen, con, "v", "    ", "parent") + ["    return v, pos"]
    gen.defs.append(f"def {fname}(buf, pos, parent):\n" + "\n".join(body) + "\n")
    return fname


def _spliced(gen: _Gen, subcons, ctx: str, up: str, opening):
    """A Struct's members with those of its named sub-Structs spliced in, so runs of fixed-width
    fields continue across nesting: (lines that bind each sub-Struct's dict first, items of
    (dict name, its parent's name, field name, construct)).  ``opening(child, ctx, name)`` is
    the line that binds the sub-Struct ``name`` of ``ctx`` to ``child``."""
    lines, items = [], []
    for sc in subcons:
        name, inner = _unwrap(sc)
        if name and isinstance(inner, Struct):
            child = gen.name("t")
            lines.append(opening(child, ctx, name))
            sub_lines, sub_items = _spliced(gen, inner.subcons, child, ctx, opening)
            lines += sub_lines
            items += sub_items
        else:
            items.append((ctx, up, name, inner))
    return lines, items


def _groups(items):
    """Items as (kind, items): runs of fixed-width integers (across dicts), runs of Ifs on one
    condition of one dict, singles."""
    groups = []
    for item in items:
        ctx, _, name, inner = item
        if name and _is_fixed(inner):
            kind = "fixed"
        elif isinstance(inner, IfThenElse) and isinstance(inner.elsesubcon, _PASS):
            kind = ("if", ctx, repr(inner.condfunc))
        else:
            kind = None
        if kind is not None and groups and groups[-1][0] == kind:
            groups[-1][1].append(item)
        else:
            groups.append((kind, [item]))
    return groups


def _parse_struct(gen: _Gen, con, target: str, ind: str, up: str) -> list[str]:
    """A Struct read inline into a fresh dict; ``up`` names the enclosing Struct's dict."""
    ctx = gen.name("t")
    return [f"{ind}{ctx} = {{}}"] + _parse_members(gen, con.subcons, ind, ctx, up) + [f"{ind}{target} = {ctx}"]


def _parse_members(gen: _Gen, subcons, ind: str, ctx: str, up: str) -> list[str]:
    opened, items = _spliced(gen, subcons, ctx, up, lambda child, d, name: f"{child} = {d}[{name!r}] = {{}}")
    lines = [ind + line for line in opened]
    for kind, group in _groups(items):
        if kind == "fixed":
            fmt = ">" + "".join(c.fmtstr[1:] for _, _, _, c in group)
            targets = ", ".join(f"{d}[{n!r}]" for d, _, n, _ in group)
            lines += [f"{ind}({targets},) = {gen.packer(fmt)}.unpack_from(buf, pos)",
                      f"{ind}pos += {struct.calcsize(fmt)}"]
        elif kind is not None:  # Ifs sharing one condition: one test
            d, u = group[0][0], group[0][1]
            lines.append(f"{ind}if {_expr(group[0][3].condfunc, d, u)}:")
            lines += _parse_members(gen, [Renamed(c.thensubcon, newname=n) for _, _, n, c in group],
                                    ind + "    ", d, u)
            lines.append(f"{ind}else:")
            lines += [f"{ind}    {d}[{n!r}] = None" for _, _, n, _ in group]
        else:
            d, u, name, inner = group[0]
            lines += _parse_value(gen, inner, f"{d}[{name!r}]" if name else "_", ind, d, u)
    return lines


def _parse_value(gen: _Gen, con, target: str, ind: str, ctx: str, up: str = "None") -> list[str]:
    """Lines that read ``con`` at ``pos`` into ``target`` and advance ``pos``; ``ctx`` names the
    dict of the enclosing Struct (``this`` in ``con``'s expressions), ``up`` that Struct's parent."""
    if isinstance(con, FormatField):
        if con.fmtstr[0] != ">":
            raise TypeError(f"fast path reads big-endian integers only, not {con.fmtstr!r}")
        lines = [f"{ind}{target} = {gen.packer(con.fmtstr)}.unpack_from(buf, pos)[0]", f"{ind}pos += {con.length}"]
        maximum = getattr(con, "maximum", None)
        if maximum is not None:
            lines.append(f"{ind}if {target} > {maximum!r}: raise FastPathFailed")
        return lines
    if isinstance(con, SlurmString):
        return _parse_string(gen, con, target, ind)
    if isinstance(con, FixedMem):
        u32 = gen.packer(">I")
        return [f"{ind}if {u32}.unpack_from(buf, pos)[0] != {con.size} or len(buf) < pos + {4 + con.size}: "
                f"raise FastPathFailed",
                f"{ind}{target} = buf[pos + 4:pos + {4 + con.size}]", f"{ind}pos += {4 + con.size}"]
    if isinstance(con, Struct):
        return _parse_struct(gen, con, target, ind, ctx)
    if isinstance(con, IfThenElse):
        return ([f"{ind}if {_expr(con.condfunc, ctx, up)}:"]
                + _parse_value(gen, con.thensubcon, target, ind + "    ", ctx, up)
                + [f"{ind}else:"] + _parse_value(gen, con.elsesubcon, target, ind + "    ", ctx, up))
    if isinstance(con, Switch):
        cases = gen.switch({k: _parse_fn(gen, v) for k, v in con.cases.items()})
        default = "_fail" if isinstance(con.default, Unknown) else _parse_fn(gen, con.default)
        return [f"{ind}{target}, pos = {cases}_get({_expr(con.keyfunc, ctx, up)}, {default})(buf, pos, {ctx})"]
    if isinstance(con, Array):
        fn = _parse_fn(gen, con.subcon)
        return [f"{ind}{target} = []", f"{ind}for _i in range({_expr(con.count, ctx, up)}):",
                f"{ind}    _v, pos = {fn}(buf, pos, {ctx})", f"{ind}    {target}.append(_v)"]
    if isinstance(con, _PASS):
        return [f"{ind}{target} = None"]
    if isinstance(con, _TELL):
        return [f"{ind}{target} = pos"]
    if isinstance(con, Unknown):
        return [f"{ind}raise FastPathFailed"]
    raise TypeError(f"fast path cannot compile {type(con).__name__}")


def _parse_string(gen: _Gen, con: SlurmString, target: str, ind: str) -> list[str]:
    u32 = gen.packer(">I")
    return [
        f"{ind}_n = {u32}.unpack_from(buf, pos)[0]",
        f"{ind}pos += 4",
        f"{ind}if _n:",
        f"{ind}    _e = pos + _n",
        f"{ind}    if _n > {con.limit} or _e > len(buf) or buf.find(0, pos, _e) != _e - 1: raise FastPathFailed",
        f"{ind}    {target} = buf[pos:_e - 1].decode('utf-8', 'surrogateescape')",
        f"{ind}    pos = _e",
        f"{ind}else:",
        f"{ind}    {target} = None",
    ]


# ----------------------------------------------------------------------------
# building: every function is f(obj, parent, out) -> None, appending to out
# ----------------------------------------------------------------------------
def _build_fn(gen: _Gen, con) -> str:
    """Name of a generated function building ``con`` (a Switch case or an Array element)."""
    key = ("build", id(con))
    if key in gen._consts:
        return gen._consts[key]
    fname = gen.name("b")
    gen._consts[key] = fname
    body = _build_value(gen, con, "obj", "    ", "parent")
    gen.defs.append(f"def {fname}(obj, parent, out):\n" + "\n".join(body + ["    return None"]) + "\n")
    return fname


def _build_struct(gen: _Gen, con, source: str, ind: str, up: str) -> list[str]:
    """A Struct packed inline from the dict ``source``; ``up`` names the enclosing Struct's dict."""
    src = gen.name("o")
    return [f"{ind}{src} = {source}"] + _build_members(gen, con.subcons, ind, src, up)


def _build_members(gen: _Gen, subcons, ind: str, src: str, up: str) -> list[str]:
    kept = [sc for sc in subcons if not isinstance(_unwrap(sc)[1], (_PASS, _TELL))]
    opened, items = _spliced(gen, kept, src, up, lambda child, d, name: f"{child} = {d}[{name!r}]")
    lines = [ind + line for line in opened]
    for kind, group in _groups([i for i in items if not isinstance(i[3], (_PASS, _TELL))]):
        if kind == "fixed":
            fmt = ">" + "".join(c.fmtstr[1:] for _, _, _, c in group)
            values = ", ".join(f"{d}[{n!r}]" for d, _, n, _ in group)
            lines.append(f"{ind}out.append({gen.packer(fmt)}.pack({values}))")
        elif kind is not None:  # Ifs sharing one condition: one test, nothing packed when false
            d, u = group[0][0], group[0][1]
            lines.append(f"{ind}if {_expr(group[0][3].condfunc, d, u)}:")
            lines += _build_members(gen, [Renamed(c.thensubcon, newname=n) for _, _, n, c in group],
                                    ind + "    ", d, u)
        else:
            d, u, name, inner = group[0]
            lines += _build_value(gen, inner, f"{d}[{name!r}]", ind, d, u)
    return lines


def _build_value(gen: _Gen, con, source: str, ind: str, ctx: str, up: str = "None") -> list[str]:
    """Lines that append the bytes of ``source`` (an expression) packed as ``con``; ``ctx`` names
    the dict of the enclosing Struct (``this`` in ``con``'s expressions), ``up`` that Struct's parent."""
    if isinstance(con, FormatField):
        lines = [f"{ind}out.append({gen.packer(con.fmtstr)}.pack({source}))"]
        maximum = getattr(con, "maximum", None)
        if maximum is not None:
            lines.insert(0, f"{ind}if {source} > {maximum!r}: raise FastPathFailed")
        return lines
    if isinstance(con, SlurmString):
        u32 = gen.packer(">I")
        return [f"{ind}_s = {source}",
                f"{ind}if _s is None: out.append(b'\\0\\0\\0\\0')",
                f"{ind}else:",
                f"{ind}    _r = _s.encode('utf-8', 'surrogateescape')",
                f"{ind}    if 0 in _r or len(_r) >= {con.limit}: raise FastPathFailed",
                f"{ind}    out += ({u32}.pack(len(_r) + 1), _r, b'\\0')"]
    if isinstance(con, FixedMem):
        u32 = gen.packer(">I")
        return [f"{ind}_m = bytes({source})", f"{ind}if len(_m) != {con.size}: raise FastPathFailed",
                f"{ind}out.append({u32}.pack({con.size})); out.append(_m)"]
    if isinstance(con, Struct):
        return _build_struct(gen, con, source, ind, ctx)
    if isinstance(con, IfThenElse):
        return ([f"{ind}if {_expr(con.condfunc, ctx, up)}:"]
                + _build_value(gen, con.thensubcon, source, ind + "    ", ctx, up)
                + [f"{ind}else:"] + _build_value(gen, con.elsesubcon, source, ind + "    ", ctx, up))
    if isinstance(con, Switch):
        cases = gen.switch({k: _build_fn(gen, v) for k, v in con.cases.items()})
        default = "_fail" if isinstance(con.default, Unknown) else _build_fn(gen, con.default)
        return [f"{ind}{cases}_get({_expr(con.keyfunc, ctx, up)}, {default})({source}, {ctx}, out)"]
    if isinstance(con, Array):
        fn = _build_fn(gen, con.subcon)
        return [f"{ind}_a = {source}", f"{ind}if len(_a) != {_expr(con.count, ctx, up)}: raise FastPathFailed",
                f"{ind}for _v in _a: {fn}(_v, {ctx}, out)"]
    if isinstance(con, (_PASS, _TELL)):
        return [f"{ind}pass"]
    if isinstance(con, Unknown):
        return [f"{ind}raise FastPathFailed"]
    raise TypeError(f"fast path cannot compile {type(con).__name__}")


# ----------------------------------------------------------------------------
def _link(gen: _Gen) -> None:
    """Bind each case table's lookup once every generated function exists."""
    for name, table in gen.tables.items():
        gen.ns[f"{name}_get"] = {k: gen.ns[fn] for k, fn in table.items()}.get


def compile_schema(schema) -> FastCodec:
    """Generate the fast parse and build functions of ``schema`` (a Struct)."""
    gen = _Gen()
    pfn = _parse_fn(gen, schema)
    bfn = _build_fn(gen, schema)
    source = "\n".join(gen.defs) + (
        f"\ndef parse(buf):\n    return {pfn}(buf, 0, None)[0]\n"
        f"\ndef build(obj):\n    out = []\n    {bfn}(obj, None, out)\n    return b''.join(out)\n")
    exec(compile(source, f"<fastpath {type(schema).__name__}>", "exec"), gen.ns)  # noqa: S102 - our own generated code
    _link(gen)
    return FastCodec(gen.ns["parse"], gen.ns["build"], source)
