"""Many fake slurmds in one process behind ONE listening socket.

One listening socket per node plus the connections of a forwarding tree pass the
open-file limit long before 10,000 nodes.  Here every node has its own loopback
address in 127.0.0.0/8 (Linux routes the whole block to ``lo``), all share one port,
and a connection is handed to the node whose address it arrived at.

The socket is bound to the wildcard address but tied to the loopback device
(``SO_BINDTODEVICE``), so it never accepts from another interface; a connection
whose local address is not a node's is closed before anything is read.

Forwarding between the farm's own nodes hands the request Message to the target node
and takes its reply Message back: no socket pair per tree edge (the only descriptors
are the client's connections) and no encode/decode pass a peer in this process would
only undo.  Every frame that leaves the process (the replies of the client's first
hops, carrying every node's entry) is encoded as before, and each reply's credential
is still created and verified.  A node the farm does not serve is reached over TCP.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import os
import ipaddress
import socket
from typing import Iterable, Optional

from pyslurmrpc import defaults
from pyslurmrpc.wire import Address

from .cluster import Cluster
from .daemons import FakeSlurmd, make_plugin
from .listener import Listener
from .server import LISTEN_BACKLOG, FakeDaemon, _Connection

#: node names the bench and the command line give a farm: n00001, n00002, ... (one hostlist range)
NODE_PREFIX = "n"
NODE_DIGITS = 5
#: the job every farm node runs a step of (``python -m pyslurmrpc.fake.farm``)
FARM_JOB = 1
#: the cyclic collector's thresholds in a farm process: a call over 10,000 nodes creates
#: some 10 objects per node that live until its reply, which at the default (700) make the
#: collector run hundreds of times over an ever larger young heap
GC_THRESHOLDS = (100_000, 20, 20)
#: the first node's address; node i gets FIRST_ADDRESS + i (127.1.0.1 ... 127.1.39.16 for 10,000)
FIRST_ADDRESS = ipaddress.IPv4Address("127.1.0.1")
LOOPBACK_NET = ipaddress.IPv4Network("127.0.0.0/8")
LOOPBACK_DEVICE = b"lo"
#: the most nodes one farm serves (addresses up to 127.254.255.255, short of the broadcast)
MAX_NODES = int(ipaddress.IPv4Address("127.254.255.255")) - int(FIRST_ADDRESS)


def node_address(index: int) -> str:
    """The loopback address of the farm's ``index``-th node (0-based)."""
    if not 0 <= index < MAX_NODES:
        raise ValueError(f"node index {index} outside 0..{MAX_NODES - 1}")
    return str(FIRST_ADDRESS + index)


def loopback_listener(port: int) -> socket.socket:
    """A listening TCP socket on every 127.0.0.0/8 address and nothing else."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, LOOPBACK_DEVICE)
        except PermissionError as exc:  # never fall back to a socket other interfaces reach
            raise PermissionError(exc.errno, "cannot tie the farm's listener to the loopback device "
                                  "(SO_BINDTODEVICE needs CAP_NET_RAW before Linux 5.7)") from None
        sock.bind(("0.0.0.0", port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class FakeSlurmdFarm(FakeDaemon):
    """Fake slurmds for ``nodes`` (names), one loopback address each, one listening socket.

    On start every node's ``(address, port)`` is recorded in ``cluster.node_addrs``.
    ``plugin`` and ``auth`` are shared by all nodes (one munged, as FakeSlurmd assumes).
    """

    accept_replayed = True

    def __init__(self, cluster: Cluster, nodes: Iterable[str], *, plugin="simulated", **kw):
        kw.setdefault("host", "0.0.0.0")
        super().__init__(**kw)
        self.cluster = cluster
        shared = make_plugin(plugin, cluster)
        self.nodes: dict[str, FakeSlurmd] = {}
        self._by_address: dict[str, FakeSlurmd] = {}
        for i, name in enumerate(nodes):
            node = FakeSlurmd(cluster, name, plugin=shared, auth=self.auth,
                              message_timeout=self.message_timeout, max_msg_size=self.max_msg_size)
            node.host = node_address(i)
            sender = Address(None, int(FIRST_ADDRESS + i), 0)
            node.forwarder.local = functools.partial(self._local, sender)
            self.nodes[name] = node
            self._by_address[node.host] = node

    async def start(self) -> "FakeSlurmdFarm":
        sock = loopback_listener(self.port)
        self._server = Listener(sock, lambda slot: _Connection(self, slot), type(self).__name__)
        self.port = sock.getsockname()[1]
        for name, node in self.nodes.items():
            node.port = self.port
            self.cluster.node_addrs[name] = (node.host, self.port)
        return self

    def responder(self, transport: asyncio.BaseTransport):
        """The node owning the address the connection arrived at (None: not ours, refuse)."""
        local = transport.get_extra_info("sockname")
        node = self._by_address.get(local[0]) if local else None
        return None if node is None else node.respond

    async def respond(self, frame: bytes, peer: Address) -> Optional[bytes]:
        return None  # every connection is answered by a node (see responder)

    def _local(self, sender: Address, host: str, port: int):
        """A forwarded message to one of our own nodes is handed over without a socket."""
        node = self._by_address.get(host) if port == self.port else None
        return None if node is None else functools.partial(node.respond_message, peer=sender)


def node_names(count: int) -> list[str]:
    """``count`` node names forming one hostlist range (n00001 ...)."""
    return [f"{NODE_PREFIX}{i:0{NODE_DIGITS}d}" for i in range(1, count + 1)]


def farm_cluster(count: int, tree_width: int, uid: int) -> Cluster:
    """A cluster of ``count`` nodes running job FARM_JOB (step 0 on every node) of ``uid``."""
    cluster = Cluster(tree_width=tree_width)
    nodes = tuple(node_names(count))
    job = cluster.add_job(FARM_JOB, uid, nodes=nodes)
    job.add_step(0, nodes=nodes)
    return cluster


async def _serve(opts) -> None:
    cluster = farm_cluster(opts.nodes, opts.tree_width, opts.uid)
    farm = FakeSlurmdFarm(cluster, node_names(opts.nodes), port=opts.port, message_timeout=opts.message_timeout)
    # the nodes live as long as the process: keep the cyclic collector from rescanning them
    # on every collection (with 10,000 nodes that rescanning is most of a call's time)
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    await farm.start()
    print(f"listening on {node_address(0)}:{farm.port}", flush=True)
    await farm.serve_forever()


def main(argv=None) -> None:
    """``python -m pyslurmrpc.fake.farm --nodes N``: serve N fake slurmds (auth/none) until killed."""
    p = argparse.ArgumentParser(prog="python -m pyslurmrpc.fake.farm")
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--tree-width", type=int, default=defaults.TREE_WIDTH)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--uid", type=int, default=os.getuid(), help="owner of job FARM_JOB")
    p.add_argument("--message-timeout", type=float, default=defaults.MESSAGE_TIMEOUT)
    opts = p.parse_args(argv)
    asyncio.run(_serve(opts))


if __name__ == "__main__":
    main()
