"""slurmd's message forwarding (protocol_specs/slurmctld_checkpoint.md §12).

How a node list is cut into groups is the split the client fans out with
(:func:`pyslurmrpc.hostlist.split_treewidth`).  :class:`Forwarder` contacts the
head of each group, passing the rest of the group on in the header, and gathers the
answers as header ret_list entries.

Entry order (Slurm's depends on thread timing, uncertainty U4): groups in
split order; within a group, failure entries as they happen, then the head's
own answer followed by the entries it gathered.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Optional

from pyslurmrpc import defaults
from pyslurmrpc.client.validate import address_text
from pyslurmrpc.errors import ConnectionClosedError, PyslurmrpcError
from pyslurmrpc.hostlist import compress, expand, split_treewidth, uniq
from pyslurmrpc.wire import Address, Forward, Message, MsgType, RetEntry, decode_message, encode_message
from pyslurmrpc.wire.bodies import ForwardFailedMsg

from . import codes
from .transport import exchange


def failed(node: str, err: int) -> RetEntry:
    """A RESPONSE_FORWARD_FAILED entry (no body)."""
    return RetEntry(node_name=node, err=err, msg_type=MsgType.RESPONSE_FORWARD_FAILED, body=ForwardFailedMsg())


class Forwarder:
    """Forwards one decoded request to the nodes its header lists.

    ``node_addrs``: node name -> (host, port); ``verify``: awaitable that checks
    a reply's envelope (raises on a bad one); ``message_timeout`` in seconds;
    ``local``: (host, port) -> None, or a coroutine function answering a request
    Message with a reply Message (or None: closed unanswered) for a node served in this
    process (a farm of nodes), which is then reached without a socket or a codec pass.
    """

    def __init__(self, node_addrs: dict, verify, message_timeout: float,
                 tree_width: int = defaults.TREE_WIDTH, local=None):
        self.local = local
        self.node_addrs = node_addrs
        self.verify = verify
        self.message_timeout = message_timeout
        self.tree_width = tree_width

    async def forward(self, message: Message, sender: Address) -> list[RetEntry]:
        """Pass ``message`` on to header.forward.nodelist; return every node's entry."""
        fwd = message.header.forward
        timeout = fwd.timeout / 1000 if fwd.timeout > 0 else self.message_timeout
        results = await asyncio.gather(*(self._group(g, message, sender, timeout) for g in self.groups(message)))
        return [entry for group in results for entry in group]

    def groups(self, message: Message) -> list[list[str]]:
        """The groups header.forward.nodelist is cut into (its tree_width, else the node's TreeWidth)."""
        fwd = message.header.forward
        return split_treewidth(uniq(expand(fwd.nodelist or "")), fwd.tree_width or self.tree_width)

    async def _group(self, names: list[str], message: Message, sender: Address,
                     timeout: float) -> list[RetEntry]:
        entries: list[RetEntry] = []
        while names:
            head, rest = names[0], names[1:]
            addr = self.node_addrs.get(head)
            if addr is None:  # F5: no address known for the node
                entries.append(failed(head, codes.SLURM_UNKNOWN_FORWARD_ADDR))
                names = rest
                continue
            onward = self._onward(message, sender, rest)
            direct = self.local(*addr) if self.local is not None else None
            frame = encode_message(onward) if direct is None else None
            wait = self.head_timeout(len(rest), timeout)
            try:
                reply = (await exchange(addr[0], addr[1], frame, wait) if direct is None
                         else await self._direct(direct, onward, addr, wait))
            except (asyncio.TimeoutError, PyslurmrpcError):  # F8: next node heads the rest
                # (first: since Python 3.11 a timeout is an OSError, and taken for F6 it
                # sent the rest of a timed-out chain one by one, all at once)
                entries.append(failed(head, codes.SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT))
                names = rest
                continue
            except OSError:  # F6: head down; the rest go one by one
                entries.append(failed(head, codes.SLURM_COMMUNICATIONS_CONNECTION_ERROR))
                singles = await asyncio.gather(*(self._group([n], message, sender, timeout) for n in rest))
                return entries + [e for s in singles for e in s]
            answer = await self._answer(head, reply)
            if answer is None:
                entries.append(failed(head, codes.SLURM_PROTOCOL_AUTHENTICATION_ERROR))
                names = rest
                continue
            return entries + answer
        return entries

    def head_timeout(self, rest: int, timeout: float) -> float:
        """F4: seconds to wait for a head that forwards to ``rest`` more nodes.

        19.05 (forward.c ``_forward_thread``) counts the steps of the tree below the
        head as (rest + 1) // TreeWidth (the onward header's tree_width is 0, so the
        node's own) and waits MessageTimeout per step plus ``timeout`` per step and
        one: a node never gives up on a subtree before the subtree's own nodes could
        have (with one wait for all, a TreeWidth=1 chain restarted itself at every
        level, section F8, multiplying its connections).
        """
        if not rest:
            return timeout
        steps = (rest + 1) // self.tree_width
        return self.message_timeout * steps + timeout * (steps + 1)

    @staticmethod
    async def _direct(respond, onward: Message, addr, timeout: float) -> Message:
        """A node of this process answers ``onward`` (its own task: a TreeWidth=1 chain of
        10,000 nodes must not nest 10,000 awaits)."""
        reply = await asyncio.wait_for(asyncio.ensure_future(respond(onward)), timeout)
        if reply is None:
            raise ConnectionClosedError(f"{address_text(*addr)} closed the connection without a reply")
        return reply

    async def _answer(self, head: str, reply) -> Optional[list[RetEntry]]:
        """F9: the head's own reply plus what it gathered (None if the reply is not acceptable).
        ``reply``: a frame, or the Message a node of this process answered."""
        try:
            msg = decode_message(reply) if isinstance(reply, bytes) else reply
            await self.verify(msg.auth, msg.header.version)
        except PyslurmrpcError:
            return None
        own = RetEntry(node_name=head, err=0, msg_type=msg.header.msg_type, body=msg.body)
        return [own, *msg.header.ret_list]

    @staticmethod
    def _onward(message: Message, sender: Address, rest: list[str]) -> Message:
        """F3: same message, forward part = rest of the group, timeout/tree_width 0."""
        h = message.header
        forward = Forward(cnt=len(rest), nodelist=compress(rest), timeout=0, tree_width=0) if rest else Forward()
        orig = h.orig_addr if (h.orig_addr.addr or h.orig_addr.port) else sender
        header = dataclasses.replace(h, forward=forward, ret_list=(), orig_addr=orig)
        return dataclasses.replace(message, header=header)
