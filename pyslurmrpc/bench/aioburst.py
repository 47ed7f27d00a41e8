"""pyslurmrpc's asyncio client in N processes, as libslurm is measured in N processes.

Each child imports, warms up (the version cache) and says "ready"; when every child
is ready the parent says "go" to all, and each runs one AsyncClient with
``--in-flight`` calls at once for ``--seconds``, then prints its answered and failed
calls as JSON.  :func:`run_processes` adds them up.  (A common start time, as the
libslurm children use, is too early for Python children on a loaded machine: their
start-up is ~0.6 s each, and a late child would run a shorter window.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

from ..client import AsyncClient
from .children import last_line, reaped, spawn
from .libslurm import child_output


async def _burst(client: AsyncClient, op: str, job: int, in_flight: int, seconds: float) -> dict:
    await (client.ping() if op == "ping" else client.checkpoint_able(job, 0))  # version cache, warm-up
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("no go")
    end, done, failed = time.perf_counter() + seconds, 0, 0

    async def worker():
        nonlocal done, failed
        while time.perf_counter() < end:
            try:
                answer = await (client.ping() if op == "ping" else client.checkpoint_able(job, 0))
            except Exception:
                failed += 1
                continue
            if answer is False:
                failed += 1
            else:
                done += 1
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return {"calls": done, "failed": failed}


def run_processes(host: str, port: int, munge_socket: str, op: str, job: int, processes: int,
                  in_flight: int, seconds: float, premint: int = 0) -> dict:
    """Answered calls per second of ``processes`` children, each with ``in_flight`` calls at once."""
    cmd = [sys.executable, "-m", "pyslurmrpc.bench.aioburst", "--host", host, "--port", str(port),
           "--munge-socket", munge_socket, "--op", op, "--job", str(job), "--in-flight", str(in_flight),
           "--seconds", str(seconds), "--premint", str(premint)]
    procs = [spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    with reaped(*procs):
        for proc in procs:  # every child has imported and warmed up
            if proc.stdout.readline().strip() != "ready":
                proc.kill()                   # its stderr ends only when it does
                raise RuntimeError(f"pyslurmrpc burst child failed to start: {last_line(proc.stderr.read())}")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outs = [child_output(proc, "pyslurmrpc burst") for proc in procs]
    return {"calls_per_s": round(sum(o["calls"] for o in outs) / seconds),
            "failed": sum(o["failed"] for o in outs)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m pyslurmrpc.bench.aioburst")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--munge-socket", required=True)
    p.add_argument("--op", choices=("ping", "checkpoint_able"), default="ping")
    p.add_argument("--job", type=int, default=1)
    p.add_argument("--in-flight", type=int, default=16)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--premint", type=int, default=0)
    opts = p.parse_args(argv)
    client = AsyncClient(opts.host, opts.port, auth="munge", munge_socket=opts.munge_socket, timeout=30,
                         premint=opts.premint)
    result = asyncio.run(_burst(client, opts.op, opts.job, opts.in_flight, opts.seconds))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
