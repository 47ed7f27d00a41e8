"""Which Slurm release a controller speaks, decided from its answers (no I/O here).

What a controller does with a request, per release (the release table,
pyslurmrpc.wire.versions, columns ``min_code``, ``version_refusal``,
``auth_refusal``; protocol_specs/versions.md cites the sources):

* a header version from its ``min_code`` up to its own: it answers, in the
  request's version;
* any other header version: 17.11 - 24.05 and 26.05 close the connection
  without a byte; 24.11, 25.05 and 25.11 answer RESPONSE_SLURM_RC
  SLURM_PROTOCOL_AUTHENTICATION_ERROR in a header of their *own* version,
  flagged SLURM_NO_AUTH_CRED, without a credential (a *hint*);
* a credential that does not verify: up to 24.05 a close; from 24.11 the same
  unauthenticated RC, but in the request's version.

A hint carries no credential and proves nothing: it only chooses the next
version to try.  The verdict always rests on an answer to an authenticated
request.  protocol_specs/versions.md ("Detection") gives
the algorithm the flows follow: one first request, then at most one round of
requests side by side, chosen by :func:`plan_after`, judged by :func:`decide`.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

from ..errors import ProtocolError, UnsupportedVersionError
from ..slurm_errno import ERRORS
from ..wire import MsgType, decode_message
from ..wire.repeats import decode_reply_frame
from ..wire.constants import HTTP_PREFIX, LENGTH_PREFIX_SIZE, SLURM_NO_AUTH_CRED
from ..wire.types import Message
from ..wire.versions import (
    NEWEST, RELEASE_BY_CODE, RELEASE_STEP, RELEASES, Refusal, has_checkpoint, release_name, version_text,
)

#: the return code of every unauthenticated refusal (slurmctld controller.c _on_msg)
AUTH_ERROR = next(n for n, (name, _) in ERRORS.items() if name == "SLURM_PROTOCOL_AUTHENTICATION_ERROR")
#: one past the newest release we know: a ping labelled with it tells 26.05 from anything newer
FUTURE_PROBE = NEWEST + RELEASE_STEP
#: releases after 24.11 accept their own version and three before it (unpack_header
#: at 24.11 - 26.05); assumed of a release we do not know, only to choose probes
_FUTURE_WINDOW = 3 * RELEASE_STEP
#: the version ping / controller_version try first when nothing is cached
DETECTION_FIRST = NEWEST
#: every header version we can ping in, newest first (the future probe excluded)
CANDIDATES = tuple(sorted(RELEASE_BY_CODE, reverse=True))
#: the first release without checkpoint RPCs (20.02), from the table
FIRST_WITHOUT_CHECKPOINT = min(r.code for r in RELEASES if not r.checkpoint)


def first_version(cached: Optional[int] = None, pinned: Optional[int] = None) -> int:
    """The version of the first request: what worked before, else what the caller pinned, else 26.05."""
    return cached or pinned or DETECTION_FIRST


class Outcome(str, enum.Enum):
    ANSWERED = "answered"          # a reply in the request's version: the request was taken
    HINT = "hint"                  # unauthenticated refusal naming another version
    AUTH_REFUSED = "auth_refused"  # unauthenticated refusal in the request's version
    CLOSED = "closed"              # the connection closed without a byte
    GARBAGE = "garbage"            # bytes that are none of the above
    LOST = "lost"                  # a probe that got no answer (timed out, not connected): it tells nothing


@dataclass(frozen=True)
class Observation:
    """What one request in header version ``sent`` got back."""

    sent: int
    outcome: Outcome
    hint: Optional[int] = None       # HINT: the version the refusal's header names
    reply: Optional[Message] = dataclasses.field(default=None, repr=False)  # ANSWERED
    problem: Optional[str] = None    # GARBAGE / AUTH_REFUSED: what was wrong

    def told(self) -> str:
        """What came back, for a log line (the reply itself is the caller's to describe)."""
        if self.problem:
            return self.problem
        if self.outcome is Outcome.HINT and self.hint is not None:
            return f"refused without a credential, naming {version_text(self.hint)}"
        return "no answer"


def observe(sent: int, frame: Optional[bytes]) -> Observation:
    """Classify the answer to a request in header version ``sent`` (``None``/b"": closed)."""
    if not frame:
        return Observation(sent, Outcome.CLOSED)
    if bytes(frame[:len(HTTP_PREFIX)]) == HTTP_PREFIX:  # a refusal without a hint, as a close
        return Observation(sent, Outcome.CLOSED, problem=f"0x{sent:04x} was answered in HTTP (refused)")
    try:
        msg = decode_reply_frame(frame)
    except UnsupportedVersionError:
        return _observe_unknown_version(sent, bytes(frame))
    except ProtocolError as exc:
        return Observation(sent, Outcome.GARBAGE, problem=f"undecodable answer: {exc}")
    return _classify(sent, msg)


def is_refusal(msg: Message) -> bool:
    """RESPONSE_SLURM_RC SLURM_PROTOCOL_AUTHENTICATION_ERROR, SLURM_NO_AUTH_CRED, no credential."""
    return (msg.msg_type == MsgType.RESPONSE_SLURM_RC and msg.auth is None
            and bool(msg.header.flags & SLURM_NO_AUTH_CRED)
            and getattr(msg.body, "return_code", None) == AUTH_ERROR)


def _classify(sent: int, msg: Message) -> Observation:
    version = msg.version
    if version == sent:
        if is_refusal(msg):
            return Observation(sent, Outcome.AUTH_REFUSED, problem=(
                f"the controller refused the credential of a {release_name(sent)} request"))
        return Observation(sent, Outcome.ANSWERED, reply=msg)
    if not is_refusal(msg):
        return Observation(sent, Outcome.GARBAGE, problem=(
            f"reply in protocol version {version_text(version)}, request was {version_text(sent)}"))
    return _hint(sent, version)


def _hint(sent: int, version: int) -> Observation:
    """A refusal in ``version``: a hint only if that release answers refusals so."""
    row = RELEASE_BY_CODE.get(version)
    if row is not None and row.version_refusal is not Refusal.RC_HINT:
        why = f"a {row.name} controller closes the connection on a version it refuses"
    elif row is not None and row.accepts(sent):
        why = f"a {row.name} controller accepts 0x{sent:04x}"
    else:
        return Observation(sent, Outcome.HINT, hint=version)
    return Observation(sent, Outcome.GARBAGE, problem=f"refusal in protocol 0x{version:04x}, but {why}")


def relabel(frame: bytes, version: int) -> bytes:
    """``frame`` with another header version (the MUNGE payload does not cover the header)."""
    at = LENGTH_PREFIX_SIZE
    return bytes(frame[:at]) + version.to_bytes(2, "big") + bytes(frame[at + 2:])


def wire_version(code: int) -> int:
    """The known version whose layout builds a frame labelled ``code`` (newest for the future probe)."""
    return code if code in RELEASE_BY_CODE else NEWEST


def _observe_unknown_version(sent: int, frame: bytes) -> Observation:
    """A header version we do not know: newer ones are read in the newest layout, as a hint."""
    version = int.from_bytes(frame[4:6], "big")
    named = f"answer in protocol version {version_text(version)}"
    if version < NEWEST:
        return Observation(sent, Outcome.GARBAGE, problem=named)
    try:
        msg = decode_message(relabel(frame, NEWEST))
    except ProtocolError as exc:
        return Observation(sent, Outcome.GARBAGE, problem=f"{named}, undecodable: {exc}")
    msg = dataclasses.replace(msg, header=dataclasses.replace(msg.header, version=version))
    return _classify(sent, msg)


# ----------------------------------------------------------------------------
# planning the one extra round, and the verdict
# ----------------------------------------------------------------------------
def _window(code: int) -> tuple[int, int]:
    row = RELEASE_BY_CODE.get(code)
    return (row.min_code, row.code) if row else (code - _FUTURE_WINDOW, code)


def answers(candidate: int, version: int) -> bool:
    """Whether a controller of ``candidate`` takes a request in ``version``."""
    low, high = _window(candidate)
    return low <= version <= high


@dataclass(frozen=True)
class Plan:
    """Releases still possible after the first answer, and the versions to ping side by side."""

    candidates: tuple[int, ...]
    probes: tuple[int, ...]


def plan_after(first: Observation) -> Plan:
    """What to try after the first request's ``first`` observation (at most one more round)."""
    sent = first.sent
    if first.outcome is Outcome.HINT:
        hint = first.hint
        probes = (hint,) if hint in RELEASE_BY_CODE else tuple(v for v in (NEWEST,) if answers(hint, v))
        return Plan((hint,), probes)
    if first.outcome is Outcome.ANSWERED:
        maybe = [c for c in _universe() if answers(c, sent)]
        return Plan(tuple(maybe), tuple(c for c in maybe if c > sent))
    if first.outcome is Outcome.CLOSED:
        maybe = [c for c in _universe() if not answers(c, sent) and _closes(c)]
        return Plan(tuple(maybe), _distinguishing(maybe, exclude=sent))
    return Plan((), ())


def plan_blind() -> Plan:
    """Probes for when the first request told nothing: a checkpoint call closed, which a
    release that takes its version but lacks checkpoint RPCs (20.02, 20.11) does too."""
    everyone = _universe()
    return Plan(tuple(everyone), _distinguishing(everyone, exclude=-1))


def decide_blind(plan: Plan, probes: Mapping[int, Observation]) -> Verdict:
    """:func:`decide` on the probes of :func:`plan_blind` alone."""
    hinted = next((o for o in probes.values() if o.outcome is Outcome.HINT), None)
    return decide(hinted or probes[plan.probes[0]], plan, probes)


def _universe() -> list[int]:
    return sorted(RELEASE_BY_CODE) + [FUTURE_PROBE]


def _closes(code: int) -> bool:
    row = RELEASE_BY_CODE.get(code)
    return row is None or row.version_refusal is Refusal.CLOSE


def _pattern(candidate: int, probes: Iterable[int]) -> frozenset:
    return frozenset(v for v in probes if answers(candidate, v))


def _distinguishing(candidates: list[int], exclude: int) -> tuple[int, ...]:
    """Few probes whose answers name each candidate, and that each candidate answers at least once."""
    pool = sorted({c for c in candidates} - {exclude}, reverse=True)
    chosen: list[int] = []
    for _ in range(len(pool)):
        if _separated(candidates, chosen):
            break
        best = max(pool, key=lambda v: (_gain(candidates, chosen + [v]), v))
        chosen.append(best)
        pool.remove(best)
    return tuple(sorted(chosen, reverse=True))


def _separated(candidates: list[int], probes: list[int]) -> bool:
    patterns = [_pattern(c, probes) for c in candidates]
    return all(patterns) and len(set(patterns)) == len(patterns)


def _gain(candidates: list[int], probes: list[int]) -> int:
    patterns = [_pattern(c, probes) for c in candidates]
    return len(set(patterns)) + sum(1 for p in patterns if p)


@dataclass(frozen=True)
class Verdict:
    """The controller's release as its answers show it."""

    code: Optional[int]            # its protocol version; None: undetermined (see problem)
    speak: Optional[int] = None    # a version it answered an authenticated request in
    hint: Optional[int] = None     # what an unauthenticated refusal claimed, if any
    problem: Optional[str] = None
    auth_refused: bool = False     # nothing answered and a controller refused our credential

    @property
    def exact(self) -> bool:
        return self.code in RELEASE_BY_CODE and self.speak is not None

    @property
    def name(self) -> str:
        return release_name(self.code) if self.code is not None else "undetermined"

    @property
    def has_checkpoint(self) -> bool:
        return self.code is not None and has_checkpoint(self.code)


def decide(first: Observation, plan: Plan, probes: Mapping[int, Observation]) -> Verdict:
    """The verdict from the first observation, its plan and the probes' observations."""
    seen = dict(probes)
    seen[first.sent] = first
    answered = {v for v, o in seen.items() if o.outcome is Outcome.ANSWERED}
    if not answered:
        refused = any(o.outcome is Outcome.AUTH_REFUSED for o in seen.values())
        return Verdict(None, hint=first.hint, problem=_nothing_answered(first, seen), auth_refused=refused)
    # a lost probe is no refusal: counted as one, a 26.05 controller whose 0x2d00 probe timed
    # out was named 25.11, and cached so
    asked = {v for v, o in seen.items() if o.outcome is not Outcome.LOST}
    fits = [c for c in plan.candidates if _pattern(c, asked) == frozenset(answered)]
    if len(fits) != 1:
        lost = [o.problem for o in seen.values() if o.outcome is Outcome.LOST]
        return Verdict(None, max(answered), first.hint, problem=(
            f"answers in {_hexes(answered)} of {_hexes(asked)} fit "
            f"{'no release' if not fits else 'several releases'}"
            + (f" (no answer to {'; '.join(lost)})" if lost else "")))
    code = fits[0]
    speak = code if code in answered else max(answered)
    return Verdict(code, speak, first.hint)


#: what to check when a version a controller may take was closed on: the credential
_CHECK_AUTH = "is the authentication (AuthType, --auth, the munge key) the controller's?"


def _nothing_answered(first: Observation, seen: Mapping[int, Observation]) -> str:
    worst = [o.problem for o in seen.values() if o.problem]
    if first.outcome is Outcome.HINT:
        worst.insert(0, f"an unauthenticated refusal named {version_text(first.hint)}")
    # 17.11-24.05 close without a byte on a credential they cannot verify, too (versions.md)
    if not worst:
        detail = ("every connection closed without an answer, as a controller up to 24.05 also closes on a "
                  f"credential it cannot verify: {_CHECK_AUTH}")
    else:
        # 26.05 hands a version it refuses to HTTP, and closes on a credential it cannot read
        # (auth/none to auth/munge): the close among the refusals is the clue
        closed = [v for v, o in seen.items() if o.outcome is Outcome.CLOSED and not o.problem]
        lost = any(o.outcome is Outcome.LOST for o in seen.values())
        if closed and not lost:     # with probes unanswered, the closes may be the same trouble
            worst.append(f"{_hexes(closed)} closed without an answer, as a controller also does on a "
                         f"credential it cannot verify: {_CHECK_AUTH}")
        detail = "; ".join(worst)
    return f"no protocol version in {_hexes(seen)} was answered ({detail})"


def _hexes(codes: Iterable[int]) -> str:
    return ", ".join(f"0x{c:04x}" for c in sorted(codes))


def verdict(answered: dict[int, bool]) -> Optional[int]:
    """The highest version whose ping was answered (None if none): for an all-versions probe."""
    spoken = [v for v, ok in answered.items() if ok]
    return max(spoken) if spoken else None
