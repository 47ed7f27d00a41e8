"""Slurm's error numbers, their symbolic names and message texts: the one errno table.

Every other module reads Slurm error numbers from here (by name, through
:class:`SlurmErrno`, or by number through :func:`name_of` / :func:`text_of`);
no Slurm error number is written as a literal anywhere else in pyslurmrpc
(tests/test_slurm_errno.py checks that).

Data source, reference release 19.05 (tag ``slurm-19-05-8-1``):

* numbers and names: the ``SLURM_SUCCESS``/``SLURM_ERROR`` macros and the
  anonymous error ``enum`` of ``slurm/slurm_errno.h``;
* texts: the ``slurm_errtab`` array in ``src/common/slurm_errno.c``, the table
  searched by ``_lookup_slurm_api_errtab()`` on behalf of ``slurm_strerror()``.

Other releases (17.11 to 26.05): where a number of 19.05's table has another
name or text, or is not declared, :data:`pyslurmrpc.slurm_errno_changes.CHANGES`
says so, and the ``release`` argument of :func:`row_of`, :func:`name_of` and
:func:`text_of` applies it.  Numbers that first appear after 19.05 are not in
the table.

Notes on the edges of the data:

* ``EINPROGRESS`` is a libc errno that Slurm's table re-labels; its key is the
  Linux value (115), the platform every Slurm daemon runs on.
* ``ESLURMD_KILL_JOB_ALREADY_COMPLETE`` (4002) and ``ESLURM_AUTH_UNABLE_TO_SIGN``
  (6003) are declared in the header but have no row in ``slurm_errtab``; for
  them ``slurm_strerror()`` falls back to the C library's ``strerror()``, which
  on glibc yields ``"Unknown error <n>"``.  They are listed in
  :data:`MISSING_FROM_ERRTAB` and carry that glibc text here.
* SPANK's ``ESPANK_*`` codes (``slurm/spank.h``) are a separate small enum
  (0..11) with their own ``spank_strerror()``; they are not Slurm errno values
  and are not in this table.

On the wire a return code travels as an unsigned 32-bit integer (for example
the single field of ``RESPONSE_SLURM_RC``); use :func:`from_wire` to turn it
back into the signed C ``int`` that Slurm works with.
"""

from __future__ import annotations

import enum
import os

from .slurm_errno_changes import AS_1905, CHANGES

__all__ = [
    "ERRORS",
    "MISSING_FROM_ERRTAB",
    "REFERENCE_RELEASE",
    "SLURM_SUCCESS",
    "SLURM_ERROR",
    "SlurmErrno",
    "from_wire",
    "name_of",
    "row_of",
    "text_of",
]

