"""slurm.conf defaults: the values Slurm uses when a key is not set.

One place for them; the client (settings, slurm.conf reader) and the fake
(cluster model, servers, their CLI) all read these names.  Sources:
src/common/read_config.h ``DEFAULT_*`` (applied in read_config.c
``_validate_and_set_defaults``) and the ports configure.ac passes to
``X_AC_SLURM_PORTS`` (auxdir/slurm.m4 ``SLURMCTLD_PORT``, ``SLURMD_PORT``).
Timeouts are in seconds, as slurm.conf writes them.
"""

from __future__ import annotations

#: SlurmctldPort (configure.ac X_AC_SLURM_PORTS, first argument)
SLURMCTLD_PORT = 6817
#: SlurmdPort (configure.ac X_AC_SLURM_PORTS, second argument)
SLURMD_PORT = 6818
#: ports a SlurmctldPort range spans when it names one port (SLURMCTLD_PORT_COUNT)
SLURMCTLD_PORT_COUNT = 1
#: MessageTimeout (read_config.h DEFAULT_MSG_TIMEOUT)
MESSAGE_TIMEOUT = 10
#: TCPTimeout: how long a connect may take (read_config.h DEFAULT_TCP_TIMEOUT)
TCP_TIMEOUT = 2
#: SlurmctldTimeout (read_config.h DEFAULT_SLURMCTLD_TIMEOUT)
SLURMCTLD_TIMEOUT = 120
#: TreeWidth (read_config.h DEFAULT_TREE_WIDTH) in the checkpoint releases 17.11-19.05;
#: it stays 50 through 23.02 and is 16 from 23.11 on.  read_config.c also uses it
#: for ``TreeWidth=0``.
TREE_WIDTH = 50
#: the checkpoint calls' protocol version when the caller names none: 19.05, the last release
#: with them (src/common/slurm_protocol_defs.h up to slurm-19-05-8-1)
CHECKPOINT_VERSION = "19.05"
#: AuthType (read_config.h DEFAULT_AUTH_TYPE)
AUTH_TYPE = "auth/munge"
#: SlurmUser (read_config.c _validate_and_set_defaults)
SLURM_USER = "root"
#: where a client looks for slurm.conf when neither a path nor $SLURM_CONF is given
#: (configure's sysconfdir as Debian and most packages set it)
SLURM_CONF_PATHS = ("/etc/slurm/slurm.conf",)

#: the same defaults keyed as slurm.conf spells the keys (lower case), as its reader wants them
BY_KEY = {
    "slurmctldport": str(SLURMCTLD_PORT), "slurmdport": str(SLURMD_PORT),
    "messagetimeout": str(MESSAGE_TIMEOUT), "tcptimeout": str(TCP_TIMEOUT),
    "slurmctldtimeout": str(SLURMCTLD_TIMEOUT), "treewidth": str(TREE_WIDTH),
    "authtype": AUTH_TYPE, "slurmuser": SLURM_USER,
}
