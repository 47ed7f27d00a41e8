"""Which Slurm release a controller speaks, found with pings (no I/O here).

A controller answers a REQUEST_PING in any header version from its
SLURM_MIN_PROTOCOL_VERSION up to its own, and closes the connection without a
byte on any other (22.05: src/common/slurm_protocol_pack.c unpack_header and
src/common/slurm_protocol_util.c check_header_version; see
protocol_specs/versions.md).  The highest version answered is therefore the
controller's own release.  All candidate pings are sent at once, so detection
costs one round of parallel round trips; a refused version is a prompt close,
never a timeout.
"""

from __future__ import annotations

from ..wire import VERSIONS

#: every header version we can ping in, newest first
CANDIDATES = tuple(sorted(VERSIONS, reverse=True))
#: the first release without checkpoint RPCs (20.02)
FIRST_WITHOUT_CHECKPOINT = 0x2300


def verdict(answered: dict[int, bool]) -> int | None:
    """The controller's version: the highest candidate whose ping was answered (None if none)."""
    spoken = [v for v, ok in answered.items() if ok]
    return max(spoken) if spoken else None


def has_checkpoint(version: int) -> bool:
    return version < FIRST_WITHOUT_CHECKPOINT


def release_name(version: int) -> str:
    return VERSIONS[version].name
