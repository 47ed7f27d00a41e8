"""Record and replay in the fixtures/ format.

A recordings directory holds ``NAME.request.bin`` and ``NAME.response.bin``
(every byte each side sent on one connection) and ``manifest.jsonl`` (one
JSON object per recording, with at least ``name``).

* :class:`Recordings` matches a request to a recording by decoded message
  type and body, ignoring the credential.  Several recordings may share a
  request (CHECK_ABLE on 2.0 was recorded seven times with different
  answers), so each match takes the next one in manifest order; the last
  one keeps answering once a sequence is used up.
* :class:`ReplayDaemon` serves those answers.
* :class:`RecordingProxy` sits between a client and a real daemon, keeps
  each connection's bytes and writes them into the same format.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Optional

from pyslurmrpc.errors import PyslurmrpcError
from pyslurmrpc.transport import READ_CHUNK
from pyslurmrpc.wire import Address, Message, MsgType, decode_message, encode_message

from .server import FakeDaemon

log = logging.getLogger("pyslurmrpc.fake")

MANIFEST = "manifest.jsonl"


def request_key(msg: Message) -> tuple:
    """What identifies a request for matching: its type and body fields (no credential)."""
    return (int(msg.header.msg_type), tuple(sorted(dataclasses.asdict(msg.body).items())))


@dataclass(frozen=True)
class Recording:
    """One recorded connection."""

    name: str
    request: Message = field(repr=False)
    response: bytes = field(repr=False)
    entry: dict = field(default_factory=dict, repr=False)


class Recordings:
    """Recordings indexed for matching (see the module docstring)."""

    def __init__(self, recordings: list[Recording]):
        self.recordings = list(recordings)
        self._queues: dict[tuple, deque] = {}
        for rec in self.recordings:
            self._queues.setdefault(request_key(rec.request), deque()).append(rec)

    @classmethod
    def load(cls, directory) -> "Recordings":
        """Read a recordings directory, in manifest order (unlisted pairs after, by name)."""
        directory = Path(directory)
        entries = _manifest(directory)
        listed = {e["name"] for e in entries}
        extra = sorted(p.name[:-len(".request.bin")] for p in directory.glob("*.request.bin"))
        entries += [{"name": n} for n in extra if n not in listed]
        recs = []
        for entry in entries:
            name = entry["name"]
            try:
                request = decode_message((directory / f"{name}.request.bin").read_bytes())
                response = (directory / f"{name}.response.bin").read_bytes()
            except (OSError, PyslurmrpcError) as exc:
                log.warning("recording %s skipped: %s", name, exc)
                continue
            recs.append(Recording(name, request, response, entry))
        return cls(recs)

    def match(self, request: Message) -> Optional[Recording]:
        """The next recording for ``request`` (None if nothing matches)."""
        queue = self._queues.get(request_key(request))
        if not queue:
            return None
        return queue.popleft() if len(queue) > 1 else queue[0]


def _manifest(directory: Path) -> list[dict]:
    path = directory / MANIFEST
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class ReplayDaemon(FakeDaemon):
    """Answers each request with the matching recorded response.

    The recorded bytes are sent as they are, unless ``resign`` is set or the
    request speaks another protocol version: then the recorded reply is
    re-encoded in the request's version with this daemon's credential.
    With ``verify`` the request's credential is checked first (a failure
    closes the connection); unmatched requests are closed without a reply.
    """

    def __init__(self, recordings, *, resign: bool = False, verify: bool = False, **kw):
        super().__init__(**kw)
        self.recordings = recordings if isinstance(recordings, Recordings) else Recordings.load(recordings)
        self.resign, self.verify = resign, verify
        self.served: list[str] = []

    async def respond(self, frame: bytes, peer: Address) -> Optional[bytes]:
        msg = self.decode_request(frame)
        if msg is None:
            return None
        if self.verify:
            await self.auth.verify(msg.auth, msg.header.version)
        rec = self.recordings.match(msg)
        if rec is None:
            log.info("replay: no recording for message type %s", msg.header.msg_type)
            return None
        self.served.append(rec.name)
        recorded = decode_message(rec.response)
        if not self.resign and recorded.header.version == msg.header.version:
            return rec.response
        header = dataclasses.replace(recorded.header, version=msg.header.version)
        auth = await self.auth.create(msg.header.version)
        return encode_message(Message(header, auth, recorded.body))


class Proxied(NamedTuple):
    """The two byte streams of one proxied connection."""

    name: str
    request: bytes
    response: bytes


class RecordingProxy:
    """A TCP proxy that keeps every connection's bytes (and writes them to ``directory``).

    Each connection to ``host:port`` is relayed to ``upstream`` (host, port);
    when both sides are done it is appended to :attr:`connections` and, with a
    ``directory``, NAME.request.bin / NAME.response.bin are written and a
    manifest line appended (name, target, message types, decoded bodies when
    the bytes decode).  Names are ``<prefix>_<n>`` in arrival order.
    """

    def __init__(self, upstream: tuple[str, int], directory=None, *, host: str = "127.0.0.1",
                 port: int = 0, prefix: str = "rec", timeout: float = 60.0):
        self.upstream = upstream
        self.directory = Path(directory) if directory is not None else None
        self.host, self.port, self.prefix, self.timeout = host, port, prefix, timeout
        self.connections: list[Proxied] = []
        self._count = 0
        self._server = None
        self._lock = asyncio.Lock()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def start(self) -> "RecordingProxy":
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_server(self._relay, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()

    async def _relay(self, reader, writer) -> None:
        self._count += 1
        name = f"{self.prefix}_{self._count:04d}"
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), self.timeout)
        except (OSError, asyncio.TimeoutError):
            writer.close()
            return
        sent, received = bytearray(), bytearray()
        try:
            await asyncio.gather(_pump(reader, up_writer, sent, self.timeout),
                                 _pump(up_reader, writer, received, self.timeout))
        finally:
            up_writer.close()
            writer.close()
        proxied = Proxied(name, bytes(sent), bytes(received))
        self.connections.append(proxied)
        if self.directory is not None:
            async with self._lock:  # manifest lines from concurrent connections must not interleave
                self._save(proxied)

    def _save(self, proxied: Proxied) -> None:
        name, request, response = proxied
        (self.directory / f"{name}.request.bin").write_bytes(request)
        (self.directory / f"{name}.response.bin").write_bytes(response)
        entry = {"name": name, "target": f"{self.upstream[0]}:{self.upstream[1]}",
                 "request": _describe(request), "response": _describe(response)}
        with open(self.directory / MANIFEST, "a") as fh:
            fh.write(json.dumps(entry) + "\n")


async def _pump(reader, writer, keep: bytearray, timeout: float) -> None:
    """Copy reader to writer until EOF, keeping a copy; half-close the writer at the end."""
    try:
        while True:
            data = await asyncio.wait_for(reader.read(READ_CHUNK), timeout)
            if not data:
                break
            keep += data
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, asyncio.TimeoutError):
        pass


def _describe(frame: bytes) -> Optional[dict]:
    """Message type and body of recorded bytes, for the manifest (None if they do not decode)."""
    try:
        msg = decode_message(frame)
    except PyslurmrpcError:
        return None
    try:
        type_name = MsgType(msg.header.msg_type).name
    except ValueError:
        type_name = str(msg.header.msg_type)
    return {"msg_type": type_name, "body": dataclasses.asdict(msg.body)}