#: number -> (symbolic name, message text) for Slurm 19.05.
ERRORS: dict[int, tuple[str, str]] = {
    -1: ('SLURM_ERROR', 'Unspecified error'),
    0: ('SLURM_SUCCESS', 'No error'),
    115: ('EINPROGRESS', 'Operation now in progress'),
    1000: ('SLURM_UNEXPECTED_MSG_ERROR', 'Unexpected message received'),
    1001: ('SLURM_COMMUNICATIONS_CONNECTION_ERROR', 'Communication connection failure'),
    1002: ('SLURM_COMMUNICATIONS_SEND_ERROR', 'Message send failure'),
    1003: ('SLURM_COMMUNICATIONS_RECEIVE_ERROR', 'Message receive failure'),
    1004: ('SLURM_COMMUNICATIONS_SHUTDOWN_ERROR', 'Communication shutdown failure'),
    1005: ('SLURM_PROTOCOL_VERSION_ERROR', 'Incompatible versions of client and server code'),
    1006: ('SLURM_PROTOCOL_IO_STREAM_VERSION_ERROR', 'I/O stream version number error'),
    1007: ('SLURM_PROTOCOL_AUTHENTICATION_ERROR', 'Protocol authentication error'),
    1008: ('SLURM_PROTOCOL_INSANE_MSG_LENGTH', 'Insane message length'),
    1009: ('SLURM_MPI_PLUGIN_NAME_INVALID', 'Invalid MPI plugin name'),
    1010: ('SLURM_MPI_PLUGIN_PRELAUNCH_SETUP_FAILED', "MPI plugin's pre-launch setup failed"),
    1011: ('SLURM_PLUGIN_NAME_INVALID', 'Plugin initialization failed'),
    1012: ('SLURM_UNKNOWN_FORWARD_ADDR', "Can't find an address, check slurm.conf"),
    1800: ('SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR', 'Unable to contact slurm controller (connect failure)'),
    1801: ('SLURMCTLD_COMMUNICATIONS_SEND_ERROR', 'Unable to contact slurm controller (send failure)'),
    1802: ('SLURMCTLD_COMMUNICATIONS_RECEIVE_ERROR', 'Unable to contact slurm controller (receive failure)'),
    1803: ('SLURMCTLD_COMMUNICATIONS_SHUTDOWN_ERROR', 'Unable to contact slurm controller (shutdown failure)'),
    1900: ('SLURM_NO_CHANGE_IN_DATA', 'Data has not changed since time specified'),
    2000: ('ESLURM_INVALID_PARTITION_NAME', 'Invalid partition name specified'),
    2001: ('ESLURM_DEFAULT_PARTITION_NOT_SET', 'No partition specified or system default partition'),
    2002: ('ESLURM_ACCESS_DENIED', 'Access/permission denied'),
    2003: ('ESLURM_JOB_MISSING_REQUIRED_PARTITION_GROUP', "User's group not permitted to use this partition"),
    2004: ('ESLURM_REQUESTED_NODES_NOT_IN_PARTITION', 'Requested nodes not in this partition'),
    2005: ('ESLURM_TOO_MANY_REQUESTED_CPUS', 'More processors requested than permitted'),
    2006: ('ESLURM_INVALID_NODE_COUNT', 'Node count specification invalid'),
    2007: ('ESLURM_ERROR_ON_DESC_TO_RECORD_COPY', 'Unable to create job record, try again'),
    2008: ('ESLURM_JOB_MISSING_SIZE_SPECIFICATION', 'Job size specification needs to be provided'),
    2009: ('ESLURM_JOB_SCRIPT_MISSING', 'Job script not specified'),
    2010: ('ESLURM_USER_ID_MISSING', 'Invalid user id'),
    2011: ('ESLURM_DUPLICATE_JOB_ID', 'Duplicate job id'),
    2012: ('ESLURM_PATHNAME_TOO_LONG', 'Pathname of a file, directory or other parameter too long'),
    2013: ('ESLURM_NOT_TOP_PRIORITY', 'Immediate execution impossible, insufficient priority'),
    2014: ('ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE', 'Requested node configuration is not available'),
    2015: ('ESLURM_REQUESTED_PART_CONFIG_UNAVAILABLE', 'Requested partition configuration not available now'),
    2016: ('ESLURM_NODES_BUSY', 'Requested nodes are busy'),
    2017: ('ESLURM_INVALID_JOB_ID', 'Invalid job id specified'),
    2018: ('ESLURM_INVALID_NODE_NAME', 'Invalid node name specified'),
    2019: ('ESLURM_WRITING_TO_FILE', 'I/O error writing script/environment to file'),
    2020: ('ESLURM_TRANSITION_STATE_NO_UPDATE', 'Job can not be altered now, try again later'),
    2021: ('ESLURM_ALREADY_DONE', 'Job/step already completing or completed'),
    2022: ('ESLURM_INTERCONNECT_FAILURE', 'Error configuring interconnect'),
    2023: ('ESLURM_BAD_DIST', 'Task distribution specification invalid'),
    2024: ('ESLURM_JOB_PENDING', 'Job is pending execution'),
    2025: ('ESLURM_BAD_TASK_COUNT', 'Task count specification invalid'),
    2026: ('ESLURM_INVALID_JOB_CREDENTIAL', 'Error generating job credential'),
    2027: ('ESLURM_IN_STANDBY_MODE', 'Slurm backup controller in standby mode'),
    2028: ('ESLURM_INVALID_NODE_STATE', 'Invalid node state specified'),
    2029: ('ESLURM_INVALID_FEATURE', 'Invalid feature specification'),
    2030: ('ESLURM_INVALID_AUTHTYPE_CHANGE', 'AuthType change requires restart of all Slurm daemons and commands to take effect'),
    2031: ('ESLURM_INVALID_CHECKPOINT_TYPE_CHANGE', 'CheckpointType change requires restart of all Slurm daemons to take effect'),
    2032: ('ESLURM_INVALID_SCHEDTYPE_CHANGE', 'SchedulerType change requires restart of the slurmctld daemon to take effect'),
    2033: ('ESLURM_INVALID_SELECTTYPE_CHANGE', 'SelectType change requires restart of the slurmctld daemon to take effect'),
    2034: ('ESLURM_INVALID_SWITCHTYPE_CHANGE', 'SwitchType change requires restart of all Slurm daemons and jobs to take effect'),
    2035: ('ESLURM_FRAGMENTATION', 'Immediate execution impossible, resources too fragmented for allocation'),
    2036: ('ESLURM_NOT_SUPPORTED', 'Requested operation not supported on this system'),
    2037: ('ESLURM_DISABLED', 'Requested operation is presently disabled'),
    2038: ('ESLURM_DEPENDENCY', 'Job dependency problem'),
    2039: ('ESLURM_BATCH_ONLY', 'Only batch jobs are accepted or processed'),
    2040: ('ESLURM_TASKDIST_ARBITRARY_UNSUPPORTED', 'Current SwitchType does not permit arbitrary task distribution'),
    2041: ('ESLURM_TASKDIST_REQUIRES_OVERCOMMIT', 'Requested more tasks than available processors'),
    2042: ('ESLURM_JOB_HELD', 'Job is in held state, pending scheduler release'),
    2043: ('ESLURM_INVALID_CRED_TYPE_CHANGE', 'CredType change requires restart of all Slurm daemons to take effect'),
    2044: ('ESLURM_INVALID_TASK_MEMORY', 'Memory required by task is not available'),
    2045: ('ESLURM_INVALID_ACCOUNT', 'Invalid account or account/partition combination specified'),
    2046: ('ESLURM_INVALID_PARENT_ACCOUNT', 'Invalid parent account specified'),
    2047: ('ESLURM_SAME_PARENT_ACCOUNT', 'Account already child of parent account specified'),
    2048: ('ESLURM_INVALID_LICENSES', 'Invalid license specification'),
    2049: ('ESLURM_NEED_RESTART', 'The node configuration changes that were made require restart of the slurmctld daemon to take effect'),
    2050: ('ESLURM_ACCOUNTING_POLICY', "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)"),
    2051: ('ESLURM_INVALID_TIME_LIMIT', 'Requested time limit is invalid (missing or exceeds some limit)'),
    2052: ('ESLURM_RESERVATION_ACCESS', 'Access denied to requested reservation'),
    2053: ('ESLURM_RESERVATION_INVALID', 'Requested reservation is invalid'),
    2054: ('ESLURM_INVALID_TIME_VALUE', 'Invalid time specified'),
    2055: ('ESLURM_RESERVATION_BUSY', 'Requested reservation is in use'),
    2056: ('ESLURM_RESERVATION_NOT_USABLE', 'Requested reservation not usable now'),
    2057: ('ESLURM_INVALID_WCKEY', 'Invalid wckey specification'),
    2058: ('ESLURM_RESERVATION_OVERLAP', 'Requested reservation overlaps with another reservation'),
    2059: ('ESLURM_PORTS_BUSY', 'Required ports are in use'),
    2060: ('ESLURM_PORTS_INVALID', 'Requires more ports than can be reserved'),
    2061: ('ESLURM_PROLOG_RUNNING', 'SlurmctldProlog is still running'),
    2062: ('ESLURM_NO_STEPS', 'Job steps can not be run on this cluster'),
    2063: ('ESLURM_INVALID_BLOCK_STATE', 'Invalid block state specified'),
    2064: ('ESLURM_INVALID_BLOCK_LAYOUT', 'Functionality not available with current block layout mode'),
    2065: ('ESLURM_INVALID_BLOCK_NAME', 'Invalid block name specified'),
    2066: ('ESLURM_INVALID_QOS', 'Invalid qos specification'),
    2067: ('ESLURM_QOS_PREEMPTION_LOOP', 'QOS Preemption loop detected'),
    2068: ('ESLURM_NODE_NOT_AVAIL', 'Required node not available (down, drained or reserved)'),
    2069: ('ESLURM_INVALID_CPU_COUNT', 'CPU count specification invalid'),
    2070: ('ESLURM_PARTITION_NOT_AVAIL', 'Required partition not available (inactive or drain)'),
    2071: ('ESLURM_CIRCULAR_DEPENDENCY', 'Circular job dependency'),
    2072: ('ESLURM_INVALID_GRES', 'Invalid generic resource (gres) specification'),
    2073: ('ESLURM_JOB_NOT_PENDING', 'Job is no longer pending execution'),
    2074: ('ESLURM_QOS_THRES', 'Requested account has breached requested QOS usage threshold'),
    2075: ('ESLURM_PARTITION_IN_USE', 'Partition is in use'),
    2076: ('ESLURM_STEP_LIMIT', 'Step limit reached for this job'),
    2077: ('ESLURM_JOB_SUSPENDED', 'Job is current suspended, requested operation disabled'),
    2078: ('ESLURM_CAN_NOT_START_IMMEDIATELY', 'Job can not start immediately'),
    2079: ('ESLURM_INTERCONNECT_BUSY', 'Switch resources currently not available'),
    2080: ('ESLURM_RESERVATION_EMPTY', 'Reservation request lacks users or accounts'),
    2081: ('ESLURM_INVALID_ARRAY', 'Invalid job array specification'),
    2082: ('ESLURM_RESERVATION_NAME_DUP', 'Duplicate reservation name'),
    2083: ('ESLURM_JOB_STARTED', 'Job has already started'),
    2084: ('ESLURM_JOB_FINISHED', 'Job has already finished'),
    2085: ('ESLURM_JOB_NOT_RUNNING', 'Job is not running'),
    2086: ('ESLURM_JOB_NOT_PENDING_NOR_RUNNING', 'Job is not pending nor running'),
    2087: ('ESLURM_JOB_NOT_SUSPENDED', 'Job is not suspended'),
    2088: ('ESLURM_JOB_NOT_FINISHED', 'Job is not finished'),
    2089: ('ESLURM_TRIGGER_DUP', 'Duplicate event trigger'),
    2090: ('ESLURM_INTERNAL', 'Slurm internal error, contact system administrator'),
    2091: ('ESLURM_INVALID_BURST_BUFFER_CHANGE', 'BurstBufferType change requires restart of slurmctld daemon to take effect'),
    2092: ('ESLURM_BURST_BUFFER_PERMISSION', 'Burst Buffer permission denied'),
    2093: ('ESLURM_BURST_BUFFER_LIMIT', 'Burst Buffer resource limit exceeded'),
    2094: ('ESLURM_INVALID_BURST_BUFFER_REQUEST', 'Burst Buffer request invalid'),
    2095: ('ESLURM_PRIO_RESET_FAIL', 'Changes to job priority are not persistent, change nice instead'),
    2096: ('ESLURM_POWER_NOT_AVAIL', 'Required power not available now'),
    2097: ('ESLURM_POWER_RESERVED', 'Required power at least partially reserved'),
    2098: ('ESLURM_INVALID_POWERCAP', 'Required powercap is not valid, check min/max values'),
    2099: ('ESLURM_INVALID_MCS_LABEL', 'Invalid mcs_label specified'),
    2100: ('ESLURM_BURST_BUFFER_WAIT', 'Waiting for burst buffer'),
    2101: ('ESLURM_PARTITION_DOWN', 'Partition in DOWN state'),
    2102: ('ESLURM_DUPLICATE_GRES', 'Duplicate generic resource (gres) specification'),
    2103: ('ESLURM_JOB_SETTING_DB_INX', 'Job update not available right now, the DB index is being set, try again in a bit'),
    2104: ('ESLURM_RSV_ALREADY_STARTED', 'Reservation already started'),
    2105: ('ESLURM_SUBMISSIONS_DISABLED', 'System submissions disabled'),
    2106: ('ESLURM_NOT_PACK_JOB', 'Job not heterogeneous job'),
    2107: ('ESLURM_NOT_PACK_JOB_LEADER', 'Job not heterogeneous job leader'),
    2108: ('ESLURM_NOT_PACK_WHOLE', 'Operation not permitted on individual component of heterogeneous job'),
    2109: ('ESLURM_CORE_RESERVATION_UPDATE', 'Core-based reservation can not be updated'),
    2110: ('ESLURM_DUPLICATE_STEP_ID', 'Duplicate job step id'),
    2111: ('ESLURM_INVALID_CORE_CNT', 'Core count for reservation node list is not consistent!'),
    2112: ('ESLURM_X11_NOT_AVAIL', 'X11 forwarding not available'),
    2113: ('ESLURM_GROUP_ID_MISSING', 'Invalid group id'),
    2114: ('ESLURM_BATCH_CONSTRAINT', 'Job --batch option is invalid or not a subset of --constraints'),
    2115: ('ESLURM_INVALID_TRES', 'Invalid Trackable RESource (TRES) specification'),
    2116: ('ESLURM_INVALID_TRES_BILLING_WEIGHTS', 'Invalid TRESBillingWeights specification'),
    2117: ('ESLURM_INVALID_JOB_DEFAULTS', 'Invalid JobDefaults specification'),
    2118: ('ESLURM_RESERVATION_MAINT', 'Job can not start due to maintenance reservation.'),
    2119: ('ESLURM_INVALID_GRES_TYPE', 'Invalid GRES specification (with and without type identification)'),
    2120: ('ESLURM_REBOOT_IN_PROGRESS', 'Reboot already in progress'),
    2121: ('ESLURM_MULTI_KNL_CONSTRAINT', 'Multiple KNL NUMA and/or MCDRAM constraints require use of a heterogeneous job'),
    2122: ('ESLURM_UNSUPPORTED_GRES', 'Requested GRES option unsupported by configured SelectType plugin'),
    2123: ('ESLURM_INVALID_NICE', 'Invalid --nice value'),
    2124: ('ESLURM_INVALID_TIME_MIN_LIMIT', "Invalid time-min specification (exceeds job's time or other limits)"),
    4000: ('ESLURMD_PIPE_ERROR_ON_TASK_SPAWN', 'Pipe error on task spawn'),
    4001: ('ESLURMD_KILL_TASK_FAILED', 'Kill task failed'),
    4002: ('ESLURMD_KILL_JOB_ALREADY_COMPLETE', 'Unknown error 4002'),
    4003: ('ESLURMD_INVALID_ACCT_FREQ', 'Invalid accounting frequency requested'),
    4004: ('ESLURMD_INVALID_JOB_CREDENTIAL', 'Invalid job credential'),
    4005: ('ESLURMD_UID_NOT_FOUND', 'User not found on host'),
    4006: ('ESLURMD_GID_NOT_FOUND', 'Group ID not found on host'),
    4007: ('ESLURMD_CREDENTIAL_EXPIRED', 'Job credential expired'),
    4008: ('ESLURMD_CREDENTIAL_REVOKED', 'Job credential revoked'),
    4009: ('ESLURMD_CREDENTIAL_REPLAYED', 'Job credential replayed'),
    4010: ('ESLURMD_CREATE_BATCH_DIR_ERROR', 'Slurmd could not create a batch directory or file'),
    4011: ('ESLURMD_MODIFY_BATCH_DIR_ERROR', 'Slurmd could not chown or chmod a batch directory'),
    4012: ('ESLURMD_CREATE_BATCH_SCRIPT_ERROR', 'Slurmd could not create a batch script'),
    4013: ('ESLURMD_MODIFY_BATCH_SCRIPT_ERROR', 'Slurmd could not chown or chmod a batch script'),
    4014: ('ESLURMD_SETUP_ENVIRONMENT_ERROR', 'Slurmd could not set up environment for batch job'),
    4015: ('ESLURMD_SHARED_MEMORY_ERROR', 'Slurmd shared memory error'),
    4016: ('ESLURMD_SET_UID_OR_GID_ERROR', 'Slurmd could not set UID or GID'),
    4017: ('ESLURMD_SET_SID_ERROR', 'Slurmd could not set session ID'),
    4018: ('ESLURMD_CANNOT_SPAWN_IO_THREAD', 'Slurmd could not spawn I/O thread'),
    4019: ('ESLURMD_FORK_FAILED', 'Slurmd could not fork job'),
    4020: ('ESLURMD_EXECVE_FAILED', 'Slurmd could not execve job'),
    4021: ('ESLURMD_IO_ERROR', 'Slurmd could not connect IO'),
    4022: ('ESLURMD_PROLOG_FAILED', 'Job prolog failed'),
    4023: ('ESLURMD_EPILOG_FAILED', 'Job epilog failed'),
    4024: ('ESLURMD_SESSION_KILLED', 'Session manager killed'),
    4025: ('ESLURMD_TOOMANYSTEPS', 'Too many job steps on node'),
    4026: ('ESLURMD_STEP_EXISTS', 'Job step already exists'),
    4027: ('ESLURMD_JOB_NOTRUNNING', 'Job step not running'),
    4028: ('ESLURMD_STEP_SUSPENDED', 'Job step is suspended'),
    4029: ('ESLURMD_STEP_NOTSUSPENDED', 'Job step is not currently suspended'),
    4030: ('ESLURMD_INVALID_SOCKET_NAME_LEN', 'Unix socket name exceeded maximum length'),
    4100: ('ESCRIPT_CHDIR_FAILED', 'unable to change directory to work directory'),
    4101: ('ESCRIPT_OPEN_OUTPUT_FAILED', 'could not open output file'),
    4102: ('ESCRIPT_NON_ZERO_RETURN', 'Script terminated with non-zero exit code'),
    5000: ('SLURM_PROTOCOL_SOCKET_IMPL_ZERO_RECV_LENGTH', 'Received zero length message'),
    5001: ('SLURM_PROTOCOL_SOCKET_IMPL_NEGATIVE_RECV_LENGTH', 'Received message length < 0'),
    5002: ('SLURM_PROTOCOL_SOCKET_IMPL_NOT_ALL_DATA_SENT', 'Failed to send entire message'),
    5003: ('ESLURM_PROTOCOL_INCOMPLETE_PACKET', 'Header lengths are longer than data received'),
    5004: ('SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT', 'Socket timed out on send/recv operation'),
    5005: ('SLURM_PROTOCOL_SOCKET_ZERO_BYTES_SENT', 'Zero Bytes were transmitted or received'),
    6000: ('ESLURM_AUTH_CRED_INVALID', 'Invalid authentication credential'),
    6001: ('ESLURM_AUTH_FOPEN_ERROR', 'Failed to open authentication public key'),
    6002: ('ESLURM_AUTH_NET_ERROR', 'Failed to connect to authentication agent'),
    6003: ('ESLURM_AUTH_UNABLE_TO_SIGN', 'Unknown error 6003'),
    6004: ('ESLURM_AUTH_BADARG', 'Bad argument to plugin function'),
    6005: ('ESLURM_AUTH_MEMORY', 'Memory management error'),
    6006: ('ESLURM_AUTH_INVALID', 'Authentication credential invalid'),
    6007: ('ESLURM_AUTH_UNPACK', 'Cannot unpack credential'),
    7000: ('ESLURM_DB_CONNECTION', 'Unable to connect to database'),
    7001: ('ESLURM_JOBS_RUNNING_ON_ASSOC', 'Job(s) active, cancel job(s) before remove'),
    7002: ('ESLURM_CLUSTER_DELETED', 'Cluster deleted, commit/rollback immediately'),
    7003: ('ESLURM_ONE_CHANGE', 'Can only change one at a time'),
    7004: ('ESLURM_BAD_NAME', "Unacceptable name given. (No '.' in name allowed)"),
    7005: ('ESLURM_OVER_ALLOCATE', 'You can not allocate more than 100% of a resource'),
    7006: ('ESLURM_RESULT_TOO_LARGE', 'Query result exceeds size limit'),
    7007: ('ESLURM_DB_QUERY_TOO_WIDE', 'Too wide of a date range in query'),
    7100: ('ESLURM_FED_CLUSTER_MAX_CNT', 'Too many clusters in federation'),
    7101: ('ESLURM_FED_CLUSTER_MULTIPLE_ASSIGNMENT', 'Clusters can only be assigned to one federation'),
    7102: ('ESLURM_INVALID_CLUSTER_FEATURE', 'Invalid cluster feature specification'),
    7103: ('ESLURM_JOB_NOT_FEDERATED', 'Not a valid federated job'),
    7104: ('ESLURM_INVALID_CLUSTER_NAME', 'Invalid cluster name'),
    7105: ('ESLURM_FED_JOB_LOCK', 'Job locked by another sibling'),
    7106: ('ESLURM_FED_NO_VALID_CLUSTERS', 'No eligible clusters for federated job'),
    8000: ('ESLURM_MISSING_TIME_LIMIT', 'Time limit specification required, but not provided'),
    8001: ('ESLURM_INVALID_KNL', 'Invalid KNL configuration (MCDRAM or NUMA option)'),
}

