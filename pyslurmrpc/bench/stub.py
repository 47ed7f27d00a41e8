"""A minimal controller for measuring the client alone: it answers every request with a
RESPONSE_CHECKPOINT built in advance, each with its own fresh MUNGE credential minted
before the measurement starts, and checks nothing.  It stands in for a C slurmctld whose
per-request cost is negligible next to the client's, so the figures are the client's.

Run: ``python -m pyslurmrpc.bench.stub [--munge-socket PATH] [--count N]``; prints
``listening on HOST:PORT`` once the credentials are ready.
"""

from __future__ import annotations

import argparse
import asyncio

from ..auth.slurm_auth import MungeAuth, NoneAuth
from ..transport import read_frame
from ..defaults import CHECKPOINT_VERSION
from ..wire import CheckpointRespMsg, Header, Message, MsgType, encode_message, version_code

VERSION = version_code(CHECKPOINT_VERSION)


def replies(auth, count: int) -> list[bytes]:
    body = CheckpointRespMsg(event_time=0, error_code=0, error_msg=None)
    header = Header(VERSION, MsgType.RESPONSE_CHECKPOINT)
    return [encode_message(Message(header, auth.create(VERSION), body)) for _ in range(count)]


async def serve(frames: list[bytes]) -> None:
    queue = iter(frames)

    async def handle(reader, writer):
        if await read_frame(reader) is None:  # the client gave up before sending a whole request
            writer.close()
            return
        reply = next(queue, None)  # all pre-signed replies used: close unanswered
        if reply is not None:
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    await server.serve_forever()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m pyslurmrpc.bench.stub")
    p.add_argument("--munge-socket")
    p.add_argument("--count", type=int, default=20000)
    opts = p.parse_args(argv)
    auth = MungeAuth(opts.munge_socket) if opts.munge_socket else NoneAuth(uid=0, gid=0)
    asyncio.run(serve(replies(auth, opts.count)))


if __name__ == "__main__":
    main()
