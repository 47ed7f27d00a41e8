"""Slurm hostlist expressions: ``node[01-04,7],gpu1`` <-> a list of names.

The rules are those of src/common/hostlist.c (19.05): tokens are separated by
commas or white space outside brackets; ``prefix[ranges]suffix-free`` expands
each ``N`` or ``N-M`` range with the zero padding of the low end; bracket groups
earlier in a token vary slowest.  Errors raise :class:`HostlistError`.
"""

from __future__ import annotations

import re

#: src/common/hostlist.c MAX_RANGE: hosts one range may expand to
MAX_RANGE = 64 * 1024
_TOKEN = re.compile(r"(?:[^,\s\[]|\[[^\]]*\])+")
_GROUP = re.compile(r"\[([^\]]*)\]")
_SPLIT = re.compile(r"^(.*?)(\d*)$")


class HostlistError(ValueError):
    """A hostlist expression Slurm would refuse."""


def _ranges(spec: str, expr: str) -> list[str]:
    out: list[str] = []
    for part in spec.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise HostlistError(f"bad range {part!r} in {expr!r}")
        lo, hi = int(low), int(high) if dash else int(low)
        if lo > hi:
            raise HostlistError(f"range {part!r} runs backwards in {expr!r}")
        if hi - lo + 1 > MAX_RANGE:
            raise HostlistError(f"too many hosts in range {part!r} (limit {MAX_RANGE})")
        out.extend(str(n).zfill(len(low)) for n in range(lo, hi + 1))
    return out


def _expand_token(token: str, expr: str) -> list[str]:
    pieces = _GROUP.split(token)  # text, group, text, group, ..., text
    if len(pieces) > 1 and pieces[-1]:
        raise HostlistError(f"text after the last ']' in {expr!r}")
    names = [""]
    for i, piece in enumerate(pieces):
        options = _ranges(piece, expr) if i % 2 else [piece]
        names = [n + o for n in names for o in options]
        if len(names) > MAX_RANGE:
            raise HostlistError(f"{expr!r} expands to more than {MAX_RANGE} hosts")
    return names


def expand(expr: str) -> list[str]:
    """Expand a hostlist expression into names, in the order written."""
    if expr is None:
        raise HostlistError("no hostlist given")
    if "[" in expr and expr.count("[") != expr.count("]"):
        raise HostlistError(f"unbalanced brackets in {expr!r}")
    return [name for tok in _TOKEN.findall(expr) for name in _expand_token(tok, expr)]


def _key(name: str):
    prefix, digits = _SPLIT.match(name).groups()
    return (prefix, int(digits) if digits else -1, len(digits), name)


def uniq(names) -> list[str]:
    """Sort (prefix, then number) and drop duplicates, like hostlist_uniq."""
    return sorted(set(names), key=_key)


def compress(names) -> str:
    """The ranged string of ``names`` (``hostlist_ranged_string``): ``n[1-3,7],gpu1``."""
    groups: dict[tuple[str, int], list[int]] = {}
    order: list[tuple[str, int]] = []
    plain: list[str] = []
    for name in names:
        prefix, digits = _SPLIT.match(name).groups()
        if not digits:
            plain.append(name)
            continue
        width = len(digits) if digits.startswith("0") else 0
        key = (prefix, width)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(int(digits))
    parts = [_ranged(prefix, width, groups[(prefix, width)]) for prefix, width in order]
    return ",".join(parts + plain)


def _ranged(prefix: str, width: int, numbers: list[int]) -> str:
    numbers = sorted(set(numbers))
    if len(numbers) == 1:
        return f"{prefix}{str(numbers[0]).zfill(width)}"
    spans, start, prev = [], numbers[0], numbers[0]
    for n in numbers[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        lo, hi = str(start).zfill(width), str(prev).zfill(width)
        spans.append(lo if start == prev else f"{lo}-{hi}")
        if n is not None:
            start = prev = n
    return f"{prefix}[{','.join(spans)}]"


# ---------------------------------------------------------------------------
# the message tree: how a node list is cut into branches
# ---------------------------------------------------------------------------
def tree_spans(total: int, tree_width: int) -> list[int]:
    """How many nodes each of the ``tree_width`` branch heads forwards to.

    The reading of ``set_span`` (src/common/slurm_protocol_api.c in 17.11-23.02,
    src/plugins/topology/common/common_topo.c ``_set_span`` in 23.11 and 24.05):
    when every node fits one per branch nobody forwards (all zeros); otherwise
    each branch in turn takes ``tree_width`` more nodes (its head counted once),
    until what is left fits one per remaining branch or into the current one.
    24.11 replaced it with a level-by-level spread (common_topo.c, then
    hostlist.c ``_set_span`` from 25.05); the checkpoint releases use this one.
    """
    span = [0] * tree_width
    left = total if total > tree_width else 0
    while left > 0:
        for i in range(tree_width):
            if tree_width - i >= left:  # the rest fits: one head per branch from here on
                span[i] += left if span[i] else 0
                left = 0
                break
            if left <= tree_width:  # the rest goes under this branch's head
                left -= 0 if span[i] else 1
                span[i] += left
                left = 0
                break
            left -= tree_width + (0 if span[i] else 1)
            span[i] += tree_width
    return span


def split_treewidth(names: list[str], tree_width: int) -> list[list[str]]:
    """Cut ``names`` into branches; each branch's first name is contacted directly
    and is handed the rest of its branch to forward (route_split_hostlist_treewidth)."""
    if tree_width < 1:
        raise HostlistError(f"tree width must be at least 1, not {tree_width}")
    branches, at = [], 0
    for extra in tree_spans(len(names), tree_width):
        if at >= len(names):
            break
        branches.append(list(names[at:at + 1 + extra]))
        at += 1 + extra
    return branches
