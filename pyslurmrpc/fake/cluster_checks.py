"""Checks on what a fake cluster holds, shared by the Python API (``Cluster(...)``,
``add_job``, ``add_step``) and the TOML loader, so both refuse the same values.

A value the fake could not put on the wire (a uid that is a name, a job id over
32 bits) used to be accepted and then break every connection; here it is an
:class:`~pyslurmrpc.errors.InvalidArgumentError` reading ``NAME must be WHAT,
not VALUE``, the client's own wording (``client/validate.py``).  Each check returns
the value (normalised where said) or raises.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable
from typing import Optional

from pyslurmrpc.client.validate import PORT_MAX, controller_address, shown
from pyslurmrpc.errors import InvalidArgumentError
from pyslurmrpc.hostlist import HostlistError, expand
from pyslurmrpc.wire import INFINITE, NO_VAL, SLURM_PENDING_STEP

#: uid_t is a uint32 on the wire (the credential's uid); (uid_t)-1 means "no uid" to
#: setreuid/chown and is nobody's uid
UID_MAX = 0xFFFFFFFE
#: job ids are uint32 on the wire; 0 is no job, NO_VAL and INFINITE are markers
JOB_ID_MIN, JOB_ID_MAX = 1, NO_VAL - 1
#: step ids are uint32 on the wire; the batch and extern steps have the top two
STEP_ID_MAX = INFINITE
#: a [nodes] port: 0 lets the fake slurmd pick a free one
NODE_PORT_MIN = 0




def bad(name: str, what: str, value, why: str = "") -> InvalidArgumentError:
    return InvalidArgumentError(f"{name} must be {what}, not {shown(value)}{why}")


def integer(value, name: str, what: str, lo: int, hi: int, why: str = "") -> int:
    """An int from lo to hi (a bool is not one, though Python says it is an int)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise bad(name, f"{what} (integer {lo}..{hi})", value, why)
    return value


def uid(value, name: str) -> int:
    return integer(value, name, "a uid", 0, UID_MAX)


def job_id(value, name: str = "job_id") -> int:
    return integer(value, name, "a job id", JOB_ID_MIN, JOB_ID_MAX)


def step_id(value, name: str) -> int:
    """A step id 0..STEP_ID_MAX (SLURM_BATCH_SCRIPT and SLURM_EXTERN_CONT too), but not
    SLURM_PENDING_STEP: a step not created yet is no step a job can have."""
    step = integer(value, name, "a step id", 0, STEP_ID_MAX)
    if step == SLURM_PENDING_STEP:
        raise bad(name, "a step id", value, " (SLURM_PENDING_STEP: a step not created yet)")
    return step


def flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise bad(name, "true or false", value)
    return value


def path(value, name: str) -> Optional[str]:
    """None (not set), or a non-empty str or PathLike, as a str."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if text is not None and (not isinstance(text, str) or not text):
        raise bad(name, "a directory (non-empty string or path)", value)
    return text


def choice(value, name: str, kind: type[enum.Enum]):
    """A member of ``kind``, given as itself or as its value."""
    try:
        return kind(value)
    except ValueError:
        raise bad(name, f"one of {'/'.join(m.value for m in kind)}", value) from None


def node_names(value, name: str) -> tuple[str, ...]:
    """A hostlist expression ("n[1-4]") or node names (any iterable of them), as a tuple of names."""
    if isinstance(value, str):
        try:
            return tuple(expand(value))
        except HostlistError as exc:
            raise InvalidArgumentError(f"{name}: {exc}") from None
    names = tuple(value) if isinstance(value, Iterable) and not isinstance(value, (bytes, dict)) else None
    if names is None or not all(isinstance(n, str) and n for n in names):
        raise bad(name, 'a hostlist ("n[1-4]") or node names', value)
    return names


def node_addr(value, name: str) -> tuple[str, int]:
    """ "HOST:PORT" or "[V6ADDR]:PORT" as (host, port), read as the client reads --controller
    (":PORT" is 127.0.0.1; port 0 lets the fake slurmd take any free one)."""
    what = f'"HOST:PORT" or "[V6ADDR]:PORT" (port {NODE_PORT_MIN}..{PORT_MAX})'
    if not isinstance(value, str):
        raise bad(name, what, value)
    local = value.startswith(":") and not value.startswith("::")
    host, port = controller_address("127.0.0.1" + value if local else value, None, name, NODE_PORT_MIN)
    if port is None:
        raise bad(name, what, value)
    return host, port


def known_keys(spec: dict, known, where: str) -> None:
    """Refuse a key the description does not have (a typo would otherwise be ignored)."""
    unknown = sorted(set(spec) - set(known))
    if unknown:
        keys = "key" if len(unknown) == 1 else "keys"
        raise InvalidArgumentError(f"{where}unknown {keys} {', '.join(map(repr, unknown))} "
                                   f"(known: {', '.join(sorted(known))})")


def table(value, name: str) -> dict:
    if not isinstance(value, dict):
        raise bad(name, "a table", value)
    return value


def tables(value, name: str, header: str) -> list:
    """An array of tables (``header`` is how TOML writes one: [[jobs]], [[jobs.steps]])."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise bad(name, f"an array of tables ({header})", value)
    return value
