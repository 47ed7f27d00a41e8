"""The ``pyslurmrpc`` command: thin over the client, the fake daemons and the decoder."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .. import _argtypes
from ..defaults import CHECKPOINT_VERSION, SLURMCTLD_PORT
from ..errors import PyslurmrpcError
from ..wire.versions import CHECKPOINT_VERSIONS
from ._output import EXIT_INTERRUPTED, error_text, silence

SUBCOMMANDS = {
    "checkpoint": "scontrol-compatible checkpoint OP JOBID[.STEPID] [MaxWait=N] [ImageDir=DIR] [StickToNodes]",
    "ping": "report whether each slurmctld answers (scontrol ping)",
    "decode": "decode raw recordings, hex dumps or pcap/pcapng captures of Slurm traffic",
    "demo": "run every checkpoint operation against an embedded fake controller",
    "fake-slurmctld": "run the fake Slurm 19.05 controller (and slurmd)",
    "bench": "measure codec, MUNGE, latency and throughput",
}
#: subcommands handled by another module's main(argv)
DELEGATED = {
    "decode": ("pyslurmrpc.decode.cli", "main"),
    "fake-slurmctld": ("pyslurmrpc.fake.cli", "main_fake_slurmctld"),
    "bench": ("pyslurmrpc.bench", "main"),
    "demo": ("pyslurmrpc.cli.demo", "main"),
}
#: delegated subcommands with a --json of their own: the global --json turns it on
OWN_JSON = ("decode", "bench")


#: a prefix no command-line word can start with (argv strings hold no NUL): a
#: subcommand's parser then sees every word as an argument and hands them on verbatim
_NO_OPTIONS = "\0"


class _Formatter(argparse.HelpFormatter):
    """Shows the subcommand as optional, ``[COMMAND]``: without one the help is printed."""

    def _format_args(self, action, default_metavar):
        if action.dest == "command":
            return f"[{action.metavar}]"
        return super()._format_args(action, default_metavar)


def _parser() -> argparse.ArgumentParser:
    """Global options, then a subcommand whose words (``-1``, ``--help`` too) are its own."""
    p = argparse.ArgumentParser(prog="pyslurmrpc", description="Slurm's checkpoint RPCs without libslurm.",
                                formatter_class=_Formatter)
    # the client of checkpoint and ping: a delegated subcommand would silently ignore them (_delegate)
    client = p.add_argument_group("options of the client (checkpoint, ping)")
    p.client_actions = [
        client.add_argument("--conf", help="slurm.conf (default: $SLURM_CONF, then /etc/slurm/slurm.conf)"),
        client.add_argument("--controller", metavar="HOST[:PORT]", help="talk to this slurmctld, no slurm.conf needed"),
        client.add_argument("--auth", choices=("munge", "none"), help="authentication (default: slurm.conf's, else munge)"),
        client.add_argument("--munge-socket", help="munged's socket"),
        client.add_argument("--protocol", type=_argtypes.release, metavar="RELEASE",
                            help=f"the controller's release, if known: checkpoint speaks it "
                                 f"({', '.join(CHECKPOINT_VERSIONS)}; default {CHECKPOINT_VERSION}), "
                                 f"ping tries it first (no refused requests in a newer controller's log)"),
        client.add_argument("--timeout", type=_argtypes.seconds(), metavar="SECONDS",
                            help="seconds above 0 (at most 65535), replaces MessageTimeout "
                                 "(default: slurm.conf's, else 10)"),
    ]
    p.add_argument("--json", action="store_true", help="one JSON object per result")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log every RPC, credentials redacted")
    commands = p.add_subparsers(dest="command", metavar="COMMAND",
                                help="; ".join(f"{k}: {v}" for k, v in SUBCOMMANDS.items()))
    for name in SUBCOMMANDS:
        sub = commands.add_parser(name, add_help=False, prefix_chars=_NO_OPTIONS)
        sub.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(args=[])
    return p


def make_client(opts):
    """A Client from the global options: --controller, else slurm.conf."""
    from ..client import Client, validate

    extra = {k: v for k, v in (("auth", opts.auth), ("munge_socket", opts.munge_socket),
                               ("protocol_version", opts.protocol), ("timeout", opts.timeout))
             if v is not None}
    validate.socket_path(opts.munge_socket, "--munge-socket")   # named as the option, not the keyword
    if opts.controller is not None:   # "" too: named as a bad address, not taken as "no --controller"
        host, port = validate.controller_address(opts.controller, SLURMCTLD_PORT, "--controller")
        extra.setdefault("auth", "munge")
        return Client(host, port, **extra)
    return Client.from_slurm_conf(opts.conf, **extra)


def _emit(opts, lines_out, lines_err, records) -> None:
    if opts.json:
        for record in records:
            print(json.dumps(record, sort_keys=True))
    else:
        for line in lines_out:
            print(line)
    for line in lines_err:
        print(line, file=sys.stderr)


def _checkpoint(opts) -> int:
    from .scontrol import checkpoint

    if opts.args[:1] in (["-h"], ["--help"]):
        print(f"usage: pyslurmrpc checkpoint {SUBCOMMANDS['checkpoint'].split(' ', 2)[2]}\n"
              "operations: able, disable, enable, create, vacate, requeue, restart, error\n"
              "A bare JOBID means all steps (NO_VAL), as with scontrol.")
        return 0
    out = checkpoint(lambda: make_client(opts), opts.args)
    _emit(opts, out.stdout, out.stderr, [out.record])
    return out.exit_code


def _ping(opts) -> int:
    from .ping import ping_all

    if opts.args[:1] in (["-h"], ["--help"]):
        print("usage: pyslurmrpc ping\nOne line per controller: Slurmctld(primary) at HOST is UP|DOWN")
        return 0
    if opts.args:   # scontrol.c _process_command: said, and the controllers still pinged
        print("too many arguments for keyword:ping", file=sys.stderr)
    try:
        client = make_client(opts)
    except PyslurmrpcError as exc:  # no slurm.conf, a bad --controller: no controller to report on
        _emit(opts, [], [f"pyslurmrpc: {exc}"], [{"error": str(exc), "up": False}])
        return 1
    lines, records, _, errors = ping_all(client, with_version=opts.json)
    _emit(opts, lines, errors, records)
    # scontrol 22.05+ (scontrol.c _ping_slurmctld) exits 1 when no controller answered;
    # 19.05's always exited 0.  A script needs to tell them apart: the newer rule.
    return 1 if opts.args or not any(r["up"] for r in records) else 0


def main(argv=None) -> int:
    """Entry point of ``pyslurmrpc`` and ``python -m pyslurmrpc``."""
    opts = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    handler = _verbose(opts.verbose)
    try:
        code = _dispatch(opts)
        sys.stdout.flush()       # output that cannot be written fails here, not at the interpreter's exit
        return code
    except KeyboardInterrupt:    # Ctrl-C: stop as scontrol does (killed by SIGINT), no traceback
        return EXIT_INTERRUPTED
    except BrokenPipeError:      # the reader went away (piped into head): what it read stands
        silence(sys.stdout)
        return 1
    except OSError as exc:       # e.g. a full disk under the output; the calls' own errors are named earlier
        silence(sys.stdout)
        print(f"pyslurmrpc: {error_text(exc)}", file=sys.stderr)
        return 1
    finally:
        if handler:
            logging.getLogger("pyslurmrpc").removeHandler(handler)


def _verbose(level: int):
    if not level:
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger("pyslurmrpc")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler


def _dispatch(opts) -> int:
    if opts.command is None:
        _parser().print_help()
        return 2
    if opts.command in DELEGATED:
        return _delegate(opts)
    if opts.conf is not None and opts.controller is not None:   # the file was silently dropped
        _parser().error("--conf and --controller: give one (--controller talks to HOST[:PORT] without "
                        "a slurm.conf; --conf takes the controllers and every other setting from the file)")
    try:
        return {"checkpoint": _checkpoint, "ping": _ping}[opts.command](opts)
    except PyslurmrpcError as exc:
        print(f"pyslurmrpc: {exc}", file=sys.stderr)
        return 1


def _delegate(opts) -> int:
    """Run a subcommand that parses its own words; a global --json must not be dropped unsaid."""
    import importlib

    parser = _parser()
    if opts.json and opts.command not in OWN_JSON:
        parser.error(f"--json: {opts.command} has no JSON output")
    for action in parser.client_actions:   # they shape a client these commands do not make
        if getattr(opts, action.dest) is not None:
            parser.error(f"{action.option_strings[0]} is not an option of {opts.command}: its own options "
                         f"go after it (pyslurmrpc {opts.command} --help)")
    module, func = DELEGATED[opts.command]
    try:
        return getattr(importlib.import_module(module), func)(["--json"] * opts.json + opts.args) or 0
    except PyslurmrpcError as exc:  # a library error the subcommand did not word itself
        print(f"pyslurmrpc {opts.command}: {exc}", file=sys.stderr)
        return 1
