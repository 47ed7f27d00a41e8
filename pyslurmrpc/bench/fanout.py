"""Fan-out figures: checkpoint_tasks through the forwarding tree of N fake slurmds.

The fake slurmds run in ONE child process behind one listening socket
(:mod:`pyslurmrpc.fake.farm`), the client in this one.  For each node count the
call is made once to warm up and then ``ROUNDS`` times; the best time is reported
with the per-node outcome and the most descriptors either process had open.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from ..client import Client
from ..errors import SlurmError
from ..fake.farm import FARM_JOB, node_address, node_names
from ..hostlist import compress
from .children import spawn, stopped_or_killed
from .rpc import listening_address

DEFAULT_NODES = 1_000
ROUNDS = 3
FD_SAMPLE_S = 0.005
#: clock ticks (/proc counts CPU in them) the first row's measured calls need for a CPU ratio
CPU_RATIO_MIN_TICKS = 15
#: the client waits at most this per call (a chain that cannot finish gives per-node errors)
MAX_WAIT_S = 60


class FdWatch:
    """The most open descriptors of some processes, sampled in a thread while in a ``with``."""

    def __init__(self, *pids: int):
        self.pids = pids
        self.peak = {pid: 0 for pid in pids}
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                try:
                    self.peak[pid] = max(self.peak[pid], len(os.listdir(f"/proc/{pid}/fd")))
                except OSError:
                    pass
            self._stop.wait(FD_SAMPLE_S)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _call(client: Client, nodelist: str, stamp: int) -> dict[str, int]:
    try:
        return client.checkpoint_tasks(FARM_JOB, 0, stamp, None, MAX_WAIT_S, nodelist)
    except SlurmError as err:  # some nodes failed: their codes are the figure
        return dict(err.details or {})


def one(count: int, tree_width: int, message_timeout: float | None = None) -> dict:
    """Best-of-ROUNDS seconds for one checkpoint_tasks over ``count`` farm nodes."""
    cmd = [sys.executable, "-m", "pyslurmrpc.fake.farm", "--nodes", str(count), "--tree-width", str(tree_width)]
    if message_timeout:
        cmd += ["--message-timeout", str(message_timeout)]
    names = node_names(count)
    proc = spawn(cmd, stdout=subprocess.PIPE, text=True)
    try:
        _, port = listening_address(proc)
        with FdWatch(os.getpid(), proc.pid) as fds:
            codes, best, cpu = _measure(count, tree_width, port, names, proc.pid)
    finally:
        stopped_or_killed(proc)
    errors: dict[str, int] = {}
    for code in codes.values():
        if code:
            errors[str(code)] = errors.get(str(code), 0) + 1
    return {"nodes": count, "tree_width": tree_width, "seconds": round(best, 4), "answered": len(codes),
            "ok": sum(1 for c in codes.values() if c == 0), "errors": sum(errors.values()),
            "errors_by_code": errors, "cpu_s_client": round(cpu[0], 4), "cpu_s_farm": round(cpu[1], 4),
            "peak_fds": max(fds.peak.values()),
            "peak_fds_client": fds.peak[os.getpid()], "peak_fds_farm": fds.peak[proc.pid]}


def _cpu_of(pid: int) -> float:
    """User+system CPU seconds of a process (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(count: int, tree_width: int, port: int, names: list[str], farm_pid: int):
    """(per-node codes of the last call, best seconds, (client, farm) CPU seconds per call)."""
    client = Client("127.0.0.1", auth="none", tree_width=tree_width,
                    nodes={n: (node_address(i), port) for i, n in enumerate(names)})
    nodelist = compress(names)
    stamp = int(time.time())
    codes = _call(client, nodelist, stamp)  # warm up (and the stepds remember this stamp)
    best = float("inf")
    cpu0, farm0 = _cpu_of(os.getpid()), _cpu_of(farm_pid)
    for r in range(ROUNDS):
        start = time.perf_counter()
        codes = _call(client, nodelist, stamp + 1 + r)
        best = min(best, time.perf_counter() - start)
    cpu = ((_cpu_of(os.getpid()) - cpu0) / ROUNDS, (_cpu_of(farm_pid) - farm0) / ROUNDS)
    return codes, best, cpu


def run(counts, tree_width: int) -> list[dict]:
    """One row per node count; the last row also carries time ratios against the first."""
    rows = [one(n, tree_width) for n in counts]
    if len(rows) > 1:
        base = rows[0]
        for row in rows[1:]:
            cpu, base_cpu = row["cpu_s_client"] + row["cpu_s_farm"], base["cpu_s_client"] + base["cpu_s_farm"]
            # the CPU figures are per call, over ROUNDS calls: a ratio of a few ticks would be noise
            least = CPU_RATIO_MIN_TICKS / os.sysconf("SC_CLK_TCK") / ROUNDS
            row["ratios"] = {f"time({row['nodes']})/time({base['nodes']})": round(row["seconds"] / base["seconds"], 2),
                             f"cpu({row['nodes']})/cpu({base['nodes']})":
                                 round(cpu / base_cpu, 2) if base_cpu >= least else None}
    return rows
