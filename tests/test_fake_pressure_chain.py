"""The reported case (issue 14 item 8): a thousand-ish per-node FakeSlurmds in one process,
TreeWidth=1, a descriptor limit too small for the whole chain.  The call ends with a code
for every node, the process stays under its limit and logs nothing.

Against the previous code this case took minutes, hit the descriptor limit and logged
"socket.accept() out of system resource" with tracebacks by the thousand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

NODES = 300
#: the child's descriptor limit: the listeners plus fewer connections than the chain needs
NOFILE = 700
CHILD = textwrap.dedent(f"""
    import asyncio, json, logging, os, resource, time
    resource.setrlimit(resource.RLIMIT_NOFILE, ({NOFILE}, {NOFILE}))
    logging.basicConfig(level=logging.WARNING)
    from pyslurmrpc.client import AsyncClient
    from pyslurmrpc.errors import SlurmError
    from pyslurmrpc.fake import FakeSlurmd
    from pyslurmrpc.fake.farm import FARM_JOB, farm_cluster, node_names
    from pyslurmrpc.fake.limits import SLOTS
    from pyslurmrpc.hostlist import compress

    async def main():
        names = node_names({NODES})
        cluster = farm_cluster({NODES}, 1, os.getuid())
        daemons = [FakeSlurmd(cluster, n, plugin="simulated", message_timeout=1) for n in names]
        for d in daemons:
            await d.start()
        peak = 0
        async def watch():
            nonlocal peak
            while True:
                peak = max(peak, len(os.listdir("/proc/self/fd")))
                await asyncio.sleep(0.01)
        watcher = asyncio.ensure_future(watch())
        client = AsyncClient("127.0.0.1", auth="none", tree_width=1, nodes=dict(cluster.node_addrs), timeout=30)
        start = time.monotonic()
        try:
            codes = await client.checkpoint_tasks(FARM_JOB, 0, 7, None, 30, compress(names))
        except SlurmError as exc:
            codes = exc.details
        seconds = time.monotonic() - start
        watcher.cancel()
        for d in daemons:
            await d.stop()
        print(json.dumps(dict(codes=codes, peak=peak, seconds=seconds, cap=SLOTS.limit)))

    asyncio.run(main())
""")


def test_a_chain_longer_than_the_descriptors_ends_quietly_with_a_code_per_node(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(tmp_path / "stderr", "w+") as log:
        out = subprocess.run([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=log, text=True,
                             env=env, timeout=120)
        log.seek(0)
        stderr = log.read()
    assert out.returncode == 0, stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["cap"] == NOFILE // 2
    assert len(result["codes"]) == NODES
    assert result["peak"] < NOFILE
    answered = [n for n, code in result["codes"].items() if code == 0]
    assert len(answered) > NODES // 3  # the head of the chain, as far as the slots reach
    tail = stderr[-3000:]  # a flood would make pytest's explanation of the whole text take minutes
    assert stderr.count("Traceback") == 0 and stderr.count("out of system resource") == 0, tail
    assert stderr.count("no free descriptor") == 0, tail  # the cap keeps the process off its limit
    assert result["seconds"] < 30, result["seconds"]
