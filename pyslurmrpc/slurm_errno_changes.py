"""How Slurm's error table changed from release to release, for the numbers of 19.05's table.

Companion data of :mod:`pyslurmrpc.slurm_errno` (kept apart only for size).
Read from ``slurm/slurm_errno.h`` (the error ``enum``) and
``src/common/slurm_errno.c`` (``slurm_errtab``) at each release tag from
``slurm-17-11-13-2`` to ``slurm-26-05-3-1`` (see protocol_specs/errors.md).

``CHANGES[number]`` lists ``(first release, row)`` pairs in release order; a
row holds from its release until the next pair.  Releases before the first
pair use 19.05's row.  ``row`` is ``(name, text)``, :data:`AS_1905` (back to
19.05's row) or ``None`` (the release does not declare the number).  A name
the header declares without a table row carries glibc's ``"Unknown error N"``,
as in 19.05's table.
"""

from __future__ import annotations

#: marker: the release uses 19.05's row again
AS_1905 = "as 19.05"

CHANGES: dict[int, tuple[tuple[str, object], ...]] = {
    2007: (
        ("26.05", ('ESLURM_MAX_JOB_COUNT', 'MaxJobCount limit reached')),
    ),
    2030: (
        ("17.11", ('ESLURM_INVALID_AUTHTYPE_CHANGE',
                  'AuthType change requires restart of all SLURM daemons and commands to take effect')),
        ("18.08", AS_1905),
    ),
    2031: (
        ("17.11", ('ESLURM_INVALID_CHECKPOINT_TYPE_CHANGE',
                  'CheckpointType change requires restart of all SLURM daemons to take effect')),
        ("18.08", AS_1905),
        ("20.02", ('ESLURM_ACTIVE_FEATURE_NOT_SUBSET', 'Active features not subset of available features')),
    ),
    2034: (
        ("17.11", ('ESLURM_INVALID_SWITCHTYPE_CHANGE',
                  'SwitchType change requires restart of all SLURM daemons and jobs to take effect')),
        ("18.08", AS_1905),
    ),
    2040: (
        ("23.02", ('ESLURM_LICENSES_UNAVAILABLE', 'Licenses currently unavailable')),
    ),
    2041: (
        ("23.02", None),
        ("23.11", ('ESLURM_TAKEOVER_NO_HEARTBEAT', 'Unable to takeover, heartbeat file is missing')),
    ),
    2043: (
        ("17.11", ('ESLURM_INVALID_CRYPTO_TYPE_CHANGE',
                  'CryptoType change requires restart of all SLURM daemons to take effect')),
        ("18.08", ('ESLURM_INVALID_CRYPTO_TYPE_CHANGE',
                  'CryptoType change requires restart of all Slurm daemons to take effect')),
        ("19.05", AS_1905),
    ),
    2061: (
        ("20.02", ('ESLURM_PROLOG_RUNNING', 'PrologSlurmctld is still running')),
    ),
    2063: (
        ("23.02", None),
        ("23.11", ('ESLURM_MISSING_WORK_DIR',
                  'Job cannot be submitted without the current working directory specified.')),
    ),
    2064: (
        ("23.02", None),
        ("26.05", ('ESLURM_STEPS_DRAINED', 'No running or pending steps in the job')),
    ),
    2065: (("23.02", None),),
    2079: (("25.11", None),),
    2080: (
        ("20.11", ('ESLURM_RESERVATION_EMPTY', 'Reservation request lacks users, groups or accounts')),
    ),
    2096: (
        ("20.11", ('ESLURM_CANNOT_MODIFY_CRON_JOB', 'Cannot modify scrontab jobs through scontrol')),
    ),
    2097: (
        ("20.11", None),
        ("23.02", ('ESLURM_INVALID_JOB_CONTAINER_CHANGE',
                  'JobContainerType change requires restart of all Slurm daemons and commands to take effect')),
        ("25.11", ('ESLURM_INVALID_NAMESPACE_CHANGE',
                  'NamespaceType change requires restart of all Slurm daemons and commands to take effect')),
    ),
    2098: (
        ("20.11", None),
        ("23.02", ('ESLURM_CANNOT_CANCEL_CRON_JOB', 'Cannot cancel scrontab jobs without --cron flag.')),
    ),
    2103: (("24.11", None),),
    2106: (
        ("20.02", ('ESLURM_NOT_HET_JOB', 'Job not heterogeneous job')),
    ),
    2107: (
        ("20.02", ('ESLURM_NOT_HET_JOB_LEADER', 'Job not heterogeneous job leader')),
    ),
    2108: (
        ("20.02", ('ESLURM_NOT_WHOLE_HET_JOB',
                  'Operation not permitted on individual component of heterogeneous job')),
    ),
    2114: (
        ("17.11", None),
        ("18.08", AS_1905),
        ("24.11", ('ESLURM_BATCH_CONSTRAINT',
                  'Job --batch option is invalid or not a subset of --constraint')),
    ),
    2115: (
        ("17.11", None),
        ("18.08", AS_1905),
    ),
    2116: (
        ("17.11", None),
        ("18.08", AS_1905),
    ),
    2117: (
        ("17.11", None),
        ("18.08", AS_1905),
    ),
    2118: (
        ("17.11", None),
        ("18.08", AS_1905),
    ),
    2119: (
        ("17.11", None),
        ("18.08", AS_1905),
    ),
    2120: (
        ("17.11", None),
        ("18.08", AS_1905),
    ),
    2121: (
        ("17.11", None),
        ("18.08", AS_1905),
    ),
    2122: (
        ("17.11", None),
        ("19.05", AS_1905),
    ),
    2123: (
        ("17.11", None),
        ("19.05", AS_1905),
    ),
    2124: (
        ("17.11", None),
        ("19.05", AS_1905),
    ),
    4000: (
        ("17.11", ('ESLRUMD_PIPE_ERROR_ON_TASK_SPAWN', 'Pipe error on task spawn')),
        ("19.05", AS_1905),
        ("23.02", None),
    ),
    4005: (("23.02", None),),
    4006: (("23.02", None),),
    4011: (("23.02", None),),
    4012: (("23.02", None),),
    4013: (("23.02", None),),
    4015: (("23.02", None),),
    4017: (("23.02", None),),
    4018: (("23.02", None),),
    4019: (("23.02", None),),
    4024: (("23.02", None),),
    4027: (
        ("25.05", ('ESLURMD_STEP_NOTRUNNING', 'Job step not running')),
    ),
    4030: (
        ("17.11", None),
        ("19.05", AS_1905),
    ),
    4100: (("23.02", None),),
    4101: (("23.02", None),),
    4102: (("23.02", None),),
    5000: (("23.02", None),),
    5001: (("23.02", None),),
    5002: (("23.02", None),),
    6001: (
        ("23.02", None),
        ("24.11", ('ESLURM_AUTH_EXPIRED', 'Authentication credential expired')),
    ),
    6002: (("23.02", None),),
    6003: (("23.02", None),),
    6004: (
        ("17.11", None),
        ("19.05", AS_1905),
    ),
    6005: (
        ("17.11", None),
        ("19.05", AS_1905),
        ("23.02", None),
    ),
    6006: (
        ("17.11", None),
        ("19.05", AS_1905),
        ("23.02", None),
    ),
    6007: (
        ("17.11", None),
        ("19.05", AS_1905),
    ),
    8001: (("25.11", None),),
}
