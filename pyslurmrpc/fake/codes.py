"""The return codes the fake daemons produce, by name.

Numbers come from the one errno table, :mod:`pyslurmrpc.slurm_errno` (Slurm
19.05's ``slurm/slurm_errno.h``), and for the libc errnos from Python's
:mod:`errno` (Linux values); only the codes used by the rules are named here,
so the rule tables read like the specification.
"""

from __future__ import annotations

import errno as _libc

from ..slurm_errno import SlurmErrno as _E

SUCCESS = int(_E.SLURM_SUCCESS)
SLURM_ERROR = int(_E.SLURM_ERROR)

# libc errnos that Slurm passes through unchanged
EPERM = _libc.EPERM
ENOENT = _libc.ENOENT
EINVAL = _libc.EINVAL

SLURM_COMMUNICATIONS_CONNECTION_ERROR = int(_E.SLURM_COMMUNICATIONS_CONNECTION_ERROR)
SLURM_PROTOCOL_AUTHENTICATION_ERROR = int(_E.SLURM_PROTOCOL_AUTHENTICATION_ERROR)
SLURM_UNKNOWN_FORWARD_ADDR = int(_E.SLURM_UNKNOWN_FORWARD_ADDR)
ESLURM_ACCESS_DENIED = int(_E.ESLURM_ACCESS_DENIED)
ESLURM_USER_ID_MISSING = int(_E.ESLURM_USER_ID_MISSING)
ESLURM_INVALID_JOB_ID = int(_E.ESLURM_INVALID_JOB_ID)
ESLURM_ALREADY_DONE = int(_E.ESLURM_ALREADY_DONE)
ESLURM_JOB_PENDING = int(_E.ESLURM_JOB_PENDING)
ESLURM_NOT_SUPPORTED = int(_E.ESLURM_NOT_SUPPORTED)
ESLURM_DISABLED = int(_E.ESLURM_DISABLED)
ESLURM_JOB_SUSPENDED = int(_E.ESLURM_JOB_SUSPENDED)
ESLURM_JOB_NOT_FINISHED = int(_E.ESLURM_JOB_NOT_FINISHED)
ESLURMD_JOB_NOTRUNNING = int(_E.ESLURMD_JOB_NOTRUNNING)
ESLURMD_STEP_SUSPENDED = int(_E.ESLURMD_STEP_SUSPENDED)
SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT = int(_E.SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT)
