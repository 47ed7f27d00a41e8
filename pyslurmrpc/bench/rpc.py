"""Round-trip figures: sequential latency and asyncio throughput against a controller.

Without ``--controller`` a fake slurmctld is started in its own process (so
client and server do not share a GIL), with one running job to ask about.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

from ..client import AsyncClient, Client
from ..client.validate import controller_address
from ..errors import CheckpointUnsupported
from .children import spawn, stopped_or_killed
from .timing import percentiles

IN_FLIGHT = (1, 8, 32, 128)
BENCH_JOB = 1
CLUSTER_TOML = f"""slurm_user = 0
[[jobs]]
job_id = {BENCH_JOB}
uid = {os.getuid()}
state = "running"
batch = true
steps = [{{ step_id = 0 }}]
"""
STARTUP_TIMEOUT = 30.0


@contextmanager
def child_server(cmd: list[str]):
    """A server in a child process that prints ``listening on HOST:PORT``; yields (host, port)."""
    proc = spawn(cmd, stdout=subprocess.PIPE, text=True)
    try:
        yield listening_address(proc)
    finally:       # asked to stop first (the fake's own shutdown), then killed if it has not
        stopped_or_killed(proc)


@contextmanager
def fake_controller(auth: str, munge_socket: str | None):
    """The fake slurmctld (Python, checks and signs everything) in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        toml = os.path.join(tmp, "cluster.toml")
        with open(toml, "w") as fh:
            fh.write(CLUSTER_TOML)
        cmd = [sys.executable, "-m", "pyslurmrpc", "fake-slurmctld", "--cluster", toml, "--port", "0",
               "--auth", auth, "--plugin", "ompi", "--no-srun-completion"]
        if munge_socket:
            cmd += ["--munge-socket", munge_socket]
        with child_server(cmd) as address:
            yield address


@contextmanager
def stub_controller(munge_socket: str | None, count: int):
    """A responder with pre-built, pre-signed replies (see stub.py): measures the client alone."""
    cmd = [sys.executable, "-m", "pyslurmrpc.bench.stub", "--count", str(count)]
    if munge_socket:
        cmd += ["--munge-socket", munge_socket]
    with child_server(cmd) as address:
        yield address


def listening_address(proc) -> tuple[str, int]:
    """(host, port) of a child server's ``listening on HOST:PORT`` line."""
    return controller_address(first_line(proc).rsplit(" ", 1)[1], None)


def first_line(proc) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    line = proc.stdout.readline()
    if not line.startswith("listening on") or time.monotonic() > deadline:
        raise RuntimeError(f"fake slurmctld did not start: {line!r}")
    return line.strip()


def calls_needed(n: int) -> int:
    """Round trips one :func:`run` makes: warm-up, sequential, each in-flight level."""
    return 1 + n + sum(max(n // k, 1) * k for k in IN_FLIGHT)


def _operation(client, job: int):
    """The call to time: checkpoint_able(job, 0), or ping() against a controller without
    checkpoint RPCs (20.02 on), as versus does; its name and a function of the client."""
    try:
        client.checkpoint_able(job, 0)  # warm up, and fail early on a wrong job
    except CheckpointUnsupported:
        client.ping()
        return "ping", lambda c: c.ping()
    return "checkpoint_able", lambda c: c.checkpoint_able(job, 0)


def sequential(client: Client, n: int, call) -> dict:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call(client)
        samples.append((time.perf_counter() - start) * 1000)
    figures = {k: round(v, 3) for k, v in percentiles(samples).items()}
    figures["calls_per_s"] = round(n / (sum(samples) / 1000))
    return figures


def throughput(client: AsyncClient, n: int, call) -> dict:
    async def run(in_flight: int) -> float:
        per_task = max(n // in_flight, 1)

        async def worker():
            for _ in range(per_task):
                await call(client)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return per_task * in_flight / (time.perf_counter() - start)

    return {str(k): round(asyncio.run(run(k))) for k in IN_FLIGHT}


def run(host: str, port: int, auth: str, munge_socket: str | None, n: int, job: int = BENCH_JOB) -> dict:
    kw = dict(auth=auth, munge_socket=munge_socket, timeout=30)
    client = Client(host, port, **kw)
    op, call = _operation(client, job)
    return {"auth": auth, "op": op, "sequential_ms": sequential(client, n, call),
            "async_calls_per_s": throughput(AsyncClient(host, port, **kw), n, call)}
