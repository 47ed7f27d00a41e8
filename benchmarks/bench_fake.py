"""Checkpoint RPCs per second through the fake slurmctld (one TCP connection per RPC).

Run: python benchmarks/bench_fake.py [seconds] [concurrency]
The fake runs in its own process (as ``pyslurmrpc fake-slurmctld`` would);
the client is raw asyncio connections sending CHECK_ABLE on job 2 step 0 and
reading the RESPONSE_CHECKPOINT.  Figures for auth/none, then auth/munge
through a private munged when one is installed (credentials pre-minted with
munged's key so the client's cost is not measured; every one is distinct,
as munged refuses replays).  Prints figures, asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from pyslurmrpc.auth.slurm_auth import NoneAuth, OfflineMungeAuth  # noqa: E402
from pyslurmrpc.transport import read_frame  # noqa: E402
from pyslurmrpc.wire import CheckOp, CheckpointMsg, Header, Message, MsgType, encode_message, version_code  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
V1905 = version_code("19.05")
BODY = CheckpointMsg(op=CheckOp.CHECK_ABLE, data=0, job_id=2, step_id=0, image_dir=None)


def request(auth) -> bytes:
    return encode_message(Message(Header(version=V1905, msg_type=MsgType.REQUEST_CHECKPOINT), auth, BODY))


def start_server(*extra: str) -> tuple[subprocess.Popen, int]:
    code = "import sys; from pyslurmrpc.fake.cli import main_fake_slurmctld; sys.exit(main_fake_slurmctld(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "--port", "0", "--plugin", "ompi", *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = proc.stdout.readline()
    return proc, int(line.rsplit(":", 1)[1])


async def one_rpc(port: int, frame: bytes) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        return await read_frame(reader) is not None
    except OSError:
        return False
    finally:
        writer.close()


async def drive(port: int, frames, seconds: float, concurrency: int) -> tuple[int, int, float]:
    """Run ``concurrency`` workers for ``seconds``; return (ok, failed, elapsed)."""
    deadline = time.perf_counter() + seconds
    counts = [0, 0]
    it = iter(frames)

    async def worker():
        while time.perf_counter() < deadline:
            try:
                frame = next(it)
            except StopIteration:
                return
            counts[0 if await one_rpc(port, frame) else 1] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts[0], counts[1], time.perf_counter() - start


def report(label: str, ok: int, failed: int, elapsed: float) -> None:
    print(f"{label:<34} {ok / elapsed:9.0f} RPC/s  ({ok} ok, {failed} failed, {elapsed:.1f} s)")


def bench_none(seconds: float, concurrency: int) -> None:
    proc, port = start_server("--auth", "none")
    try:
        frame = request(NoneAuth(uid=0, gid=0, hostname="bench").create(V1905))
        asyncio.run(drive(port, [frame] * 1000, 0.5, concurrency))  # warm up
        report("auth/none", *asyncio.run(drive(port, iter(lambda: frame, None), seconds, concurrency)))
    finally:
        proc.terminate()
        proc.wait()


def bench_munge(seconds: float, concurrency: int) -> None:
    try:
        from pyslurmrpc.testing.munged import MungedHarness
        harness = MungedHarness(num_threads=4).start()
    except Exception as exc:  # no munged here
        print(f"auth/munge: skipped ({exc})")
        return
    proc = None
    try:
        proc, port = start_server("--auth", "munge", "--munge-socket", harness.socket_path)
        minter = OfflineMungeAuth(Path(harness.key_file).read_bytes(), uid=0, gid=0)
        t0 = time.perf_counter()
        frames = [request(minter.create(V1905)) for _ in range(int(4000 * seconds))]
        print(f"  (minted {len(frames)} credentials in {time.perf_counter() - t0:.1f} s, not counted)")
        report("auth/munge (munged decode)", *asyncio.run(drive(port, frames, seconds, concurrency)))
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        harness.stop()


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    print(f"fake slurmctld, CHECK_ABLE, {concurrency} concurrent clients, {os.cpu_count()} CPUs")
    bench_none(seconds, concurrency)
    bench_munge(seconds, concurrency)


if __name__ == "__main__":
    main()
