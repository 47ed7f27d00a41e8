"""``scontrol ping`` of Slurm 19.05: one line per controller (src/scontrol/scontrol.c _print_ping)."""

from __future__ import annotations

import logging
import os
import socket

from ..errors import NoVersionAnsweredError, PyslurmrpcError
from .scontrol import local_munge_hint

log = logging.getLogger("pyslurmrpc.cli")

BANNER = ("*****************************************",
          "** RESTORE SLURMCTLD DAEMON TO SERVICE **",
          "*****************************************")


def mode_name(index: int, count: int) -> str:
    """primary; 'backup' when there are exactly two controllers; backup1, backup2... otherwise."""
    if index == 0:
        return "primary"
    return "backup" if count == 2 else f"backup{index}"


def display_name(name: str) -> str:
    """read_config.c shows 'localhost' as this machine's short host name."""
    return socket.gethostname().split(".")[0] if name.lower() == "localhost" else name


def _version_and_up(client, index: int) -> tuple:
    """(release, True); (None, the ping's answer) when the controller answered but its release
    was not told (a probe of detection's round lost): plain ping says UP then too."""
    try:
        return client.controller_version(index), True
    except NoVersionAnsweredError as exc:
        if not exc.answered:
            raise
        log.debug("no release for controller %d: %s", index, exc)
        return None, client.ping(index) is True


def ping_all(client, with_version: bool = False) -> tuple[list[str], list[dict], bool, list[str]]:
    """Ping each controller once, no failover; returns (lines, records, all_up, error lines).
    The error lines are what libslurm logs on stderr when this host's munged could not mint
    the credential: DOWN alone blames the controller.

    ``with_version``: each record gets the controller's release, found by
    ``controller_version(i)`` (its answer is the ping: the release is asked afresh, which
    costs more requests than a ping on a cached version, so only the JSON output asks)."""
    controllers = client.settings.controllers
    lines, records, all_up, errors = [], [], True, []
    for i, ctl in enumerate(controllers):
        record = {"controller": ctl.name, "host": ctl.host, "port": ctl.port,
                  "mode": mode_name(i, len(controllers))}
        try:
            if with_version:
                record["version"], up = _version_and_up(client, i)
            else:
                up = client.ping(i) is True
        except PyslurmrpcError as exc:
            up = False
            record["error"] = str(exc)
            hint = local_munge_hint(exc)
            if hint:
                errors.append(hint)
            log.debug("Slurmctld(%s) is DOWN: %s", record["mode"], exc)   # -v: why, as --json's "error" says
        record["up"] = up
        all_up &= up
        lines.append(f"Slurmctld({record['mode']}) at {display_name(ctl.name)} is {'UP' if up else 'DOWN'}")
        records.append(record)
    if not all_up and os.getuid() == 0:
        lines.extend(BANNER)
    return lines, records, all_up, errors