#: Header-declared numbers with no row in ``slurm_errtab`` (text comes from libc).
MISSING_FROM_ERRTAB: frozenset[int] = frozenset({4002, 6003})

#: The release whose table :data:`ERRORS` is, and the default of ``release=`` below.
REFERENCE_RELEASE = "19.05"

#: Every name of :data:`ERRORS` as a named number: ``SlurmErrno.ESLURM_DISABLED == 2037``.
SlurmErrno = enum.IntEnum("SlurmErrno", [(name, number) for number, (name, _) in ERRORS.items()])
SlurmErrno.__doc__ = "Slurm 19.05's error numbers by their C names (built from ERRORS)."
SlurmErrno.__module__ = __name__

SLURM_SUCCESS = int(SlurmErrno.SLURM_SUCCESS)
SLURM_ERROR = int(SlurmErrno.SLURM_ERROR)

_UNKNOWN_NEGATIVE = "Unknown negative error number"


def from_wire(value: int) -> int:
    """Reinterpret a 32-bit unsigned wire value as the signed C ``int``.

    ``0xFFFFFFFF`` becomes ``SLURM_ERROR`` (-1); values below ``2**31`` are
    returned unchanged.
    """
    value &= 0xFFFFFFFF
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def _release_key(release: str) -> tuple[int, int]:
    try:
        year, month = release.split(".")
        return int(year), int(month)
    except ValueError:
        raise ValueError(f"release {release!r} is not of the form YY.MM (e.g. '19.05')") from None


