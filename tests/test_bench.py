"""``pyslurmrpc bench`` runs and reports every part (figures are not judged here: benchmarks
print figures, tests only check that they are produced)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def bench(*args):
    result = subprocess.run([sys.executable, "-m", "pyslurmrpc", "bench", *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_json_all_parts(munged):
    report = json.loads(bench("--json", "-n", "60", "--seconds", "0.2", "--munge-socket", munged.socket_path))
    assert report["versus"]["figures"]  # the side-by-side part runs by default
    assert {r["message"] for r in report["codec"]} >= {"REQUEST_CHECKPOINT", "RESPONSE_SLURM_RC"}
    assert all(r["decode_plus_encode_us"] > 0 for r in report["codec"])
    labels = {r["label"] for r in report["munge"]}
    assert {"pure-Python encode", "pure-Python decode"} <= labels
    by = {r["label"]: r["us"] for r in report["munge"]}      # the text's ratios are in --json too
    assert report["munge_ratios"] == {op: round(by[f"pure-Python {op}"] / by[f"libmunge munge_{op} (C)"], 3)
                                      for op in ("encode", "decode")}
    servers = {(r["auth"], r["server"]) for r in report["rpc"]}
    assert servers == {("none", "fake slurmctld"), ("none", "pre-signed stub"),
                       ("munge", "fake slurmctld"), ("munge", "pre-signed stub")}
    for r in report["rpc"]:
        assert set(r["async_calls_per_s"]) == {"1", "8", "32", "128"}
        assert r["sequential_ms"]["p50"] > 0


def test_bench_table_against_a_given_controller():
    from pyslurmrpc.fake import FakeSlurmctld
    from pyslurmrpc.bench.rpc import CLUSTER_TOML
    from pyslurmrpc.fake import Cluster
    import tomllib

    cluster = Cluster.from_dict(tomllib.loads(CLUSTER_TOML))
    with FakeSlurmctld(cluster, plugin="simulated") as ctld:
        out = bench("--only", "rpc", "--auth", "none", "-n", "40", "--controller", f"{ctld.host}:{ctld.port}")
    assert f"round trips, checkpoint_able, auth=none, server: {ctld.host}:{ctld.port}" in out
    assert "asyncio calls/s by calls in flight: 1:" in out and "sequential: p50" in out


def test_rpc_part_against_a_real_22_05_times_ping_and_keeps_a_refused_auth_as_a_row(slurmctld, munged):
    """The README's `bench --controller` against Debian's 22.05: auth/none is refused by the
    munge-secured controller - said in that row, the munge row still measured; with no
    checkpoint RPCs there (20.02 removed them) the call timed is ping, as versus does."""
    for r in (p := json.loads(bench("--only", "rpc", "--json", "-n", "40", "--controller",
                                    f"127.0.0.1:{slurmctld.port}", "--munge-socket", str(munged.socket_path))))["rpc"]:
        assert r["server"] == f"127.0.0.1:{slurmctld.port}"
    rows = {r["auth"]: r for r in p["rpc"]}
    assert rows["none"]["skipped"].startswith("NoVersionAnsweredError: ") and "authentication" in rows["none"]["skipped"]
    assert rows["munge"]["op"] == "ping" and rows["munge"]["sequential_ms"]["p50"] > 0
    assert set(rows["munge"]["async_calls_per_s"]) == {"1", "8", "32", "128"}


def test_rpc_part_against_an_ipv6_controller():
    """--controller [::1]:PORT is kept as (host, port): its "::1:PORT" text is no address to parse again."""
    from pyslurmrpc.fake import FakeSlurmctld
    from pyslurmrpc.bench.rpc import CLUSTER_TOML
    from pyslurmrpc.fake import Cluster
    import tomllib

    with FakeSlurmctld(Cluster.from_dict(tomllib.loads(CLUSTER_TOML)), plugin="simulated", host="::1") as ctld:
        report = json.loads(bench("--only", "rpc", "--auth", "none", "-n", "20", "--json",
                                  "--controller", f"[::1]:{ctld.port}"))
    assert [(r["op"], r["sequential_ms"]["p50"] > 0) for r in report["rpc"]] == [("checkpoint_able", True)]


@pytest.mark.parametrize("bad", ["nohost:abc", "127.0.0.1:70000", "[::1"])
def test_a_bad_controller_is_refused_before_anything_runs(bad):
    result = subprocess.run([sys.executable, "-m", "pyslurmrpc", "bench", "--only", "versus", "--controller", bad],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result
    assert "--controller" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
