"""A Struct whose compiled code uses plain dicts.

construct's own compiled Struct builds two Container objects per nesting level,
which costs more than all the field reads of a checkpoint message.  FastStruct
parses and builds exactly like :class:`construct.Struct` when interpreted (the
error-reporting path), and emits leaner code when compiled: the context is a
plain dict holding the fields read so far plus ``"_"`` for the parent.
"""

from __future__ import annotations

from construct import Struct


class FastStruct(Struct):
    """:class:`construct.Struct` with compiled code that avoids Container overhead."""

    def _emitparse(self, code):
        fname = f"parse_faststruct_{code.allocateId()}"
        lines = [f"def {fname}(io, this):", "    this = {'_': this}"]
        for sc in self.subcons:
            target = f"this[{sc.name!r}] = " if sc.name else ""
            lines.append(f"    {target}{sc._compileparse(code)}")
        lines.append("    return this")
        code.append("\n".join(lines) + "\n")
        return f"{fname}(io, this)"

    def _emitbuild(self, code):
        fname = f"build_faststruct_{code.allocateId()}"
        lines = [f"def {fname}(obj, io, parent):",
                 "    objdict = obj",
                 "    this = dict(obj)",
                 "    this['_'] = parent"]
        for sc in self.subcons:
            get = f"objdict.get({sc.name!r})" if sc.flagbuildnone else f"objdict[{sc.name!r}]"
            lines.append(f"    obj = {get}")
            target = f"this[{sc.name!r}] = " if sc.name else ""
            lines.append(f"    {target}{sc._compilebuild(code)}")
        lines.append("    return this")
        code.append("\n".join(lines) + "\n")
        return f"{fname}(obj, io, this)"
