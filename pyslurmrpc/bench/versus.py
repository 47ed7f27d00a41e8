"""pyslurmrpc beside libslurm and libmunge: the same controller, the same munged, one run.

The controller is the real slurmctld started by the test harness (Debian's 22.05)
or any ``--controller``; the RPC is ``checkpoint_able`` when the controller speaks a
release with the checkpoint API (17.11-19.05) and ``ping`` otherwise.  libslurm runs
in child processes (see :mod:`.libslurm`); when it cannot be loaded, or cannot do the
RPC, its figures are absent and ``libslurm.why_not`` says why.  Figures only: nothing
here judges them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import time

from ..client import AsyncClient, Client
from ..wire import version_code
from ..wire.versions import has_checkpoint
from . import aioburst, libslurm
from .floor import CallFloor
from .munge import FLOOR_DECODE, FLOOR_ENCODE
from .libslurm import sequential
from .timing import balanced_orders

#: asyncio calls in flight tried for pyslurmrpc's best throughput; processes tried for libslurm's
IN_FLIGHT = (1, 4, 16, 64)
#: sequential measurements: pyslurmrpc, with premint, libslurm and the two floors (floor.py) take
#: turns this many times, in the orders of timing.balanced_orders (for five sides: ten)
SEQUENTIAL_ROUNDS = len(balanced_orders(5))
PROCESSES = (1, 2, 4, 8)
#: credentials the "premint" client keeps minted ahead (Client(premint=...)): its stock is refilled
#: in one call when it runs dry, so 7 calls in 8 mint nothing (auth/premint.py)
PREMINT_DEPTH = 8
BURST_SECONDS = 2.0
#: the goals of issue 13: (comparison, bound) for the ratio pyslurmrpc / C (throughput: pyslurmrpc's
#: best / C's best), and for the codec figure its own µs
GOALS = {"sequential_p50": ("<=", 0.9), "sequential_p50_premint": ("<=", 0.9), "cpu_per_call": ("<=", 1.5),
         "cpu_per_call_premint": ("<=", 1.5), "best_throughput": (">=", 1.0),
         "munge_encode": ("<=", 1.1), "munge_decode": ("<=", 1.1), "checkpoint_frame_us": ("<=", 10.0)}
#: figures judged by their own value (µs), not by a ratio
_OWN_VALUE = {"checkpoint_frame_us": "us"}
#: what each figure is bound by on a machine where client, munged and controller share cores
LIMITED_BY = {
    "sequential_p50": "client CPU per call plus four munged round trips (our encode and the reply's decode, "
                      "the controller's decode and encode) and the controller's turn",
    "sequential_p50_premint": "as sequential_p50 less our encode: the median call takes a credential "
                              f"minted ahead (Client(premint={PREMINT_DEPTH})); one call in "
                              f"{PREMINT_DEPTH} mints them all and is slower (see p99)",
    "cpu_per_call": "the client alone: frame building, MUNGE socket exchange, parsing, interpreter overhead",
    "cpu_per_call_premint": "as cpu_per_call: a mint's system calls, all of a refill's taken in one call "
                            "during its waits",
    "best_throughput": "the controller's threads and munged once several processes share the cores; "
                       "one Python process's CPU (GIL) with a single asyncio client",
    "munge_encode": "munged's own work (HMAC, cipher) plus one Unix-socket round trip per credential",
    "munge_decode": "munged's own work plus one Unix-socket round trip per credential",
    "checkpoint_frame_us": "pure interpreter work (no I/O)",
}
CONF = """ClusterName=bench
SlurmctldHost=bench({host})
SlurmctldPort={port}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
"""


@contextlib.contextmanager
def target(opts, munge_socket):
    """(host, port, slurm.conf path, description, C side) of the controller to measure; the C
    side is (libslurm path or None: found here, the dynamic loader to run it under or None)."""
    c_side = (opts.libslurm, opts.libslurm_loader)
    if opts.controller:
        host, port = opts.controller_at
        with tempfile.TemporaryDirectory() as tmp:
            conf = opts.slurm_conf or os.path.join(tmp, "slurm.conf")
            if not opts.slurm_conf:
                with open(conf, "w") as fh:
                    fh.write(CONF.format(host=host, port=port, munge_socket=munge_socket))
            yield host, int(port), conf, f"slurmctld at {opts.controller}", c_side
        return
    from ..testing.slurmctld import SlurmctldHarness

    release = None
    if opts.release:   # an unpacked release: its own libslurm and loader, unless --libslurm says otherwise
        from ..testing import releases

        release = releases.prepare(opts.release)
        if not opts.libslurm:
            c_side = releases.libslurm_of(release)
    with SlurmctldHarness(munge_socket, release=release) as ctld:
        yield ctld.host, ctld.port, ctld.conf_path, f"real slurmctld {ctld.release} (test harness)", c_side


def _op(client: Client) -> str:
    code = version_code(client.controller_version())
    return "checkpoint_able" if has_checkpoint(code) else "ping"


def _client_call(client, op: str, job: int):
    if op != "ping":
        return lambda: client.checkpoint_able(job, 0)

    def ping():
        if not client.ping():  # False: no answer, a failed call as libslurm's non-zero rc
            raise RuntimeError("ping: the controller did not answer")
    return ping


def asyncio_best(client: AsyncClient, op: str, job: int, seconds: float) -> dict:
    """Calls per second of one process's asyncio client, by calls in flight."""
    async def level(k: int) -> float:
        done = 0
        end = time.perf_counter() + seconds

        async def worker():
            nonlocal done
            while time.perf_counter() < end:
                try:  # as for libslurm, only answered calls count
                    answer = await (client.ping() if op == "ping" else client.checkpoint_able(job, 0))
                except Exception:
                    continue
                done += answer is not False
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(k)))
        return done / (time.perf_counter() - start)

    return {str(k): round(asyncio.run(level(k))) for k in IN_FLIGHT}


