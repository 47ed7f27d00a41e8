"""libslurm's C checkpoint API, call for call, for code written against the man page.

Signatures follow slurm_checkpoint_error(3) (Slurm 19.05): every function
returns 0 on success, or -1 with the error left for :func:`slurm_get_errno`
(per thread, like C's errno).  Output parameters (``time_t *start_time``,
``uint32_t *error_code``, ``char **error_msg``) are :class:`Ref` objects
whose ``.value`` is set.

Where libslurm 19.05 itself differs from its man page (documented in
protocol_specs/client_behaviour.md): the real library returns the Slurm
error code itself from able, disable, enable, create, vacate, requeue,
restart, error and tasks (for example 2037), and -1 only from complete and
task_complete; able leaves ``*start_time`` untouched on an error reply.
This module keeps the man page's convention for every call so that
``if (rc != 0) slurm_perror(...)`` style code ports unchanged, and sets
errno in both cases, so callers of either convention get the code.

The client used is the one given to :func:`slurm_init`, else one configured
from slurm.conf ($SLURM_CONF, /etc/slurm/slurm.conf) on first use.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Any

from .errors import (  # noqa: F401  (the constants are part of this module's C-like API)
    SLURM_PROTOCOL_VERSION_ERROR, SLURM_UNEXPECTED_MSG_ERROR, PyslurmrpcError, slurm_errno_of,
)
from .slurm_errno import SLURM_ERROR, SLURM_SUCCESS, text_of  # noqa: F401  (C-like API)
from .wire.constants import NO_VAL, SLURM_BATCH_SCRIPT  # noqa: F401  (re-exported for C-like code)
from .wire.constants import C_INT_MAX, C_INT_MIN

_local = threading.local()
_client_lock = threading.Lock()
_client = None


__all__ = [
    "Ref",
    "slurm_init",
    "slurm_get_errno",
    "slurm_seterrno",
    "slurm_strerror",
    "slurm_perror",
    "slurm_checkpoint_able",
    "slurm_checkpoint_disable",
    "slurm_checkpoint_enable",
    "slurm_checkpoint_create",
    "slurm_checkpoint_vacate",
    "slurm_checkpoint_requeue",
    "slurm_checkpoint_restart",
    "slurm_checkpoint_complete",
    "slurm_checkpoint_task_complete",
    "slurm_checkpoint_error",
    "slurm_checkpoint_tasks",
    "slurm_ping",
]


@dataclass
class Ref:
    """An output parameter: what C passes as a pointer."""

    value: Any = None


def slurm_init(conf: str | None = None, client=None) -> None:
    """Use ``client`` (or a Client read from ``conf``) for every call of this module."""
    global _client
    from .client import Client

    with _client_lock:
        _client = client if client is not None else Client.from_slurm_conf(conf)


def _get_client():
    global _client
    with _client_lock:
        if _client is None:
            from .client import Client

            _client = Client.from_slurm_conf()
        return _client


def slurm_get_errno() -> int:
    """The error of this thread's last failed call (0 when none)."""
    return getattr(_local, "errno", 0)


def slurm_seterrno(value: int) -> None:
    _local.errno = value


def slurm_strerror(errnum: int) -> str:
    """Slurm's text for an error number (slurm_strerror).

    A number past a C int is in no table: it gets the text other unknown numbers get
    (glibc's "Unknown error N", or "Unknown negative error number") instead of an
    OverflowError from os.strerror."""
    if errnum > C_INT_MAX:     # slurm_strerror takes a C int; os.strerror cannot be handed more
        return f"Unknown error {errnum}"
    return text_of(max(errnum, C_INT_MIN))


def slurm_perror(msg: str) -> None:
    """Print ``msg: <text of slurm_get_errno()>`` on stderr (slurm_perror)."""
    print(f"{msg}: {slurm_strerror(slurm_get_errno())}", file=sys.stderr)


def _call(method: str, *args, out=None):
    try:
        result = getattr(_get_client(), method)(*args)
    except PyslurmrpcError as exc:
        slurm_seterrno(slurm_errno_of(exc))
        return SLURM_ERROR
    if out:
        out(result)
    return SLURM_SUCCESS


def slurm_checkpoint_able(job_id: int, step_id: int, start_time: Ref) -> int:
    return _call("checkpoint_able", job_id, step_id, out=lambda r: setattr(start_time, "value", r))


def slurm_checkpoint_disable(job_id: int, step_id: int) -> int:
    return _call("checkpoint_disable", job_id, step_id)


def slurm_checkpoint_enable(job_id: int, step_id: int) -> int:
    return _call("checkpoint_enable", job_id, step_id)


def slurm_checkpoint_create(job_id: int, step_id: int, max_wait: int, image_dir: str | None) -> int:
    return _call("checkpoint_create", job_id, step_id, max_wait, image_dir)


def slurm_checkpoint_vacate(job_id: int, step_id: int, max_wait: int, image_dir: str | None) -> int:
    return _call("checkpoint_vacate", job_id, step_id, max_wait, image_dir)


def slurm_checkpoint_requeue(job_id: int, max_wait: int, image_dir: str | None) -> int:
    return _call("checkpoint_requeue", job_id, max_wait, image_dir)


def slurm_checkpoint_restart(job_id: int, step_id: int, stick: int, image_dir: str | None) -> int:
    return _call("checkpoint_restart", job_id, step_id, bool(stick), image_dir)


def slurm_checkpoint_complete(job_id: int, step_id: int, begin_time: int, error_code: int,
                              error_msg: str | None) -> int:
    return _call("checkpoint_complete", job_id, step_id, begin_time, error_code, error_msg)


def slurm_checkpoint_task_complete(job_id: int, step_id: int, task_id: int, begin_time: int,
                                   error_code: int, error_msg: str | None) -> int:
    return _call("checkpoint_task_complete", job_id, step_id, task_id, begin_time, error_code, error_msg)


def slurm_checkpoint_error(job_id: int, step_id: int, error_code: Ref, error_msg: Ref) -> int:
    def store(result):
        error_code.value, error_msg.value = result

    return _call("checkpoint_error", job_id, step_id, out=store)


def slurm_checkpoint_tasks(job_id: int, step_id: int, begin_time: int, image_dir: str | None,
                           max_wait: int, nodelist: str) -> int:
    return _call("checkpoint_tasks", job_id, step_id, begin_time, image_dir, max_wait, nodelist)


def slurm_ping(dest: int = 0) -> int:
    """0 when controller ``dest`` (0 primary) answers REQUEST_PING, else -1."""
    return _call("ping", dest)
