"""``pyslurmrpc bench --only versus``: pyslurmrpc beside libslurm and libmunge, one run.

Every figure is checked to be produced, with its C counterpart and ratio where the
C side can be loaded; none is judged (benchmarks print, tests never time).
"""

from __future__ import annotations

import _ctypes
import collections
import json
import os
import statistics
import subprocess
import sys
import tomllib

import pytest

from pyslurmrpc.bench import libslurm, versus
from pyslurmrpc.bench.versus import SEQUENTIAL_ROUNDS

FIGURES = {"sequential_p50", "sequential_p50_premint", "cpu_per_call", "cpu_per_call_premint",
           "best_throughput", "munge_encode", "munge_decode", "checkpoint_frame_us"}
WITH_C = FIGURES - {"checkpoint_frame_us"}


def bench(*args) -> dict:
    result = subprocess.run([sys.executable, "-m", "pyslurmrpc", "bench", "--json", *args],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_versus_real_controller_every_figure_with_ratio(munged, slurmctld):
    report = bench("--only", "versus", "-n", "40", "--seconds", "0.3", "--munge-socket", munged.socket_path,
                   "--controller", f"{slurmctld.host}:{slurmctld.port}", "--slurm-conf", slurmctld.conf_path)
    v = report["versus"]
    assert v["op"] == "ping"  # 22.05 has no checkpoint API
    assert v["libslurm"]["loaded"], v["libslurm"]  # Debian's libslurmfull.so is installed with slurmctld
    assert set(v["libslurm"]["calls_per_s_by_processes"]) == {"1", "2", "4", "8"}
    py = v["pyslurmrpc"]
    # sequential figures: medians of rounds taken in turn with libslurm (the machine's drift falls on both)
    for side in (py, py["premint"], v["libslurm"]):
        assert len(side["rounds"]) == SEQUENTIAL_ROUNDS, side
        assert side["sequential_ms"]["p50"] == pytest.approx(
            statistics.median(r["p50_ms"] for r in side["rounds"]), abs=1e-4)
    # the premint client: its depth, and most of its calls sent a credential minted ahead
    assert py["premint"]["depth"] == versus.PREMINT_DEPTH
    used = py["premint"]["credentials"]
    assert used["taken_from_stock"] >= py["premint"]["calls"] // 2, used
    assert used["minted_ahead"] >= used["taken_from_stock"], used
    assert set(py["async_calls_per_s_by_processes"]) == {"1", "2", "4", "8"}  # asyncio, as many processes
    assert all(n > 0 for n in py["async_calls_per_s_by_processes"].values()), py
    rows = {f["figure"]: f for f in v["figures"]}
    by_label = {r["label"]: r["us"] for r in report["munge"]}
    assert rows["best_throughput"]["pyslurmrpc"] == max(
        [*py["async_calls_per_s"].values(), *py["async_calls_per_s_by_processes"].values()])
    assert set(rows) == FIGURES
    for name in WITH_C:
        row = rows[name]
        assert row["c"] > 0 and row["pyslurmrpc"] > 0, row
        assert row["ratio"] == pytest.approx(row["pyslurmrpc"] / row["c"], rel=0.01), row
        assert row["goal"] and row["limited_by"]
        assert row["met"] is versus.goal_met(name, row["pyslurmrpc"], row["pyslurmrpc"] / row["c"]), row
    assert rows["checkpoint_frame_us"]["met"] is (rows["checkpoint_frame_us"]["pyslurmrpc"] <= 10)
    # the floor (bench/floor.py) took its turns too, plain and premint; its figure in each row it has one for
    for side in v["floor"].values():
        assert len(side["rounds"]) == SEQUENTIAL_ROUNDS and side["failed"] == 0, side
    floors = {"sequential_p50": v["floor"]["plain"]["sequential_ms"]["p50"],
              "sequential_p50_premint": v["floor"]["premint"]["sequential_ms"]["p50"],
              "cpu_per_call": v["floor"]["plain"]["cpu_us_per_call"],
              "cpu_per_call_premint": v["floor"]["premint"]["cpu_us_per_call"],
              "munge_encode": by_label["floor encode (floor.py)"], "munge_decode": by_label["floor decode (floor.py)"]}
    for name, least in floors.items():
        row = rows[name]
        assert row["floor"] == pytest.approx(least, abs=1e-3) and least > 0, row
        assert row["floor_ratio"] == pytest.approx(least / row["c"], rel=0.01), row
        assert row["floor_met"] is versus.goal_met(name, least, least / row["c"]), row
    for name in ("best_throughput", "checkpoint_frame_us"):      # no floor: said, as a missing C figure is
        assert rows[name]["floor"] is rows[name]["floor_ratio"] is rows[name]["floor_met"] is None, rows[name]


def test_versus_starts_the_harness_controller_without_controller(munged):
    report = bench("--only", "versus", "-n", "20", "--seconds", "0.2", "--munge-socket", munged.socket_path)
    v = report["versus"]
    assert "real slurmctld 22.05" in v["target"] and "test harness" in v["target"], v
    assert v["libslurm"]["loaded"] and v["libslurm"]["sequential_ms"]["p50"] > 0


def test_versus_says_why_when_libslurm_cannot_be_loaded(munged, slurmctld, tmp_path):
    """In one line: the child's reason, not the end of its traceback."""
    not_a_library = tmp_path / "libslurm.so"
    not_a_library.write_text("not an ELF file\n")
    report = bench("--only", "versus", "-n", "10", "--seconds", "0.2", "--munge-socket", munged.socket_path,
                   "--controller", f"{slurmctld.host}:{slurmctld.port}", "--libslurm", str(not_a_library))
    c = report["versus"]["libslurm"]
    assert c["loaded"] is False and str(not_a_library) in c["why_not"], c
    assert "\n" not in c["why_not"] and "Traceback" not in c["why_not"] and 'File "' not in c["why_not"], c
    rows = {f["figure"]: f for f in report["versus"]["figures"]}
    assert rows["sequential_p50"]["c"] is None and rows["sequential_p50"]["pyslurmrpc"] > 0


def test_versus_checkpoint_controller_uses_checkpoint_able(munged):
    """A 19.05 controller (the fake, MUNGE-authenticated) is asked checkpoint_able; libslurm 22.05
    cannot do that RPC and the report says so."""
    from pyslurmrpc.auth.slurm_auth import MungeAuth
    from pyslurmrpc.bench.rpc import BENCH_JOB, CLUSTER_TOML
    from pyslurmrpc.fake import Cluster, FakeSlurmctld

    cluster = Cluster.from_dict(tomllib.loads(CLUSTER_TOML))
    with FakeSlurmctld(cluster, plugin="simulated", auth=MungeAuth(munged.socket_path)) as ctld:
        report = bench("--only", "versus", "-n", "20", "--seconds", "0.2", "--munge-socket", munged.socket_path,
                       "--controller", f"{ctld.host}:{ctld.port}", "--job", str(BENCH_JOB))
    v = report["versus"]
    assert v["op"] == "checkpoint_able"
    assert v["pyslurmrpc"]["sequential_ms"]["p50"] > 0
    if not v["libslurm"]["loaded"]:
        assert "slurm_checkpoint_able" in v["libslurm"]["why_not"]


def test_libslurm_candidates_honour_the_environment(monkeypatch, tmp_path):
    """$PYSLURMRPC_LIBSLURM alone: a missing one is said, not passed over for another library."""
    monkeypatch.setenv(libslurm.LIBSLURM_ENV, "/opt/x/libslurm.so")
    assert libslurm.candidates() == ["/opt/x/libslurm.so"]
    assert libslurm.find() == (None, "$PYSLURMRPC_LIBSLURM names /opt/x/libslurm.so, which is not a file")
    (tmp_path / "libslurm.so").write_bytes(b"")
    monkeypatch.setenv(libslurm.LIBSLURM_ENV, str(tmp_path / "libslurm.so"))
    assert libslurm.find() == (str(tmp_path / "libslurm.so"), None)


def test_the_bench_finds_libslurm_without_loading_it(monkeypatch):
    """libslurm is loaded in the children only: it was loaded into the bench to learn its path."""
    def no_load(*args, **kwargs):
        raise AssertionError("libslurm loaded in the bench's own process")
    monkeypatch.delenv(libslurm.LIBSLURM_ENV, raising=False)
    monkeypatch.setattr(libslurm, "LIBSLURM_CANDIDATES", (_ctypes.__file__,))   # a library a child can load
    monkeypatch.setattr(libslurm.ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(libslurm.ctypes, "CDLL", no_load)
    monkeypatch.setattr(versus.libslurm, "run_sequential", lambda path, *a, **k: {"path": path})
    monkeypatch.setattr(versus, "sequential", lambda call, n: {"sequential_ms": {"p50": 1}, "cpu_us_per_call": 1,
                                                                "calls": n, "failed": 0})
    monkeypatch.setattr(versus, "_median_of", lambda rounds: {"rounds": rounds})
    _, _, c, _ = versus._sequential_rounds(None, "conf", "ping", 1, 60, None, None, (None, None))
    assert c["loaded"] and c["path"] == _ctypes.__file__


def test_a_libslurm_that_will_not_load_is_passed_over_for_the_next(monkeypatch, tmp_path):
    """The first candidate that a child can load is measured; when none loads, each one's
    reason is said (the dynamic loader's, naming the file)."""
    broken = tmp_path / "libslurmfull.so"
    broken.write_bytes(b"not an ELF file\n" * 8)
    monkeypatch.delenv(libslurm.LIBSLURM_ENV, raising=False)
    monkeypatch.setattr(libslurm.ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(libslurm, "LIBSLURM_CANDIDATES", (str(broken), _ctypes.__file__))
    assert libslurm.choose() == (_ctypes.__file__, None)
    empty = tmp_path / "libslurm.so"
    empty.write_bytes(b"")
    monkeypatch.setattr(libslurm, "LIBSLURM_CANDIDATES", (str(broken), str(empty)))
    path, why = libslurm.choose()
    assert path is None and why == (f"no libslurm could be loaded ({broken}: invalid ELF header; "
                                    f"{empty}: file too short)")


def test_a_bare_library_name_in_the_environment_is_the_loaders_to_find(monkeypatch):
    """$PYSLURMRPC_LIBSLURM=libslurm.so.38 is taken as --libslurm takes it: no file by that
    name here, and the loader's search decides."""
    monkeypatch.setenv(libslurm.LIBSLURM_ENV, "libpyslurmrpc-none.so.1")
    assert libslurm.find() == ("libpyslurmrpc-none.so.1", None)
    assert libslurm.choose() == (None, "no libslurm could be loaded (libpyslurmrpc-none.so.1: "
                                       "cannot open shared object file: No such file or directory)")
    monkeypatch.setenv(libslurm.LIBSLURM_ENV, os.path.basename(_ctypes.__file__))
    monkeypatch.setenv("LD_LIBRARY_PATH", os.path.dirname(_ctypes.__file__))
    assert libslurm.choose() == (os.path.basename(_ctypes.__file__), None)


def test_sequential_sides_take_each_place_in_the_order_equally_often(monkeypatch):
    """Whatever runs just after the libslurm child measured slower: pyslurmrpc, premint and
    libslurm each run first, second and third equally often, and each gets every round."""
    order = []

    def fake_sequential(call, n):
        order.append(call())
        return {"sequential_ms": {"p50": 0.5}, "cpu_us_per_call": 100.0, "calls": n, "failed": 0}

    def fake_libslurm(path, conf, op, job, n, loader=None):
        order.append("libslurm")
        return {"sequential_ms": {"p50": 0.4}, "cpu_us_per_call": 90.0, "calls": n, "failed": 0}
    monkeypatch.setattr(versus, "sequential", fake_sequential)
    monkeypatch.setattr(libslurm, "run_sequential", fake_libslurm)
    py, pm, c, least = versus._sequential_rounds("/lib/x.so", "conf", "ping", 0, 600, lambda: "plain",
                                                 lambda: "premint", (lambda: "floor", lambda: "floor premint"))
    rounds, sides = versus.SEQUENTIAL_ROUNDS, ("plain", "premint", "libslurm", "floor", "floor premint")
    assert len(order) == 5 * rounds and c["loaded"] and len(py["rounds"]) == len(pm["rounds"]) == rounds
    assert len(least["plain"]["rounds"]) == len(least["premint"]["rounds"]) == rounds
    places = [order[i::5] for i in range(5)]      # who ran first, second, ... fifth in each round
    for place in places:
        assert {side: place.count(side) for side in sides} == dict.fromkeys(sides, rounds // 5), order
    # ... and each runs right after each other side equally often (twice in ten rounds)
    rounds_ = [order[i:i + 5] for i in range(0, len(order), 5)]
    after = collections.Counter((r[i], r[i + 1]) for r in rounds_ for i in range(4))
    assert set(after.values()) == {2} and len(after) == 5 * 4, after


def test_micro_benchmarks_rotate_who_goes_first():
    """taking_turns (MUNGE and codec figures): each callable leads a round in turn."""
    from pyslurmrpc.bench.timing import taking_turns

    leads, last = [], []

    def make(label):
        def fn():
            if not last or last[-1] != label:
                last.append(label)
        return fn
    labels = ("python", "libmunge", "third")
    for rounds in (3, 6):
        last.clear()
        taking_turns({label: make(label) for label in labels}, n=1, rounds=rounds)
        runs = last[len(labels):]                      # after the warm-up, one entry per run
        leads.append([runs[i] for i in range(0, len(runs), len(labels))])
    assert leads[0] == ["python", "libmunge", "third"]
    assert sorted(leads[1]) == sorted(labels * 2)


def test_sequential_measures_only_after_its_warmup():
    """A client idle until its turn began answered slower for 100-300 ms: both sides call for
    ``warmup`` seconds first, unmeasured; with no warm-up, one call still comes first."""
    import time as _time

    calls = []
    result = libslurm.sequential(lambda: calls.append(_time.perf_counter()), 5, warmup=0.05)
    assert result["calls"] == 5 and len(calls) > 5 + 10       # many unmeasured calls came first
    assert calls[-5] - calls[0] >= 0.049                       # the first measured one after it
    calls.clear()
    assert libslurm.sequential(lambda: calls.append(1), 5, warmup=0.0)["calls"] == 5
    assert len(calls) == 6


def test_libslurm_child_gets_the_same_warmup(monkeypatch):
    """The C side's child is told the warm-up, so both sides measure the steady state."""
    seen = {}

    class FakeProc:
        returncode = 0

        def __init__(self, cmd, **kw):
            seen["cmd"] = cmd

        def communicate(self, timeout=None):
            return json.dumps({"sequential_ms": {"p50": 0.4}, "cpu_us_per_call": 1.0, "calls": 3,
                               "failed": 0}), ""

        def poll(self):
            return 0
    monkeypatch.setattr(libslurm.subprocess, "Popen", FakeProc)
    libslurm.run_sequential("/lib/x.so", "conf", "ping", 0, 3)
    cmd = seen["cmd"]
    assert float(cmd[cmd.index("--warmup") + 1]) == libslurm.WARMUP_SECONDS > 0


@pytest.mark.parametrize("name, own_loader", [("26.05", True), ("20.11", False)])
def test_versus_another_release_against_its_own_libslurm(munged, name, own_loader):
    """--release 26.05: its real slurmctld, and its own libslurm run under its own loader (built for
    a newer C library than Debian 12's, it cannot be loaded into this interpreter).  --release
    20.11's libslurm was run under its tree's older loader too, where this interpreter cannot
    start (GLIBC_2.34 not found): never measured; now it runs under the machine's own."""
    from pyslurmrpc.testing import releases
    from pyslurmrpc.testing.ci import needs_root, skip_or_fail
    needs_root(pytest, "slurmctld runs with SlurmUser=root (it sets gid 0)")
    try:
        rel = releases.prepare(name)
    except releases.ReleaseUnavailable as err:
        skip_or_fail(pytest, f"Slurm {name} cannot be had here: {err}")
    path, loader = releases.libslurm_of(rel)
    assert (loader is not None) is own_loader
    report = bench("--only", "versus", "-n", "40", "--seconds", "0.3", "--munge-socket", munged.socket_path,
                   "--release", name)
    v = report["versus"]
    assert name in v["target"] and v["op"] == "ping"
    c = v["libslurm"]
    assert c["loaded"], c
    assert (c["path"], c["loader"]) == (path, loader) and (loader is None or loader.endswith("ld-linux-x86-64.so.2"))
    assert set(c["calls_per_s_by_processes"]) == {"1", "2", "4", "8"}
    rows = {f["figure"]: f for f in v["figures"]}
    for name in ("sequential_p50", "sequential_p50_premint", "cpu_per_call", "best_throughput"):
        assert rows[name]["c"] > 0 and rows[name]["ratio"] > 0, rows[name]


def test_libslurm_child_runs_under_a_loader_when_given():
    plain = libslurm.child_prefix("/x/libslurm.so")
    assert plain == [sys.executable]
    under = libslurm.child_prefix("/tree/usr/lib/slurm-wlm/libslurmfull.so", "/tree/usr/lib/ld-linux-x86-64.so.2")
    assert under == ["/tree/usr/lib/ld-linux-x86-64.so.2", "--library-path", "/tree/usr/lib:/tree/usr/lib/slurm-wlm",
                     sys.executable]
    bare = libslurm.child_prefix("libslurm.so.38", "/tree/usr/lib/ld-linux-x86-64.so.2")
    assert bare[:3] == ["/tree/usr/lib/ld-linux-x86-64.so.2", "--library-path", "/tree/usr/lib"]   # not the cwd
    cmd = libslurm._child_cmd("/l.so", "/c.conf", "ping", 1, "--mode", "sequential", loader="/ld.so")
    assert cmd[:4] == ["/ld.so", "--library-path", "/:/", sys.executable] and cmd[4:6] == ["-m", "pyslurmrpc.bench.libslurm"]


@pytest.mark.parametrize("args, says", [
    (["--libslurm-loader", "/lib64/ld-linux-x86-64.so.2"], "--libslurm-loader: name the libslurm it runs with --libslurm"),
    (["--release", "26.05", "--controller", "127.0.0.1:6817"], "give it or --controller, not both"),
    (["--release", "99.99"], "--release: unknown release '99.99' (known: 20.11, 22.05, 24.11, 26.05)"),
    (["--release", ""], "--release: name a release"),
    (["--libslurm", "/nonexistent/libslurm.so"], "--libslurm: '/nonexistent/libslurm.so' is not a file"),
    (["--slurm-conf", "/nonexistent/slurm.conf", "--controller", "127.0.0.1:6817"],
     "--slurm-conf: '/nonexistent/slurm.conf' is not a file"),
    (["--nodes", "5"], "--nodes changes only fanout, which this run does not measure (--only versus)"),
    (["--tree-width", "5"], "--tree-width changes only fanout"),
    (["--auth", "none"], "--auth changes only rpc"),
])
def test_bench_option_mistakes_are_said_without_a_traceback(args, says):
    result = subprocess.run([sys.executable, "-m", "pyslurmrpc", "bench", "--only", "versus", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr


def test_the_table_shows_each_sides_p99():
    """The premint client's median call mints nothing and one call in its depth mints them all:
    the table says what that costs the slowest calls, next to libslurm's."""
    from pyslurmrpc.bench import _render_versus

    def side(p99):
        return {"sequential_ms": {"p50": 0.4, "p90": 0.5, "p99": p99}}
    v = {"op": "ping", "target": "t", "figures": [],
         "libslurm": {"loaded": True, "path": "/x.so", **side(0.7), "calls_per_s_by_processes": {"1": 5}},
         "pyslurmrpc": {**side(0.6), "premint": {**side(0.9), "depth": 8}, "async_calls_per_s": {"1": 3},
                        "async_in_flight_per_process": 1, "async_calls_per_s_by_processes": {"1": 3}}}
    out = "\n".join(_render_versus(v))
    assert "sequential p99, ms: pyslurmrpc 0.600  with premint=8 0.900  libslurm 0.700" in out


@pytest.mark.parametrize("name, mine, ratio, met", [
    ("munge_decode", 88.3, 1.1031, False),      # prints as 1.10x in two decimals: still not met
    ("munge_decode", 88.0, 1.0999, True),
    ("sequential_p50", 0.45, 0.9, True),        # the bound itself meets it
    ("best_throughput", 4000, 0.999, False),    # at least the C side's best
    ("best_throughput", 4000, 1.0, True),
    ("checkpoint_frame_us", 10.2, None, False),  # judged by its own µs, no C side
    ("checkpoint_frame_us", 6.4, None, True),
    ("cpu_per_call", 250.0, None, None),        # no C side: nothing to judge
])
def test_each_goal_is_judged_on_the_unrounded_figure(name, mine, ratio, met):
    assert versus.goal_met(name, mine, ratio) is met


def test_the_table_says_whether_each_goal_is_met_with_three_decimals():
    from pyslurmrpc.bench import _render_versus

    def side():
        return {"sequential_ms": {"p50": 0.4, "p90": 0.5, "p99": 0.6}}
    rows = [{"figure": "munge_decode", "unit": "us", "pyslurmrpc": 88.3, "c": 80.0, "ratio": 1.104,
             "goal": versus.goal_text("munge_decode"), "met": False},
            {"figure": "checkpoint_frame_us", "unit": "us", "pyslurmrpc": 6.4, "c": None, "ratio": None,
             "goal": versus.goal_text("checkpoint_frame_us"), "met": True}]
    v = {"op": "ping", "target": "t", "figures": rows,
         "libslurm": {"loaded": True, "path": "/x.so", **side(), "calls_per_s_by_processes": {"1": 5}},
         "pyslurmrpc": {**side(), "premint": {**side(), "depth": 8}, "async_calls_per_s": {"1": 3},
                        "async_in_flight_per_process": 1, "async_calls_per_s_by_processes": {"1": 3}}}
    rows[0].update(floor=84.0, floor_ratio=1.05, floor_met=True)
    lines = _render_versus(v)
    decode = next(line for line in lines if "munge_decode" in line)
    frame = next(line for line in lines if "checkpoint_frame_us" in line)
    assert "1.104x" in decode and decode.split()[-6:] == ["84", "1.050x", "<=", "1.1", "no", "yes"]
    assert frame.split()[-9:] == ["-", "-", "-", "-", "<=", "10", "us", "yes", "-"]
    assert any(line.strip().startswith("floor: the least Python") for line in lines)


@pytest.mark.parametrize("n", range(1, 9))
def test_balanced_orders_balance_places_and_predecessors(n):
    from pyslurmrpc.bench.timing import balanced_orders
    orders = balanced_orders(n)
    assert len(orders) == (n if n % 2 == 0 else 2 * n) and all(sorted(o) == list(range(n)) for o in orders)
    for place in range(n):
        assert set(collections.Counter(o[place] for o in orders).values()) == {len(orders) // n}
    after = collections.Counter((o[i], o[i + 1]) for o in orders for i in range(n - 1))
    assert len(after) == n * (n - 1) and len(set(after.values())) <= 1