def _median_of(rounds: list[dict]) -> dict:
    """One sequential figure from several rounds: the median of each percentile and of the CPU."""
    return {"sequential_ms": {k: round(statistics.median(r["sequential_ms"][k] for r in rounds), 4)
                              for k in rounds[0]["sequential_ms"]},
            "cpu_us_per_call": round(statistics.median(r["cpu_us_per_call"] for r in rounds), 1),
            "calls": sum(r["calls"] for r in rounds), "failed": sum(r["failed"] for r in rounds),
            "rounds": [{"p50_ms": r["sequential_ms"]["p50"], "cpu_us_per_call": r["cpu_us_per_call"]}
                       for r in rounds]}


def _sequential_rounds(path, conf, op, job, n, plain, minted, floors, loader=None) -> tuple[dict, dict, dict, dict]:
    """pyslurmrpc, pyslurmrpc with premint, libslurm and ``floors`` (the floor's plain and
    premint calls), taking turns for SEQUENTIAL_ROUNDS rounds of n / rounds calls each, in
    balanced orders, so that the machine's drift, the place in the order and the side just
    before fall on all alike.
    Returns pyslurmrpc's, premint's, libslurm's and {"plain": ..., "premint": ...} of the floor."""
    per = max(n // SEQUENTIAL_ROUNDS, 20)
    py, pm, c, fp, fm = [], [], [], [], []
    loaded, why = (path, None) if path else libslurm.choose(loader)

    def run_c():
        nonlocal why
        if why is None:
            try:
                c.append(libslurm.run_sequential(loaded, conf, op, job, per, loader=loader))
            except (RuntimeError, OSError) as err:
                why = str(err)
    turns = [lambda: py.append(sequential(plain, per)), lambda: pm.append(sequential(minted, per)), run_c,
             lambda: fp.append(sequential(floors[0], per)), lambda: fm.append(sequential(floors[1], per))]
    for order in balanced_orders(len(turns)):
        # each side takes each place and, within a round, follows each other side equally
        # often (across a round's end, 2 or 3 times in 10): before each turn's warm-up,
        # whatever ran just after the libslurm child measured up to 20% slower (it had been
        # idle longest); what the warm-up leaves of that falls on all nearly alike
        for side in order:
            turns[side]()
    lib = {"loaded": False, "path": loaded, "loader": loader, "why_not": why} if why else {
        "loaded": True, "path": loaded, "loader": loader, **_median_of(c)}
    return _median_of(py), _median_of(pm), lib, {"plain": _median_of(fp), "premint": _median_of(fm)}


def _libslurm_bursts(c: dict, conf, op, job, seconds) -> dict:
    if not c.get("loaded"):
        return c
    try:
        bursts = {str(p): libslurm.run_processes(c["path"], conf, op, job, p, seconds, loader=c["loader"])
                  for p in PROCESSES}
    except (RuntimeError, OSError) as err:
        return {"loaded": False, "path": c["path"], "loader": c["loader"], "why_not": str(err)}
    return {**c, "calls_per_s_by_processes": {k: b["calls_per_s"] for k, b in bursts.items()},
            "slowest_call_ms_by_processes": {k: b["slowest_ms"] for k, b in bursts.items()},
            "failed_calls_by_processes": {k: b["failed"] for k, b in bursts.items()}}


def _ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def goal_text(name: str) -> str:
    """A figure's goal as the report prints it: ``<= 0.9``, ``<= 10 us``."""
    op, bound = GOALS[name]
    return f"{op} {bound:g}" + (f" {_OWN_VALUE[name]}" if name in _OWN_VALUE else "")


def goal_met(name: str, mine: float, ratio: float | None) -> bool | None:
    """Whether the unrounded figure meets its goal; None when there is nothing to judge (no C side)."""
    value = mine if name in _OWN_VALUE else ratio
    if value is None:
        return None
    op, bound = GOALS[name]
    return value <= bound if op == "<=" else value >= bound


def figures(py: dict, c: dict, munge_rows: list[dict], codec_rows: list[dict], floor: dict | None = None) -> list[dict]:
    """The side-by-side rows: pyslurmrpc, C, ratio, goal, what limits it; and the floor's figure
    (floor.py), its ratio and whether even it meets the goal, where there is one."""
    c_ok = c.get("loaded")
    by = {r["label"]: r["us"] for r in munge_rows}
    floors = _floor_figures(floor or {}, by)
    frame = next((r["decode_plus_encode_us"] for r in codec_rows if r["message"] == "REQUEST_CHECKPOINT"), None)
    rows = [
        ("sequential_p50", "ms", py["sequential_ms"]["p50"], c["sequential_ms"]["p50"] if c_ok else None),
        ("sequential_p50_premint", "ms", py["premint"]["sequential_ms"]["p50"],
         c["sequential_ms"]["p50"] if c_ok else None),
        ("cpu_per_call", "us", py["cpu_us_per_call"], c["cpu_us_per_call"] if c_ok else None),
        ("cpu_per_call_premint", "us", py["premint"]["cpu_us_per_call"], c["cpu_us_per_call"] if c_ok else None),
        ("best_throughput", "calls/s", max([*py["async_calls_per_s"].values(),
                                            *py["async_calls_per_s_by_processes"].values()]),
         max(c["calls_per_s_by_processes"].values()) if c_ok else None),
        ("munge_encode", "us", by.get("pure-Python encode"), by.get("libmunge munge_encode (C)")),
        ("munge_decode", "us", by.get("pure-Python decode"), by.get("libmunge munge_decode (C)")),
        ("checkpoint_frame_us", "us", frame, None),
    ]
    out = []
    for name, unit, mine, theirs in rows:
        if mine is None:
            continue
        exact = None if not theirs else mine / theirs
        row = {"figure": name, "unit": unit, "pyslurmrpc": round(mine, 3),
               "c": None if theirs is None else round(theirs, 3), "ratio": _ratio(mine, theirs),
               "goal": goal_text(name), "met": goal_met(name, mine, exact), "limited_by": LIMITED_BY[name]}
        least = floors.get(name)       # None: no floor for it (throughput, the codec) or not measured
        row.update(floor=None if least is None else round(least, 3), floor_ratio=_ratio(least, theirs),
                   floor_met=None if least is None else goal_met(name, least, None if not theirs else least / theirs))
        out.append(row)
    return out


def _floor_figures(floor: dict, munge_by_label: dict) -> dict:
    """The floor's figure for each row it has one for (floor.py; munge.py's floor rows)."""
    out = {"munge_encode": munge_by_label.get(FLOOR_ENCODE), "munge_decode": munge_by_label.get(FLOOR_DECODE)}
    for suffix, side in (("", floor.get("plain")), ("_premint", floor.get("premint"))):
        if side:
            out["sequential_p50" + suffix] = side["sequential_ms"]["p50"]
            out["cpu_per_call" + suffix] = side["cpu_us_per_call"]
    return {name: value for name, value in out.items() if value is not None}


def run(opts, munge_socket: str) -> dict:
    """Measure pyslurmrpc and libslurm against one controller; the munge/codec rows are added by the caller."""
    with target(opts, munge_socket) as (host, port, conf, description, (lib, loader)):
        client = Client(host, port, auth="munge", munge_socket=munge_socket, timeout=30)
        op = _op(client)
        minting = Client(host, port, auth="munge", munge_socket=munge_socket, timeout=30, premint=PREMINT_DEPTH)
        floor = CallFloor(client, op, opts.job, munge_socket, PREMINT_DEPTH)
        py, py["premint"], c, floors = _sequential_rounds(lib, conf, op, opts.job, opts.n,
                                                          _client_call(client, op, opts.job),
                                                          _client_call(minting, op, opts.job),
                                                          (floor.plain, floor.premint), loader)
        py["async_calls_per_s"] = asyncio_best(
            AsyncClient(host, port, auth="munge", munge_socket=munge_socket, timeout=30), op, opts.job,
            opts.seconds)
        best_k = int(max(py["async_calls_per_s"], key=py["async_calls_per_s"].get))
        py["async_in_flight_per_process"] = best_k
        py["async_calls_per_s_by_processes"] = {
            str(p): aioburst.run_processes(host, port, munge_socket, op, opts.job, p, best_k,
                                           opts.seconds)["calls_per_s"] for p in PROCESSES}
        c = _libslurm_bursts(c, conf, op, opts.job, opts.seconds)
    counts = minting.premint_counts   # what the premint client's calls used: minted ahead, or on demand
    py["premint"].update(depth=counts.depth, credentials={"taken_from_stock": counts.taken_from_stock,
                                                          "minted_ahead": counts.minted_ahead,
                                                          "thrown_away": counts.thrown_away,
                                                          "in_stock": counts.in_stock})
    return {"target": description, "op": op, "pyslurmrpc": py, "libslurm": c, "floor": floors,
            "cpu_count": os.cpu_count()}
