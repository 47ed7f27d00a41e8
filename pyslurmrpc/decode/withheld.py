"""Where bytes the decoder did not read may hold a credential, so that a dump withholds them.

A frame that fails before its credential field (a version from the future, a header
field out of range, an auth plugin we do not know) leaves the credential among the
undecoded bytes, and a body with no schema may carry one too (a job credential's
signature is a MUNGE credential).  The field cannot be named there, so it is found by
its form: MUNGE's text ("MUNGE:", base64, ":"; munge 0.5.15 src/munged/enc.c enc_armor,
auth/munge_cred.py), or a base64 run long enough to be one whose prefix was lost.
"""

from __future__ import annotations

import re

from ..auth.munge_constants import CRED_PREFIX
from ..wire.types import WITHHELD_TEXT

#: the shortest run of base64 text withheld without the prefix: a MUNGE credential's
#: armour is over 100 characters, a path or a node name rarely runs this long unbroken
LONG_BASE64_RUN = 64
_PREFIX = CRED_PREFIX.encode("ascii")
_PREFIXED = re.compile(re.escape(_PREFIX) + rb"[A-Za-z0-9+/=:]*")   # ':' too: a damaged one
_LONG_RUN = re.compile(rb"[A-Za-z0-9+/=]{%d,}:?" % LONG_BASE64_RUN)
#: what a hex dump's line is made of, which no credential is
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]+")
#: how a withheld byte is written in a dump (never a hex digit pair)
MASK = "--"


def withheld_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each part of ``data`` that may be a credential, in order, merged."""
    spans = sorted(m.span() for rx in (_PREFIXED, _LONG_RUN) for m in rx.finditer(data))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def masked_text(text: str) -> str:
    """``text`` with each part that may be a credential written as :data:`WITHHELD_TEXT` (a line
    quoted in an error: a file of credentials given as a dump).  A run of hex digits alone stays:
    it is a dump line with a typo further on, which the user must see (base64 of 64 characters
    or more is never all hex digits but by a chance of 2**-64)."""
    # one byte per character ('?' for what is not ASCII), so the spans are the text's own places
    for start, end in reversed(withheld_spans(text.encode("ascii", "replace"))):
        if not _HEX_DIGITS.fullmatch(text, start, end):
            text = text[:start] + WITHHELD_TEXT + text[end:]
    return text


def masked_hex(data: bytes, spans: list[tuple[int, int]], sep: str = "") -> str:
    """``data`` as hex with every byte of ``spans`` written as MASK."""
    hidden = bytearray(len(data))
    for start, end in spans:
        hidden[start:end] = b"\1" * (end - start)
    return sep.join(MASK if hidden[i] else f"{b:02x}" for i, b in enumerate(data))
