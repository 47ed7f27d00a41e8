"""``--summary``: one row per message type, in the spirit of ``tshark -z``.

Per type: how many messages and bytes; for requests, how many replies came
back, the replies' error codes (RESPONSE_SLURM_RC with a code other than 0),
and the round trip (request's last byte to reply's last byte) at p50 and p99.
Round trips are kept exactly up to :data:`MAX_RTT_SAMPLES` per type, then
sampled (a fixed-seed reservoir), so a capture of any length summarises in
bounded memory.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Iterator, Optional

from .annotate import meaning
from .flow import Decoded
from .render import _msg_name

#: round trips kept per message type before sampling starts
MAX_RTT_SAMPLES = 100_000
#: streams stopped early named one by one; the rest are counted
MAX_STOPPED_NAMED = 10
#: fields whose value is a reply's return code
RC_FIELDS = frozenset({"body.return_code"})
_SEED = 6817


@dataclass
class Row:
    """The totals of one message type."""

    name: str
    count: int = 0
    bytes: int = 0
    failed: int = 0  # frames that did not decode
    unopened: int = 0  # frames that decoded, their credential not opened by --munge-key
    replies: int = 0
    errors: dict = field(default_factory=dict)  # errno name -> count
    rtts: list = field(default_factory=list)
    _seen: int = 0

    def add_rtt(self, rtt: float, rng: random.Random) -> None:
        self._seen += 1
        if len(self.rtts) < MAX_RTT_SAMPLES:
            self.rtts.append(rtt)
            return
        slot = rng.randrange(self._seen)
        if slot < MAX_RTT_SAMPLES:
            self.rtts[slot] = rtt

    def percentile(self, p: float) -> Optional[float]:
        """Nearest-rank percentile of the round trips, in seconds (None without replies)."""
        if not self.rtts:
            return None
        ordered = sorted(self.rtts)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class Summary:
    """Totals over every decoded message, fed one :class:`Decoded` at a time."""

    def __init__(self):
        self.rows: dict[str, Row] = {}
        self.messages = 0
        self.stopped = self.problems = 0
        self.stopped_named: list[tuple[str, str]] = []   # (stream, why), the first MAX_STOPPED_NAMED
        self._rng = random.Random(_SEED)

    def stop(self, stream: str, why: str, new_stream: bool = True) -> None:
        """A problem that stopped a stream early (a length prefix refused: HTTP, garbage, a cut
        capture); ``new_stream`` False for another problem of the stream just counted."""
        self.stopped += new_stream
        self.problems += 1
        if len(self.stopped_named) < MAX_STOPPED_NAMED:
            self.stopped_named.append((stream, why))

    def add(self, msg: Decoded) -> None:
        report = msg.report
        name = _row_name(report)
        row = self.rows.setdefault(name, Row(name))
        row.count += 1
        row.bytes += len(report.frame)
        row.failed += report.error is not None
        row.unopened += report.credential_unopened
        self.messages += 1
        request = msg.reply_to
        if request is not None:     # a reply's round trip and code count for its request
            req_name = _row_name(request.report)
            row = self.rows.setdefault(req_name, Row(req_name))
            row.replies += 1
            row.add_rtt(msg.rtt, self._rng)
        rc = next((f for f in report.fields if f.path in RC_FIELDS), None)
        if rc is not None and rc.value != 0:   # unpaired (frames without their requests): on its own row
            label = (meaning(rc, report.version) or str(rc.value)).split(":")[0]
            row.errors[label] = row.errors.get(label, 0) + 1

    def as_json(self, connections: Optional[int]) -> dict:
        return {"kind": "summary", "messages": self.messages, "connections": connections,
                "types": [{"msg_type_name": r.name, "count": r.count, "bytes": r.bytes, "not_decoded": r.failed,
                           "credential_not_opened": r.unopened, "replies": r.replies, "errors": r.errors,
                           "rtt_p50_ms": _ms(r.percentile(50)), "rtt_p99_ms": _ms(r.percentile(99))}
                          for r in self._ordered()],
                "stopped_early": self.stopped,
                "stream_errors": [{"stream": st, "reason": why} for st, why in self.stopped_named]}

    def _ordered(self) -> list[Row]:
        return sorted(self.rows.values(), key=lambda r: (-r.count, r.name))

    def lines(self, connections: Optional[int]) -> Iterator[str]:
        """The table; ``connections`` is None for input that was not a capture."""
        header = (f"{'message type':<34} {'count':>6} {'bytes':>9} {'replies':>7} "
                  f"{'p50 ms':>8} {'p99 ms':>8}  errors")
        yield header
        yield "-" * len(header)
        for r in self._ordered():
            errors = ", ".join(f"{k} x{v}" for k, v in sorted(r.errors.items())) or "-"
            if r.failed:
                errors += f" (+{r.failed} not decoded)"
            if r.unopened:
                errors += f" (+{r.unopened} credential(s) not opened)"
            yield (f"{r.name:<34} {r.count:>6} {r.bytes:>9} {r.replies or '-':>7} "
                   f"{_fmt(r.percentile(50)):>8} {_fmt(r.percentile(99)):>8}  {errors}")
        where = f" on {connections} TCP connection(s)" if connections is not None else ""
        yield f"{self.messages} message(s){where}"
        if self.stopped:
            yield f"{self.stopped} stream(s) stopped early:"
            for stream, why in self.stopped_named:
                yield f"  !!! {stream}: {why}"
            if self.problems > len(self.stopped_named):
                yield f"  … {self.problems - len(self.stopped_named)} more"


def _row_name(report) -> str:
    """A frame's row: its type's name, its number when the release has no name for it, or
    "unreadable" when not even the header could be read (a request's reply counts there too)."""
    return _msg_name(report.msg_type, report.version) or (
        f"type {report.msg_type}" if report.msg_type is not None else "unreadable")


def _ms(seconds: Optional[float]) -> Optional[float]:
    return round(seconds * 1000, 3) if seconds is not None else None


def _fmt(seconds: Optional[float]) -> str:
    return f"{seconds * 1000:.3f}" if seconds is not None else "-"
