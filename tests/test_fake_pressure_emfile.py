"""Fake daemons in a process out of descriptors (issue 14 item 8): they pause accepting,
log one line for the whole process (never a traceback per listener per second) and serve
again once descriptors are free.

Run against the previous server (asyncio's own accept loop) this test failed: 20
listeners logged "socket.accept() out of system resource" with a traceback, each
about once a second.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import textwrap
import time

from pyslurmrpc.transport import recv_frame
from pyslurmrpc.wire import decode_message

from test_fake_server import frame

LISTENERS = 20
#: how long the daemons stay without a free descriptor while clients keep connecting
STARVED = 2.5
#: how soon after descriptors are free again a ping must be answered (ACCEPT_BACKOFF_MAX plus margin)
RECOVERY = 3.0

CHILD = textwrap.dedent(f"""
    import asyncio, logging, os, sys
    from pyslurmrpc.fake import FakeSlurmctld, fixture_cluster
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    async def main():
        loop = asyncio.get_running_loop()
        lines = asyncio.Queue()
        loop.add_reader(0, lambda: lines.put_nowait(sys.stdin.readline()))
        daemons = [FakeSlurmctld(fixture_cluster(), message_timeout=2) for _ in range({LISTENERS})]
        for d in daemons:
            await d.start()
        print(" ".join(str(d.port) for d in daemons), flush=True)
        hog = []
        try:
            while True:
                hog.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        print("exhausted", flush=True)
        await lines.get()
        for fd in hog:
            os.close(fd)
        print("free", flush=True)
        await lines.get()
        for d in daemons:
            await d.stop()

    asyncio.run(main())
""")


def readline(proc, timeout=30.0) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the child said nothing"
    return proc.stdout.readline().strip()


def ping(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=RECOVERY) as s:
        s.settimeout(RECOVERY)
        s.sendall(frame())
        return decode_message(recv_frame(s)).body.return_code


def test_out_of_descriptors_pauses_quietly_and_recovers(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    log = open(tmp_path / "stderr", "w+")  # a file: a flood must not block the child on a full pipe
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=log, text=True, env=env)
    waiting = []
    try:
        ports = [int(p) for p in readline(proc).split()]
        assert readline(proc) == "exhausted"
        end = time.monotonic() + STARVED
        while time.monotonic() < end:  # connections the daemons cannot accept: queued in the backlog
            waiting += [socket.create_connection(("127.0.0.1", port), timeout=5) for port in ports]
            time.sleep(0.5)
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert readline(proc) == "free"
        start = time.monotonic()
        assert all(ping(port) == 0 for port in ports)
        assert time.monotonic() - start < RECOVERY
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.communicate(timeout=30)
    finally:
        for s in waiting:
            s.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        log.seek(0)
        stderr = log.read()
        log.close()
    tail = stderr[-3000:]  # a flood would make pytest's explanation of the whole text take minutes
    assert proc.returncode == 0, tail
    assert stderr.count("Traceback") == 0, tail
    lines = [line for line in stderr.splitlines() if "accept" in line]
    assert len(lines) == 1, tail  # one line for the whole process per EXHAUSTED_LOG_INTERVAL
    assert "no free descriptor" in lines[0]
