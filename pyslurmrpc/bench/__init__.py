"""``pyslurmrpc bench``: codec, MUNGE, round-trip latency and asyncio throughput, measured here.

Prints a table (or ``--json``); asserts nothing.  Without ``--controller`` it
starts a fake slurmctld in a child process, and a throw-away munged when none
is given and Debian's munged is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys

from . import codec, munge, rpc

#: Reference figures quoted by the project's issues (libslurm 19.05, 2-core Debian 12), not measured here
LIBSLURM_SEQUENTIAL_MS = 0.94


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyslurmrpc bench", description=__doc__.splitlines()[0])
    p.add_argument("--controller", metavar="HOST:PORT", help="measure against this slurmctld instead of a fake")
    p.add_argument("--job", type=int, default=rpc.BENCH_JOB, help="job id to ask about (with --controller)")
    p.add_argument("--auth", choices=("none", "munge", "both"), default="both")
    p.add_argument("--munge-socket", help="an existing munged socket (default: start a throw-away munged)")
    p.add_argument("-n", type=int, default=2000, help="calls per measurement")
    p.add_argument("--only", choices=("codec", "munge", "rpc"), action="append", help="run only these parts")
    p.add_argument("--json", action="store_true")
    return p


@contextlib.contextmanager
def _munged(socket_path):
    if socket_path:
        yield socket_path, None
        return
    from ..testing.munged import MungedHarness, find_munged

    try:
        find_munged()
    except Exception:
        yield None, None
        return
    with MungedHarness() as harness:
        yield harness.socket_path, harness.key_file


def _rpc(opts, socket_path) -> list[dict]:
    auths = ["none", "munge"] if opts.auth == "both" else [opts.auth]
    results = []
    for auth in auths:
        if auth == "munge" and not socket_path:
            continue
        sock = socket_path if auth == "munge" else None
        if opts.controller:
            host, _, port = opts.controller.rpartition(":")
            results.append({"server": opts.controller, **rpc.run(host, int(port), auth, sock, opts.n, opts.job)})
            continue
        with rpc.fake_controller(auth, sock) as (host, port):
            results.append({"server": "fake slurmctld", **rpc.run(host, port, auth, sock, opts.n)})
        with rpc.stub_controller(sock, rpc.calls_needed(opts.n)) as (host, port):
            results.append({"server": "pre-signed stub", **rpc.run(host, port, auth, sock, opts.n)})
    return results


def measure(opts) -> dict:
    parts = set(opts.only or ("codec", "munge", "rpc"))
    report = {"python": platform.python_version(), "machine": platform.machine()}
    with _munged(opts.munge_socket) as (socket_path, key_file):
        if "codec" in parts:
            report["codec"] = codec.run(max(opts.n * 5, 1000))
        if "munge" in parts and socket_path:
            report["munge"] = munge.run(socket_path, key_file, opts.n)
        if "rpc" in parts:
            report["rpc"] = _rpc(opts, socket_path)
            report["libslurm_reference_ms"] = LIBSLURM_SEQUENTIAL_MS
    return report


def render(report: dict) -> list[str]:
    lines = [f"pyslurmrpc bench (CPython {report['python']}, {report['machine']})"]
    if "codec" in report:
        lines += ["", "codec, µs per message (compiled fast path; interpreted checker for comparison)",
                  f"  {'message':<26}{'bytes':>6}{'decode':>9}{'encode':>9}{'both':>9}{'interp.':>9}"]
        lines += [f"  {r['message']:<26}{r['bytes']:>6}{r['decode_us']:>9.1f}{r['encode_us']:>9.1f}"
                  f"{r['decode_plus_encode_us']:>9.1f}{r['interpreted_parse_us']:>9.1f}" for r in report["codec"]]
    if "munge" in report:
        lines += ["", "MUNGE, ms per credential"]
        lines += [f"  {r['label']:<40}{r['us'] / 1000:>8.4f}" for r in report["munge"]]
        by = {r["label"]: r["us"] for r in report["munge"]}
        for op in ("encode", "decode"):
            c = by.get(f"libmunge munge_{op} (C)")
            if c:
                lines.append(f"  pure-Python / libmunge {op}: {by[f'pure-Python {op}'] / c:.2f}x")
    for r in report.get("rpc", []):
        seq = r["sequential_ms"]
        lines += ["", f"round trips, checkpoint_able, auth={r['auth']}, server: {r['server']}",
                  f"  sequential: p50 {seq['p50']:.3f} ms  p90 {seq['p90']:.3f} ms  p99 {seq['p99']:.3f} ms"
                  f"  ({seq['calls_per_s']} calls/s)",
                  f"  libslurm 19.05 reference: {report['libslurm_reference_ms']} ms "
                  f"({1000 / report['libslurm_reference_ms']:.0f} calls/s), quoted, not measured here",
                  "  asyncio calls/s by calls in flight: "
                  + "  ".join(f"{k}: {v}" for k, v in r["async_calls_per_s"].items())]
    return lines


def main(argv=None) -> int:
    opts = _parser().parse_args(argv)
    report = measure(opts)
    if opts.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(render(report)))
    sys.stdout.flush()
    return 0
