"""checkpoint_tasks' fan-out to slurmd, as libslurm does it, without I/O.

slurm_send_recv_msgs (src/common/forward.c start_msg_tree) sorts and
de-duplicates the node list, splits it into first hops, each carrying a
forward list in its header (:func:`pyslurmrpc.hostlist.split_treewidth`, the
split the fake slurmd forwards with too), and gathers every node's answer from the first
hops' replies (their ret_list plus their own answer).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hostlist import compress, expand, split_treewidth, uniq
from ..slurm_errno import SlurmErrno
from ..wire import Forward, Message, MsgType

#: slurm_get_return_code: a node that could not be reached counts as this code
SLURM_COMMUNICATIONS_CONNECTION_ERROR = int(SlurmErrno.SLURM_COMMUNICATIONS_CONNECTION_ERROR)
#: errno of a node name slurm.conf does not know (forward.c records it as FORWARD_FAILED)
SLURM_UNKNOWN_NODE = int(SlurmErrno.SLURM_UNKNOWN_FORWARD_ADDR)


@dataclass(frozen=True)
class Hop:
    """One message to send: the node it goes to and the nodes it must forward to."""

    node: str
    forward_to: tuple[str, ...] = ()

    def forward(self, timeout_ms: int, tree_width: int) -> Forward:
        if not self.forward_to:
            return Forward()
        return Forward(cnt=len(self.forward_to), nodelist=compress(self.forward_to),
                       timeout=timeout_ms, tree_width=tree_width)


def plan(nodelist: str, tree_width: int) -> list[Hop]:
    """The first hops for a hostlist expression (sorted, de-duplicated like hostlist_uniq)."""
    return [Hop(head, tuple(rest)) for head, *rest in split_treewidth(uniq(expand(nodelist)), tree_width)]


def node_codes(hop: Hop, reply: Message) -> dict[str, int]:
    """Every node's code from one first hop's reply: its ret_list, then its own answer."""
    codes = {entry.node_name: entry_code(entry.msg_type, entry.err, entry.body)
             for entry in reply.header.ret_list}
    codes[hop.node] = entry_code(reply.msg_type, 0, reply.body)
    return codes


def entry_code(msg_type: int, err: int, body) -> int:
    """slurm_get_return_code for one answer (FORWARD_FAILED always counts as a connection error)."""
    if msg_type == MsgType.RESPONSE_FORWARD_FAILED:
        return SLURM_COMMUNICATIONS_CONNECTION_ERROR
    if msg_type == MsgType.RESPONSE_SLURM_RC:
        return body.return_code
    return 0


def missing(hop: Hop, codes: dict[str, int]) -> list[Hop]:
    """Nodes a first hop should have reported but did not: sent directly, as forward.c does."""
    return [Hop(n) for n in hop.forward_to if n not in codes]


def overall(codes: dict[str, int]) -> int:
    """The call's result: the highest per-node code (0 when every node succeeded).

    libslurm keeps the last non-zero code in the order its threads finished,
    which is not deterministic across nodes; the highest is one of the codes
    libslurm can return and does not depend on timing.
    """
    return max(codes.values(), default=0)
