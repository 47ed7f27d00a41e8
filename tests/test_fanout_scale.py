"""Many fake slurmds behind one listening socket (pyslurmrpc.fake.farm), and the fan-out bench.

Figures are reported, never judged by time; what is checked: one loopback-only listener,
a connection is answered by the node whose address it reached, every node answers through
the tree, a chain (TreeWidth=1) stays within a few descriptors, failures are per-node codes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from pyslurmrpc.client import Client
from pyslurmrpc.errors import SlurmError
from pyslurmrpc.fake import codes
from pyslurmrpc.fake.farm import FARM_JOB, FakeSlurmdFarm, farm_cluster, node_address, node_names
from pyslurmrpc.hostlist import compress

SO_BINDTODEVICE_LEN = 16  # IFNAMSIZ


def client_for(farm, names, tree_width, extra=None):
    nodes = {n: (node_address(i), farm.port) for i, n in enumerate(names)}
    nodes.update(extra or {})
    return Client("127.0.0.1", auth="none", tree_width=tree_width, nodes=nodes)


def test_one_listening_socket_tied_to_loopback():
    names = node_names(300)
    with FakeSlurmdFarm(farm_cluster(300, 50, os.getuid()), names) as farm:
        (sock,) = farm._server.sockets
        device = sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, SO_BINDTODEVICE_LEN)
        assert device.rstrip(b"\0") == b"lo"
        addrs = {farm.cluster.node_addrs[n] for n in names}
        assert len(addrs) == 300 and {port for _, port in addrs} == {farm.port}
        assert all(host.startswith("127.") for host, _ in addrs)


def test_each_connection_is_answered_by_the_node_it_reached():
    """Only odd nodes run the step: a node's own answer tells which node answered."""
    names = node_names(20)
    cluster = farm_cluster(20, 50, os.getuid())
    step = cluster.jobs[FARM_JOB].steps[0]
    step.nodes = tuple(names[::2])  # n00001, n00003, ...
    with FakeSlurmdFarm(cluster, names) as farm:
        client = client_for(farm, names, 50)
        for i, name in enumerate(names):
            if i % 2 == 0:
                assert client.checkpoint_tasks(FARM_JOB, 0, 100 + i, None, 5, name) == {name: 0}
            else:
                with pytest.raises(SlurmError) as err:
                    client.checkpoint_tasks(FARM_JOB, 0, 100 + i, None, 5, name)
                assert err.value.details == {name: codes.ESLURM_INVALID_JOB_ID}


def test_an_address_no_node_has_is_refused_unread():
    with FakeSlurmdFarm(farm_cluster(3, 50, os.getuid()), node_names(3)) as farm:
        with socket.create_connection(("127.0.0.1", farm.port), timeout=5) as s:
            s.settimeout(5)
            try:
                assert s.recv(1) == b""
            except ConnectionResetError:
                pass  # aborted: as refused as a clean close


@pytest.mark.parametrize("tree_width", [50, 1])
def test_every_node_answers_through_the_tree(tree_width):
    names = node_names(400)
    with FakeSlurmdFarm(farm_cluster(400, tree_width, os.getuid()), names) as farm:
        client = client_for(farm, names, tree_width)
        assert client.checkpoint_tasks(FARM_JOB, 0, 7, None, 30, compress(names)) == {n: 0 for n in names}


def test_chain_failure_is_per_node_codes():
    """A node nobody serves, in the middle of a chain: its entry is an error, the rest answer."""
    names = node_names(60)
    served = names[:30] + names[31:]
    with FakeSlurmdFarm(farm_cluster(60, 1, os.getuid()), served) as farm:
        farm.cluster.node_addrs.pop(names[30], None)
        client = client_for(farm, served, 1)
        with pytest.raises(SlurmError) as err:
            client.checkpoint_tasks(FARM_JOB, 0, 9, None, 30, compress(names))
    details = err.value.details
    assert set(details) == set(names)
    assert details[names[30]] != 0
    assert all(details[n] == 0 for n in served)


def bench(*args) -> tuple[dict, str]:
    result = subprocess.run([sys.executable, "-m", "pyslurmrpc", "bench", "--json", "--only", "fanout", *args],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_bench_fanout_reports_rows_and_ratio():
    report, _ = bench("--nodes", "100", "--nodes", "1000")
    small, large = report["fanout"]
    assert (small["nodes"], large["nodes"]) == (100, 1000) and large["tree_width"] == 50
    assert large["ok"] == 1000 and large["errors"] == 0 and large["seconds"] > 0
    ratio = large["ratios"]["time(1000)/time(100)"]
    assert ratio == pytest.approx(large["seconds"] / small["seconds"], abs=0.02)
    assert "cpu(1000)/cpu(100)" in large["ratios"] and large["cpu_s_farm"] > 0


def test_bench_chain_stays_within_few_descriptors_and_quiet():
    report, stderr = bench("--nodes", "500", "--tree-width", "1")
    (row,) = report["fanout"]
    assert row["ok"] == 500
    assert row["peak_fds_farm"] < 50 and row["peak_fds_client"] < 50, row
    assert "Traceback" not in stderr
