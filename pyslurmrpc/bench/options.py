"""``pyslurmrpc bench``'s options: the parser, and the checks said before anything runs.

An option that changes only parts this run does not measure, or that only means something
beside another option, is a usage error (exit 2), never a run that quietly ignores it.
"""

from __future__ import annotations

import argparse
import os

from .. import _argtypes, defaults
from ..client.calls import U32
from ..client.validate import TREE_WIDTH_MAX, TREE_WIDTH_MIN, address_text, controller_address
from ..errors import InvalidArgumentError
from ..fake.farm import MAX_NODES
from . import rpc, versus
from .fanout import DEFAULT_NODES

PARTS = ("versus", "codec", "munge", "rpc", "fanout")
DEFAULT_PARTS = ("versus", "codec", "munge", "rpc")
#: calls per measurement when -n is not given
CALLS = 2000
#: the options that change only some parts: option -> (flag, the parts it changes)
PART_OPTIONS = {
    "controller": ("--controller", {"versus", "rpc"}), "job": ("--job", {"versus", "rpc"}),
    "auth": ("--auth", {"rpc"}), "munge_socket": ("--munge-socket", {"munge", "versus", "rpc"}),
    "n": ("-n", {"codec", "munge", "versus", "rpc"}), "seconds": ("--seconds", {"versus"}),
    "libslurm": ("--libslurm", {"versus"}), "libslurm_loader": ("--libslurm-loader", {"versus"}),
    "release": ("--release", {"versus"}), "slurm_conf": ("--slurm-conf", {"versus"}),
    "nodes": ("--nodes", {"fanout"}), "tree_width": ("--tree-width", {"fanout"}),
}
#: options that mean something only with --controller (the harness's controller has its own
#: slurm.conf; versus pings it, and the fake of rpc has its own job)
WITH_CONTROLLER = {"job": "--job", "slurm_conf": "--slurm-conf"}
#: what an option not given stands for
DEFAULTS = {"job": rpc.BENCH_JOB, "auth": "both", "n": CALLS, "seconds": versus.BURST_SECONDS,
            "tree_width": defaults.TREE_WIDTH}
#: a throughput level shorter than this counts too few calls to mean anything
MIN_BURST_SECONDS = 0.1


def parser() -> argparse.ArgumentParser:
    from . import __doc__ as doc

    p = argparse.ArgumentParser(prog="pyslurmrpc bench", description=doc.splitlines()[0])
    p.add_argument("--controller", metavar="HOST:PORT", help="measure against this slurmctld (default: versus starts the test harness's real slurmctld, rpc a fake)")
    p.add_argument("--job", type=_argtypes.whole(0, U32),
                   help=f"job id to ask about (with --controller; default: {rpc.BENCH_JOB})")
    p.add_argument("--auth", choices=("none", "munge", "both"),
                   help="rpc: authentication of the round trips (default: both)")
    p.add_argument("--munge-socket", help="an existing munged socket (default: start a throw-away munged)")
    p.add_argument("-n", type=_argtypes.whole(1), help=f"calls per measurement (default: {CALLS})")
    p.add_argument("--only", choices=PARTS, action="append", help="run only these parts (versus also runs codec and munge: its table "
                        "takes their figures; fanout: only when named)")
    p.add_argument("--seconds", type=_argtypes.seconds(None, MIN_BURST_SECONDS),
                   help=f"versus: seconds per throughput level (default: {versus.BURST_SECONDS:g})")
    p.add_argument("--libslurm", metavar="PATH", help="versus: the libslurm to compare with (default: found here)")
    p.add_argument("--libslurm-loader", metavar="LD_SO", help="versus: run --libslurm under this dynamic loader "
                   "(a libslurm built against a newer C library than this machine's)")
    p.add_argument("--release", metavar="NAME", help="versus: start that release's slurmctld (unpacked by "
                   "pyslurmrpc.testing.releases, e.g. 26.05) and compare with its own libslurm")
    p.add_argument("--slurm-conf", metavar="PATH", help="versus: slurm.conf for libslurm with --controller "
                   "(default: a minimal one naming the controller and the munge socket)")
    p.add_argument("--nodes", type=_argtypes.whole(1, MAX_NODES), action="append",
                   help=f"fanout: fake slurmds (repeatable, each count once; default {DEFAULT_NODES})")
    p.add_argument("--tree-width", type=_argtypes.whole(TREE_WIDTH_MIN, TREE_WIDTH_MAX),
                   help=f"fanout: TreeWidth (default: {defaults.TREE_WIDTH})")
    p.add_argument("--json", action="store_true", help="print the report as JSON (default: a table)")
    return p


def parts(opts) -> set[str]:
    """The parts this run measures."""
    return set(opts.only or DEFAULT_PARTS)


def uses_munge(opts) -> bool:
    """Whether a part of this run talks to munged (rpc with --auth none alone does not)."""
    run = parts(opts)
    return bool(run & {"munge", "versus"}) or ("rpc" in run and opts.auth != "none")


def check(p: argparse.ArgumentParser, opts) -> None:
    """Usage errors, said before anything runs; then the defaults of the options not given."""
    _check_parts(p, opts)
    for dest, value in DEFAULTS.items():
        if getattr(opts, dest) is None:
            setattr(opts, dest, value)
    _check_controller(p, opts)
    _check_libslurm(p, opts)
    if opts.nodes and len(set(opts.nodes)) != len(opts.nodes):
        p.error(f"--nodes: give each node count once, not {', '.join(map(str, opts.nodes))}")


def _check_parts(p, opts) -> None:
    run = parts(opts)
    which = (f"--only {' --only '.join(sorted(run))}" if opts.only else
             f"the default parts, {', '.join(DEFAULT_PARTS)}; fanout runs only with --only fanout")
    for dest, (flag, used_by) in PART_OPTIONS.items():
        if getattr(opts, dest) is not None and not run & used_by:
            p.error(f"{flag} changes only {' and '.join(sorted(used_by))}, which this run does not measure ({which})")
    if opts.controller is None:
        for dest, flag in WITH_CONTROLLER.items():
            if getattr(opts, dest) is not None:
                p.error(f"{flag} is for --controller's slurmctld: give --controller too")
    if opts.munge_socket is not None and not uses_munge(opts):
        p.error("--munge-socket: this run uses no munged (--auth none)")


def _check_controller(p, opts) -> None:
    if opts.controller is not None:  # a mistake here is the user's: said at once, not after the other parts
        try:
            host, port = controller_address(opts.controller, defaults.SLURMCTLD_PORT)
        except InvalidArgumentError as err:
            p.error(f"--controller: {err}")
        opts.controller, opts.controller_at = address_text(host, port), (host, port)
    if opts.release is not None and opts.controller:
        p.error("--release starts its own slurmctld: give it or --controller, not both")
    if opts.release is not None:
        from ..testing.releases import unknown_releases

        unknown = unknown_releases([opts.release]) if opts.release else "name a release"
        if unknown:
            p.error(f"--release: {unknown}")


def _check_libslurm(p, opts) -> None:
    if opts.libslurm_loader and not opts.libslurm:
        p.error("--libslurm-loader: name the libslurm it runs with --libslurm")
    for flag, path in (("--libslurm", opts.libslurm), ("--libslurm-loader", opts.libslurm_loader),
                       ("--slurm-conf", opts.slurm_conf)):
        # a bare library name (libslurm.so.38) is the dynamic loader's to find
        bare = flag == "--libslurm" and path is not None and "/" not in path
        if path is not None and not bare and not os.path.isfile(path):
            p.error(f"{flag}: {path!r} is not a file")
