"""libslurm through ctypes, in a child process: the C reference measured beside pyslurmrpc.

Each measurement runs in its own interpreter (``python -m pyslurmrpc.bench.libslurm``)
so libslurm's globals, its plugins (loaded RTLD_GLOBAL, or they cannot resolve
libslurm's symbols) and its CPU time stay apart from the client being compared.
The child prints one JSON line:

* ``--mode sequential``: per-call latencies (p50/p90/p99 ms) and CPU (user+sys) per call;
* ``--mode burst --start T --seconds S``: calls completed between wall-clock T and T+S
  (several children started with the same T measure throughput with N processes).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import subprocess
import sys
import time

from .children import last_line, reaped, spawn
from .timing import percentiles

#: where libslurm may be: $PYSLURMRPC_LIBSLURM, the library package (Debian: libslurm38),
#: then the private copy Debian's own scontrol links against
LIBSLURM_ENV = "PYSLURMRPC_LIBSLURM"
LIBSLURM_CANDIDATES = ("/usr/lib/x86_64-linux-gnu/slurm-wlm/libslurmfull.so",
                       "/usr/lib/slurm-wlm/libslurmfull.so", "/usr/lib64/slurm/libslurmfull.so")
CHILD_TIMEOUT = 300.0
#: seconds a child may take to start and load a candidate libslurm (it makes no call)
LOAD_TIMEOUT = 60.0
BURST_LEAD_S = 1.0   # time the children get to load libslurm before the common start
#: seconds of unmeasured calls before a sequential measurement, on either side: a client that was
#: idle (its turn just began) answered 15-50% slower for its first 100-300 ms, pyslurmrpc longer
#: than libslurm (50-call windows after a 1 s pause, 2026-12-01); the figures are the steady state
WARMUP_SECONDS = 0.3


#: where candidates() looks, as a failure says it
_LOOKED_IN = f"none of ${LIBSLURM_ENV}, libslurm.so, {', '.join(LIBSLURM_CANDIDATES)}"


class LibslurmUnavailable(RuntimeError):
    """No loadable libslurm here (the message says what was tried and why it failed)."""


def candidates() -> list[str]:
    """Where libslurm is here, best first; $PYSLURMRPC_LIBSLURM alone when it is set."""
    if os.environ.get(LIBSLURM_ENV):
        return [os.environ[LIBSLURM_ENV]]
    name = ctypes.util.find_library("slurm")
    return ([name] if name else []) + [p for p in LIBSLURM_CANDIDATES if os.path.exists(p)]


def _env_problem() -> str | None:
    """Why $PYSLURMRPC_LIBSLURM cannot be used, if it names a path that is not a file (a bare
    library name, libslurm.so.38, is the dynamic loader's to find, as --libslurm's)."""
    named = os.environ.get(LIBSLURM_ENV)
    if named and "/" in named and not os.path.isfile(named):
        return f"${LIBSLURM_ENV} names {named}, which is not a file"
    return None


def find() -> tuple[str | None, str | None]:
    """(the libslurm the children would load first, None), or (None, why there is none).
    Looked for, not loaded: libslurm is loaded in the children only."""
    why = _env_problem()
    found = [] if why else candidates()
    if found:
        return found[0], None
    return None, why or f"no libslurm here ({_LOOKED_IN})"


def choose(loader: str | None = None) -> tuple[str | None, str | None]:
    """(the first libslurm here that a child can load, None), or (None, every candidate's
    reason): a candidate that will not load (another architecture, a missing dependency) is
    passed over for the next, as load() does in one process."""
    why = _env_problem()
    found = [] if why else candidates()
    if not found:
        return None, why or f"no libslurm here ({_LOOKED_IN})"
    tried = []
    for cand in found:
        failure = loads(cand, loader)
        if failure is None:
            return cand, None
        tried.append(failure)
    return None, f"no libslurm could be loaded ({'; '.join(tried)})"


def loads(path: str, loader: str | None = None) -> str | None:
    """None when a child loads ``path`` (RTLD_GLOBAL, as the measuring children do), else
    why not (the dynamic loader's message, which names the file)."""
    proc = spawn([*child_prefix(path, loader), "-m", "pyslurmrpc.bench.libslurm", "--lib", path, "--mode", "load"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with reaped(proc):
        try:
            _, err = proc.communicate(timeout=LOAD_TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"{path}: loading it took over {LOAD_TIMEOUT:g} s"
    return None if proc.returncode == 0 else last_line(err)


def load(path: str | None = None):
    """(library, path) loaded RTLD_GLOBAL; raise LibslurmUnavailable with every reason."""
    tried = []
    for cand in [path] if path else candidates():
        try:
            return ctypes.CDLL(cand, mode=ctypes.RTLD_GLOBAL), cand
        except OSError as err:
            tried.append(f"{cand}: {err}")
    raise LibslurmUnavailable(f"no libslurm could be loaded ({'; '.join(tried) if tried else _LOOKED_IN})")


def _call(lib, conf: str, op: str, job: int):
    """A zero-argument callable doing one ``op`` RPC; raises when libslurm reports failure."""
    os.environ["SLURM_CONF"] = conf  # releases before 20.02 have no slurm_init: they read this
    if hasattr(lib, "slurm_init"):
        lib.slurm_init.argtypes = [ctypes.c_char_p]
        lib.slurm_init(conf.encode())
    if op == "ping":
        fn, args = lib.slurm_ping, (0,)
        fn.argtypes = [ctypes.c_int]
    elif op == "checkpoint_able":
        fn = getattr(lib, "slurm_checkpoint_able", None)
        if fn is None:
            raise LibslurmUnavailable("this libslurm has no slurm_checkpoint_able (removed in 20.02)")
        start = ctypes.c_long()
        fn.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_long)]
        args = (job, 0, ctypes.byref(start))
    else:
        raise ValueError(f"unknown op {op!r}")

    def call():
        rc = fn(*args)
        if rc != 0:
            raise RuntimeError(f"libslurm {op} returned {rc}")
    return call


def _cpu() -> float:
    """User + system CPU seconds of this process, to the nanosecond (os.times() counts 10 ms ticks,
    which rounds a short run of C calls to zero)."""
    return time.process_time()


class _Failures:
    """Calls that failed during a measurement (an overloaded controller refuses some):
    counted, not fatal, unless every call failed."""

    def __init__(self):
        self.count, self.last = 0, None

    def run(self, call) -> None:
        try:
            call()
        except Exception as err:  # a refused or timed-out call still took its time
            self.count, self.last = self.count + 1, err

    def check(self, calls: int) -> None:
        if calls and self.count == calls:
            raise RuntimeError(f"every call failed, the last with: {self.last}")


def sequential(call, n: int, warmup: float = WARMUP_SECONDS) -> dict:
    """Latency percentiles (ms) and CPU per call (µs) of ``n`` calls one after another, after
    ``warmup`` seconds of calls that are not measured (at least one: a failure there is the setup's)."""
    warm_until = time.perf_counter() + warmup
    call()
    while time.perf_counter() < warm_until:
        call()
    samples, failures = [], _Failures()
    cpu0 = _cpu()
    for _ in range(n):
        start = time.perf_counter()
        failures.run(call)
        samples.append((time.perf_counter() - start) * 1000)
    cpu = _cpu() - cpu0
    failures.check(n)
    figures = {k: round(v, 4) for k, v in percentiles(samples).items()}
    return {"sequential_ms": figures, "cpu_us_per_call": round(cpu / n * 1e6, 1), "calls": n,
            "failed": failures.count}


def burst(call, start_at: float, seconds: float) -> dict:
    call()
    while time.time() < start_at:
        time.sleep(0.001)
    done, end, slowest, failures = 0, start_at + seconds, 0.0, _Failures()
    while time.time() < end:
        start = time.perf_counter()
        failures.run(call)
        slowest = max(slowest, time.perf_counter() - start)
        done += 1
    failures.check(done)
    return {"calls": done - failures.count, "failed": failures.count, "seconds": seconds,
            "slowest_ms": round(slowest * 1000, 3)}


def child_prefix(path: str | None, loader: str | None = None) -> list[str]:
    """How a libslurm child starts: this interpreter, or this interpreter under ``loader``, the
    dynamic loader (ld-linux) of a libslurm built against a newer C library than this machine's
    (the 24.11 and 26.05 trees of pyslurmrpc.testing.releases); the loader's directory, where
    its C library is, and libslurm's are searched first."""
    if not loader:
        return [sys.executable]
    # a bare library name (libslurm.so.38) has no directory: the working one must not be searched
    dirs = [os.path.dirname(os.path.abspath(loader))] + (
        [os.path.dirname(os.path.abspath(path))] if path and "/" in path else [])
    return [loader, "--library-path", ":".join(dirs), sys.executable]


def _child_cmd(path, conf, op, job, *extra, loader: str | None = None) -> list[str]:
    return [*child_prefix(path, loader), "-m", "pyslurmrpc.bench.libslurm", "--lib", path, "--conf", conf,
            "--op", op, "--job", str(job), *extra]


def child_output(proc, what: str = "libslurm") -> dict:
    """The JSON line a benchmark child printed last, or RuntimeError with the end of its stderr."""
    out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} child failed ({proc.returncode}): {last_line(err)}")
    return json.loads(out.strip().splitlines()[-1])


def run_sequential(path: str, conf: str, op: str, job: int, n: int, warmup: float = WARMUP_SECONDS,
                   loader: str | None = None) -> dict:
    proc = spawn(_child_cmd(path, conf, op, job, "--mode", "sequential", "-n", str(n), "--warmup", repr(warmup),
                            loader=loader), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with reaped(proc):
        return child_output(proc)


def run_processes(path: str, conf: str, op: str, job: int, processes: int, seconds: float,
                  loader: str | None = None) -> dict:
    """Calls per second (successful ones) by ``processes`` children calling back to back for
    ``seconds``, the slowest single call any of them saw (a stalled controller shows there)
    and how many failed."""
    start_at = time.time() + BURST_LEAD_S + 0.2 * processes
    procs = [spawn(_child_cmd(path, conf, op, job, "--mode", "burst", "--start", repr(start_at),
                              "--seconds", str(seconds), loader=loader),
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    with reaped(*procs):
        outs = [child_output(p) for p in procs]
    return {"calls_per_s": round(sum(o["calls"] for o in outs) / seconds),
            "slowest_ms": max(o["slowest_ms"] for o in outs), "failed": sum(o["failed"] for o in outs)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m pyslurmrpc.bench.libslurm")
    p.add_argument("--lib")
    p.add_argument("--conf")
    p.add_argument("--op", choices=("ping", "checkpoint_able"), default="ping")
    p.add_argument("--job", type=int, default=1)
    p.add_argument("--mode", choices=("sequential", "burst", "load"), default="sequential")
    p.add_argument("-n", type=int, default=1_000)
    p.add_argument("--start", type=float, default=0.0)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=WARMUP_SECONDS)
    opts = p.parse_args(argv)
    if opts.mode == "load":      # OSError's text, the dynamic loader's, is the reason a parent reads
        ctypes.CDLL(opts.lib, mode=ctypes.RTLD_GLOBAL)
        return
    lib, _ = load(opts.lib)
    if not opts.conf:
        p.error("--conf is required to call libslurm")
    call = _call(lib, opts.conf, opts.op, opts.job)
    if opts.mode == "sequential":
        result = sequential(call, opts.n, opts.warmup)
    else:
        result = burst(call, opts.start, opts.seconds)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
