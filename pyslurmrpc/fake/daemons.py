"""FakeSlurmctld and FakeSlurmd: the rules of :mod:`.rules` / :mod:`.node_rules` on the wire."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Optional, Union

from pyslurmrpc.auth.errors import SlurmAuthError
from pyslurmrpc.wire import Address, Message, encode_message

from . import codes
from .clock import system_clock
from .cluster import Cluster
from .forward import Forwarder
from .node_rules import NodeRules
from .plugins import RECORDED_SRUN_PID, NonePlugin, OmpiPlugin
from .rules import Controller, rc_reply
from .server import FakeDaemon
from .simulated import SimulatedPlugin

log = logging.getLogger("pyslurmrpc.fake")

#: ``--plugin`` names -> plugin factories (keyword arguments: see make_plugin)
PLUGINS = {"none": NonePlugin, "ompi": OmpiPlugin, "simulated": SimulatedPlugin}


def make_plugin(plugin: Union[str, object], cluster: Optional[Cluster] = None, *,
                srun_completes: bool = True, srun_pid: str = RECORDED_SRUN_PID):
    """A plugin instance from its name ("none", "ompi", "simulated"); objects pass through."""
    if not isinstance(plugin, str):
        return plugin
    if plugin == "ompi":
        return OmpiPlugin(srun_completes=srun_completes, srun_pid=srun_pid)
    if plugin == "simulated":
        return SimulatedPlugin(cluster.node_addrs if cluster is not None else ())
    try:
        return PLUGINS[plugin]()
    except KeyError:
        raise ValueError(f"unknown checkpoint plugin {plugin!r}; known: {', '.join(PLUGINS)}") from None


class FakeSlurmctld(FakeDaemon):
    """A slurmctld 19.05 that answers ping and every checkpoint RPC.

    ``cluster``: the jobs (default: empty); ``plugin``: "ompi", "none",
    "simulated" or a plugin object; ``clock``: callable giving whole seconds
    (e.g. :class:`~pyslurmrpc.fake.clock.SettableClock`); ``srun_completes`` /
    ``srun_pid``: the ompi srun side effect.  Other keywords: :class:`FakeDaemon`.
    """

    def __init__(self, cluster: Optional[Cluster] = None, *, plugin="ompi",
                 clock: Callable[[], int] = system_clock, srun_completes: bool = True,
                 srun_pid: str = RECORDED_SRUN_PID, **kw):
        super().__init__(**kw)
        self.cluster = cluster if cluster is not None else Cluster()
        self.plugin = make_plugin(plugin, self.cluster, srun_completes=srun_completes, srun_pid=srun_pid)
        self.controller = Controller(self.cluster, self.plugin, clock)

    async def respond(self, frame: bytes, peer: Address) -> Optional[bytes]:
        msg = self.decode_request(frame)
        if msg is None:
            return None
        try:
            verified = await self.auth.verify(msg.auth, msg.header.version)
        except SlurmAuthError as exc:
            log.info("slurmctld: refused credential (%s)", exc.slurm_errno)
            return None
        reply = self.controller.handle(verified.uid, msg.header.msg_type, msg.body)
        return await self.encode_reply(msg, reply)


class FakeSlurmd(FakeDaemon):
    """A slurmd 19.05 of node ``node`` answering REQUEST_CHECKPOINT_TASKS and ping,
    forwarding to the peers its request header lists.

    Peers are found in ``cluster.node_addrs`` (node -> (host, port)); on start
    the daemon records its own address there, so several fake slurmds on one
    cluster find each other.
    """

    accept_replayed = True  # one munged for all fake nodes: see daemon_auth

    def __init__(self, cluster: Cluster, node: str = "localhost", *, plugin="ompi", **kw):
        super().__init__(**kw)
        self.cluster = cluster
        self.node = node
        self.plugin = make_plugin(plugin, cluster)
        self.rules = NodeRules(cluster, node, self.plugin)
        self.forwarder = Forwarder(cluster.node_addrs, self.auth.verify, self.message_timeout,
                                   cluster.tree_width)

    async def start(self) -> "FakeSlurmd":
        await super().start()
        self.cluster.node_addrs[self.node] = (self.host, self.port)
        return self

    async def respond(self, frame: bytes, peer: Address) -> Optional[bytes]:
        msg = self.decode_request(frame)
        if msg is None:
            return None
        return encode_message(await self.respond_message(msg, peer))

    async def respond_message(self, msg: Message, peer: Address) -> Message:
        """The reply Message to an accepted request (a farm's nodes answer each other so)."""
        # F1/F11: forwarding starts before (and regardless of) this node's own verification
        gathering = (asyncio.ensure_future(self.forwarder.forward(msg, peer))
                     if msg.header.forward.cnt else None)
        try:
            reply = await self._local(msg)
        finally:
            entries = await gathering if gathering is not None else []
        orig = msg.header.orig_addr
        return await self.reply_message(msg, reply, flags=msg.header.flags, ret_list=tuple(entries),
                                        orig_addr=orig if (orig.addr or orig.port) else peer)

    async def _local(self, msg: Message):
        try:
            verified = await self.auth.verify(msg.auth, msg.header.version)
        except SlurmAuthError:
            return rc_reply(codes.SLURM_PROTOCOL_AUTHENTICATION_ERROR)  # R4: slurmd still answers
        return self.rules.handle(verified.uid, msg.header.msg_type, msg.body)
