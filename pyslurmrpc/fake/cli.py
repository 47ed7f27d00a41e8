"""``pyslurmrpc fake-slurmctld``: run the fake daemons from the command line.

    pyslurmrpc fake-slurmctld --cluster cluster.toml --port 0 [--auth none|munge]
        [--munge-socket P] [--plugin ompi|none|simulated] [--slurmd] [--replay DIR]

Prints ``listening on HOST:PORT`` (and one ``slurmd NODE listening on
HOST:PORT`` line per fake slurmd), then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Optional

from pyslurmrpc import _argtypes, defaults
from pyslurmrpc.auth.slurm_auth import AsyncMungeAuth, NoneAuth
from pyslurmrpc.cli._output import error_text
from pyslurmrpc.client.validate import address_text
from pyslurmrpc.errors import ConfigError, PyslurmrpcError

from .clock import SettableClock, system_clock
from .cluster import Cluster, fixture_cluster
from .daemons import PLUGINS, FakeSlurmctld, FakeSlurmd
from .replay import Recordings, ReplayDaemon


def build_parser() -> argparse.ArgumentParser:
    """The option parser (the lead's CLI can embed it as a sub-command)."""
    p = argparse.ArgumentParser(
        prog="pyslurmrpc fake-slurmctld",
        description="Fake Slurm 19.05 slurmctld (and slurmd) for checkpoint RPCs. Prints 'listening on "
                    "HOST:PORT' (and one line per fake slurmd), then serves until interrupted.",
        epilog="Without --cluster the jobs are those of the recordings in fixtures/: jobs 2 and 5 running "
               "(batch step and step 0), 3 cancelled, 4 pending, all owned by the user running the fake, "
               "who is also its SlurmUser.")
    p.add_argument("--cluster", metavar="TOML",
                   help="cluster description (jobs, owners, nodes; see Cluster.from_toml) "
                        "(default: the recordings' cluster, owned by the user running the fake)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=_argtypes.port(0), default=0,
                   help="TCP port; 0 picks a free one and prints it (default: 0; slurmctld's own is "
                        f"{defaults.SLURMCTLD_PORT})")
    p.add_argument("--auth", choices=("none", "munge"), default="none",
                   help="authentication the fake demands (default: none)")
    p.add_argument("--munge-socket", metavar="PATH", help="munged socket for --auth munge (default: libmunge's)")
    p.add_argument("--plugin", choices=sorted(PLUGINS), default="ompi",
                   help="CheckpointType the fake runs (default: ompi)")
    p.add_argument("--slurmd", action="store_true",
                   help="also run a fake slurmd for each node of the cluster (default: no)")
    p.add_argument("--message-timeout", type=_argtypes.seconds(), metavar="SECONDS", default=float(defaults.MESSAGE_TIMEOUT),
                   help=f"MessageTimeout of the fake, seconds (default: {defaults.MESSAGE_TIMEOUT})")
    p.add_argument("--clock", type=_argtypes.whole(0), metavar="SECONDS",
                   help="fixed clock (UNIX seconds) instead of the wall clock (default: the wall clock)")
    p.add_argument("--no-srun-completion", action="store_true",
                   help="ompi: do not model srun's completion after create/vacate")
    p.add_argument("--srun-pid", default="14906", metavar="TEXT",
                   help="ompi: error_msg of srun's completion (default: 14906)")
    p.add_argument("--replay", metavar="DIR", help="answer from recordings instead of the rules")
    return p


def _auth(args, uid: int):
    if args.auth == "munge":
        return AsyncMungeAuth(args.munge_socket)
    return NoneAuth(uid=uid, gid=0)


def _recordings(directory: str) -> Recordings:
    """--replay's recordings; a directory that is missing or holds none is the user's mistake."""
    if not os.path.isdir(directory):
        raise ConfigError("--replay: not a directory", path=directory)
    recordings = Recordings.load(directory)
    if not recordings.recordings:
        raise ConfigError("--replay: no recordings (NAME.request.bin with NAME.response.bin) to answer from",
                          path=directory)
    return recordings


def build_daemons(args, cluster: Cluster) -> tuple[object, list[FakeSlurmd]]:
    """The slurmctld (or replay daemon) and the slurmds the options ask for."""
    common = dict(auth=_auth(args, cluster.slurm_user), host=args.host,
                  message_timeout=args.message_timeout)
    if args.replay:
        ctld = ReplayDaemon(_recordings(args.replay), resign=True, port=args.port, **common)
    else:
        clock = SettableClock(args.clock) if args.clock is not None else system_clock
        ctld = FakeSlurmctld(cluster, plugin=args.plugin, clock=clock, port=args.port,
                             srun_completes=not args.no_srun_completion, srun_pid=args.srun_pid, **common)
    slurmds = []
    if args.slurmd:
        nodes = dict(cluster.node_addrs) or {"localhost": (args.host, 0)}
        for node, (host, port) in nodes.items():
            slurmds.append(FakeSlurmd(cluster, node, plugin=args.plugin, port=port,
                                      **{**common, "host": host}))
    return ctld, slurmds


async def serve(args, out=sys.stdout) -> None:
    """Start everything, print the addresses, serve until SIGINT/SIGTERM."""
    cluster = Cluster.from_toml(args.cluster) if args.cluster else fixture_cluster()
    ctld, slurmds = build_daemons(args, cluster)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    await ctld.start()
    try:
        for d in slurmds:
            await d.start()
        print(f"listening on {address_text(ctld.host, ctld.port)}", file=out, flush=True)
        for d in slurmds:
            print(f"slurmd {d.node} listening on {address_text(d.host, d.port)}", file=out, flush=True)
        await stop.wait()
    finally:
        for d in [ctld, *slurmds]:
            await d.stop()


def main_fake_slurmctld(argv: Optional[list[str]] = None) -> int:
    """Entry point of ``pyslurmrpc fake-slurmctld``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    except (PyslurmrpcError, OSError) as exc:  # a bad --cluster file, a port in use: one line, no traceback
        print(f"pyslurmrpc fake-slurmctld: {error_text(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # python -m pyslurmrpc.fake.cli
    sys.exit(main_fake_slurmctld())
