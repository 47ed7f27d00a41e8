"""``pyslurmrpc bench``: codec, MUNGE, round trips and throughput, beside libslurm and libmunge.

Prints a table (or ``--json``); asserts nothing.  Parts: ``versus`` (pyslurmrpc and
libslurm/libmunge against the same real controller in the same run: the real
slurmctld of the test harness, or ``--controller``), ``codec``, ``munge``, ``rpc``
(the fake slurmctld and a pre-signed stub) and ``fanout`` (checkpoint_tasks through
the fake slurmds' forwarding tree).  A throw-away munged is started when no
``--munge-socket`` is given and Debian's munged is installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import sys

from ..cli._output import EXIT_TERMINATED, error_text
from ..errors import PyslurmrpcError, SlurmError, UnreachableError
from ..slurm_errno import SlurmErrno
from . import codec, munge, options, rpc, versus
from .children import Terminated, sigterm_raises

#: how long the bench waits for --controller's TCP answer before it measures anything
CONNECT_CHECK_SECONDS = 5.0
_parser = options.parser      # (the tests read its help)


@contextlib.contextmanager
def _munged(socket_path, needed: bool):
    """(the munged socket, its key file or None, why there is none): the one given, else a
    throw-away munged when a part needs one, else (None, None, why)."""
    if socket_path or not needed:
        yield socket_path, None, None
        return
    from ..testing.munged import MungedHarness, MungedNotFound, MungedStartError

    try:
        harness = MungedHarness().start()
    except (MungedNotFound, MungedStartError) as err:   # the parts that need none are still measured
        yield None, None, f"no munged: give --munge-socket or install munge ({str(err).splitlines()[0]})"
        return
    with harness:
        yield harness.socket_path, harness.key_file, None


def _rpc(opts, socket_path, no_munged: str | None = None) -> list[dict]:
    auths = ["none", "munge"] if opts.auth == "both" else [opts.auth]
    results = []
    for auth in auths:
        if auth == "munge" and not socket_path:
            results.append({"server": opts.controller or "fake slurmctld", "auth": auth, "skipped": no_munged})
            continue
        sock = socket_path if auth == "munge" else None
        if opts.controller:
            results.append(_rpc_against(opts, auth, sock))
            continue
        with rpc.fake_controller(auth, sock) as (host, port):
            results.append({"server": "fake slurmctld", **rpc.run(host, port, auth, sock, opts.n)})
        with rpc.stub_controller(sock, rpc.calls_needed(opts.n)) as (host, port):
            results.append({"server": "pre-signed stub", **rpc.run(host, port, auth, sock, opts.n)})
    return results


def _rpc_against(opts, auth: str, sock) -> dict:
    """The rpc part against --controller with one auth; a failure is that row's result (the
    other parts and auths are kept: a controller that refuses auth/none is common)."""
    host, port = opts.controller_at
    try:
        return {"server": opts.controller, **rpc.run(host, port, auth, sock, opts.n, opts.job)}
    except PyslurmrpcError as err:
        return {"server": opts.controller, "auth": auth, "skipped": _why(err, opts)}


def _why(err: Exception, opts) -> str:
    """A part's reason for not being measured; a Slurm error answered about the job names the
    job (1 unless --job said otherwise: the error's text alone did not say which)."""
    why = f"{type(err).__name__}: {err}"
    if isinstance(err, SlurmError) and err.errno in _ABOUT_THE_JOB:
        why += f" (asking about job {opts.job}; --job names another)"
    return why


#: the answers about the job asked about (checkpoint_able's): the job id is worth naming then
_ABOUT_THE_JOB = {SlurmErrno.ESLURM_INVALID_JOB_ID, SlurmErrno.ESLURM_ALREADY_DONE}


def measure(opts) -> dict:
    parts = options.parts(opts)
    report = {"python": platform.python_version(), "machine": platform.machine(),
              "cpu_count": os.cpu_count(), "platform": platform.platform()}
    if "fanout" in parts:
        from . import fanout
        report["fanout"] = fanout.run(opts.nodes or [fanout.DEFAULT_NODES], opts.tree_width)
    with _munged(opts.munge_socket, options.uses_munge(opts)) as (socket_path, key_file, no_munged):
        if ("codec" in parts or "versus" in parts):
            report["codec"] = codec.run(max(opts.n * 5, 1000))
        if "munge" in parts and not socket_path:
            report["munge"] = {"skipped": no_munged}
        elif ("munge" in parts or "versus" in parts) and socket_path:
            report["munge"] = munge.run(socket_path, key_file, opts.n)
            report["munge_ratios"] = munge.ratios(report["munge"])
        if "versus" in parts:
            report["versus"] = _versus(opts, socket_path, report) if socket_path else {"skipped": no_munged}
        if "rpc" in parts:
            report["rpc"] = _rpc(opts, socket_path, no_munged)
    return report


def _versus(opts, socket_path, report) -> dict:
    try:
        result = versus.run(opts, socket_path)
    except Exception as err:  # no slurmctld here, or the controller refused: say so, measure the rest
        return {"skipped": _why(err, opts)}
    result["figures"] = versus.figures(result["pyslurmrpc"], result["libslurm"], report.get("munge", []),
                                       report.get("codec", []), result["floor"])
    return result


def render(report: dict) -> list[str]:
    lines = [f"pyslurmrpc bench (CPython {report['python']}, {report['machine']})"]
    if "codec" in report:
        lines += ["", "codec, µs per message (compiled fast path; interpreted checker for comparison)",
                  f"  {'message':<26}{'bytes':>6}{'decode':>9}{'encode':>9}{'both':>9}{'interp.':>9}"]
        lines += [f"  {r['message']:<26}{r['bytes']:>6}{r['decode_us']:>9.1f}{r['encode_us']:>9.1f}"
                  f"{r['decode_plus_encode_us']:>9.1f}{r['interpreted_parse_us']:>9.1f}" for r in report["codec"]]
    if "skipped" in report.get("munge", ()):
        lines += ["", f"MUNGE: not measured ({report['munge']['skipped']})"]
    elif "munge" in report:
        lines += ["", "MUNGE, ms per credential"]
        lines += [f"  {r['label']:<40}{r['us'] / 1000:>8.4f}" for r in report["munge"]]
        for op, ratio in report.get("munge_ratios", {}).items():
            lines.append(f"  pure-Python / libmunge {op}: {ratio:.2f}x")
    lines += _render_versus(report.get("versus"))
    lines += _render_fanout(report.get("fanout"))
    for r in report.get("rpc", []):
        if "skipped" in r:
            lines += ["", f"round trips, auth={r['auth']}, server: {r['server']}: not measured ({r['skipped']})"]
            continue
        seq = r["sequential_ms"]
        lines += ["", f"round trips, {r['op']}, auth={r['auth']}, server: {r['server']}",
                  f"  sequential: p50 {seq['p50']:.3f} ms  p90 {seq['p90']:.3f} ms  p99 {seq['p99']:.3f} ms"
                  f"  ({seq['calls_per_s']} calls/s)",
                  "  asyncio calls/s by calls in flight: "
                  + "  ".join(f"{k}: {v}" for k, v in r["async_calls_per_s"].items())]
    return lines


def _render_versus(v) -> list[str]:
    if not v:
        return []
    if "skipped" in v:
        return ["", f"pyslurmrpc vs libslurm: not measured ({v['skipped']})"]
    c = v["libslurm"]
    lines = ["", f"pyslurmrpc vs libslurm/libmunge, {v['op']}, {v['target']}, same run",
             f"  libslurm: {c['path']}" + (f" (under {c['loader']})" if c.get("loader") else "")
             if c.get("loaded") else f"  libslurm: not measured ({c['why_not']})",
             f"  {'figure':<24}{'unit':>8}{'pyslurmrpc':>12}{'C':>12}{'ratio':>9}{'floor':>10}{'floor/C':>9}  "
             f"{'goal':<10}{'met':<5}floor met"]
    for f in v["figures"]:
        met, floor_met = (_YES_NO[f.get(key)] for key in ("met", "floor_met"))
        lines.append(f"  {f['figure']:<24}{f['unit']:>8}{f['pyslurmrpc']:>12g}{_value(f['c']):>12}"
                     f"{_times(f['ratio']):>9}{_value(f.get('floor')):>10}{_times(f.get('floor_ratio')):>9}  "
                     f"{f['goal']:<10}{met:<5}{floor_met}")
    lines += ["  floor: the least Python making the same system calls (pyslurmrpc/bench/floor.py);",
              "  a goal even the floor misses is out of a Python client's reach on this machine"]
    py = v["pyslurmrpc"]
    tails = [("pyslurmrpc", py), (f"with premint={py['premint'].get('depth', '?')}", py["premint"])]
    if c.get("loaded"):
        tails.append(("libslurm", c))
    lines.append("  sequential p99, ms: " + "  ".join(f"{name} {side['sequential_ms']['p99']:.3f}"
                                                     for name, side in tails))
    lines.append("  asyncio calls/s by calls in flight (one process): "
                 + "  ".join(f"{k}: {n}" for k, n in py["async_calls_per_s"].items()))
    lines.append(f"  asyncio calls/s by processes ({py['async_in_flight_per_process']} in flight each): "
                 + "  ".join(f"{k}: {n}" for k, n in py["async_calls_per_s_by_processes"].items()))
    if c.get("loaded"):
        lines.append("  libslurm calls/s by processes: "
                     + "  ".join(f"{k}: {n}" for k, n in c["calls_per_s_by_processes"].items()))
    return lines


_YES_NO = {True: "yes", False: "no", None: "-"}


def _value(figure) -> str:
    return "-" if figure is None else f"{figure:g}"


def _times(ratio) -> str:
    return "-" if ratio is None else f"{ratio:.3f}x"   # 1.10x could be 1.104x: not met


def _render_fanout(rows) -> list[str]:
    if not rows:
        return []
    lines = ["", "fan-out: checkpoint_tasks through the fake slurmds' forwarding tree (one process)"]
    for r in rows:
        lines.append(f"  {r['nodes']:>6} nodes, TreeWidth {r['tree_width']}: {r['seconds']:.3f} s"
                     f"  (CPU s: client {r['cpu_s_client']:.3f}, fake {r['cpu_s_farm']:.3f}; {r['ok']} ok, "
                     f"{r['errors']} per-node errors, peak fds {r['peak_fds']})")
    for row in rows:
        for k, v in (row.get("ratios") or {}).items():
            lines.append(f"  {k}: {'-' if v is None else format(v, '.2f')}")
    return lines


def main(argv=None) -> int:
    p = options.parser()
    opts = p.parse_args(argv)
    options.check(p, opts)
    try:
        with sigterm_raises():
            _reachable(opts)
            report = measure(opts)
    except PyslurmrpcError as err:  # e.g. --controller does not answer: said as before, and as JSON
        print(f"pyslurmrpc bench: {err}", file=sys.stderr)
        if opts.json:
            print(json.dumps({"error": str(err)}, indent=2))
        return 1
    except Terminated:              # the harness's daemons and the children are stopped: now
        signal.raise_signal(signal.SIGTERM)      # the caller's own handler, or SIGTERM's end
        return EXIT_TERMINATED
    if opts.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(render(report)))
    sys.stdout.flush()
    why = _not_measured(report, opts)
    if why:
        print(f"pyslurmrpc bench: {why}", file=sys.stderr)
        return 1
    return 0


