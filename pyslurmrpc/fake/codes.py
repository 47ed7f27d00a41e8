"""Slurm 19.05 return codes the fake daemons produce, by name.

Values come from ``slurm/slurm_errno.h`` (Slurm tag slurm-19-05-8-1) and, for
the libc errnos, from Linux.  ``pyslurmrpc.slurm_errno`` holds the full
table with texts; only the numbers used by the rules are named here so the
rule tables read like the specification.
"""

from __future__ import annotations

SUCCESS = 0
SLURM_ERROR = -1

# libc errnos that Slurm passes through unchanged
EPERM = 1
ENOENT = 2
EINVAL = 22

SLURM_COMMUNICATIONS_CONNECTION_ERROR = 1001
SLURM_PROTOCOL_AUTHENTICATION_ERROR = 1007
SLURM_UNKNOWN_FORWARD_ADDR = 1012
ESLURM_ACCESS_DENIED = 2002
ESLURM_USER_ID_MISSING = 2010
ESLURM_INVALID_JOB_ID = 2017
ESLURM_ALREADY_DONE = 2021
ESLURM_JOB_PENDING = 2024
ESLURM_NOT_SUPPORTED = 2036
ESLURM_DISABLED = 2037
ESLURM_JOB_SUSPENDED = 2077
ESLURM_JOB_NOT_FINISHED = 2088
ESLURMD_JOB_NOTRUNNING = 4027
ESLURMD_STEP_SUSPENDED = 4028
SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT = 5004