def row_of(n: int, release: str = REFERENCE_RELEASE) -> tuple[str, str] | None:
    """``(name, text)`` of ``n`` in ``release``'s table, ``None`` when that release lacks it."""
    row = ERRORS.get(n)
    wanted = _release_key(release)
    for first, changed in CHANGES.get(n, ()):
        if _release_key(first) > wanted:
            break
        row = ERRORS.get(n) if changed == AS_1905 else changed
    return row


def name_of(n: int, release: str = REFERENCE_RELEASE) -> str | None:
    """Symbolic name of error number ``n`` (in ``release``).

    Slurm names come from the table; any other positive number is looked
    up among the host's libc errno names (``ENOENT`` ...).  ``None`` when the
    number has no known name.
    """
    row = row_of(n, release)
    if row is not None:
        return row[0]
    if n > 0:
        import errno as _errno

        return _errno.errorcode.get(n)
    return None


def text_of(n: int, release: str = REFERENCE_RELEASE) -> str:
    """Message text for ``n`` (in ``release``), following ``slurm_strerror()``.

    1. a number present in Slurm's table returns the table's text;
    2. otherwise a positive number is handed to the C library's
       ``strerror()`` (here :func:`os.strerror`), which covers ordinary
       system errno values and produces ``"Unknown error <n>"`` on glibc for
       anything it does not know;
    3. otherwise (zero is always in the table, so this means a negative
       number) the fixed text ``"Unknown negative error number"``.
    """
    row = row_of(n, release)
    if row is not None and not (n in MISSING_FROM_ERRTAB and row == ERRORS[n]):
        return row[1]
    if n > 0:
        return os.strerror(n)
    return _UNKNOWN_NEGATIVE