def _reachable(opts) -> None:
    """Refuse at once what would fail every part after its own timeout: a --controller that
    takes no TCP connection, a --munge-socket munged does not answer on."""
    # (options.check has refused both where no part of this run uses them)
    if opts.controller:
        try:
            socket.create_connection(opts.controller_at, CONNECT_CHECK_SECONDS).close()
        except OSError as err:
            raise UnreachableError(f"--controller {opts.controller}: {error_text(err)}") from None
    if opts.munge_socket:
        from ..auth.munge import MungeClient

        MungeClient(opts.munge_socket).encode()


def _not_measured(report: dict, opts) -> str | None:
    """Why the run failed: versus was named (--only versus) and not made, or every part asked
    for was skipped (an rpc row of an auth the controller refuses alone is not).  A default run
    on a machine without the harness's slurmctld measures the rest and exits 0."""
    versus_ = report.get("versus")
    if opts.only and "versus" in opts.only and isinstance(versus_, dict) and "skipped" in versus_:
        return f"versus was not measured ({versus_['skipped']})"
    skipped, measured = [], False
    for part in ("versus", "rpc", "munge"):
        rows = report.get(part)
        rows = [rows] if isinstance(rows, dict) else rows or []
        skipped += [f"{part}: {row['skipped']}" for row in rows if "skipped" in row]
        measured |= any("skipped" not in row for row in rows)
    measured |= any(report.get(part) for part in ("codec", "fanout"))
    return None if measured or not skipped else f"nothing was measured ({'; '.join(skipped)})"
