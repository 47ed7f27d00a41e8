"""The one message-tree split (set_span) and the one set of slurm.conf defaults,
shared by the client's fan-out and the fake slurmd's forwarding."""

from __future__ import annotations

import pytest

from pyslurmrpc import defaults
from pyslurmrpc.client import config, core, fanout
from pyslurmrpc.fake import Cluster
from pyslurmrpc.fake.forward import Forwarder
from pyslurmrpc.fake.server import FakeDaemon
from pyslurmrpc.hostlist import HostlistError, compress, split_treewidth, tree_spans
from pyslurmrpc.wire import Forward, Header, Message, MsgType, version_code

WIDTHS = (1, 2, 3, 4, 5, 7, 16, 50)


def names(count: int) -> list[str]:
    return [f"n{i:03d}" for i in range(1, count + 1)]


# Worked by hand through set_span's loop (src/common/slurm_protocol_api.c, 19.05):
# width 3, 20 nodes: three passes of "take 3 (+1 head)" leave 8, a second pass
# adds 3 and 3 to the first two branches, the last 2 go under branch three.
@pytest.mark.parametrize("total,width,expected", [
    (0, 3, [0, 0, 0]),
    (3, 3, [0, 0, 0]),            # everyone fits one per branch: nobody forwards
    (4, 2, [2, 0]),               # left 4 > 2: branch 0 takes head+2, the last node heads branch 1
    (20, 3, [6, 6, 5]),
    (100, 50, [50] + [0] * 49),
    (7, 1, [6]),
])
def test_tree_spans_follow_set_span(total, width, expected):
    assert tree_spans(total, width) == expected


def test_split_keeps_order_and_every_node():
    for width in WIDTHS:
        for count in range(0, 130):
            branches = split_treewidth(names(count), width)
            assert [n for b in branches for n in b] == names(count)
            assert len(branches) <= max(width, 0) or count == 0


def test_split_refuses_a_zero_width():
    with pytest.raises(HostlistError, match="tree width"):
        split_treewidth(["a"], 0)


def forwarded(nodes: list[str], width: int) -> Message:
    fwd = Forward(cnt=len(nodes), nodelist=compress(nodes), timeout=0, tree_width=width)
    header = Header(version=version_code("19.05"), msg_type=MsgType.REQUEST_CHECKPOINT_TASKS, forward=fwd)
    return Message(header, None, None)


def fake_groups(nodes: list[str], width: int) -> list[list[str]]:
    forwarder = Forwarder({}, verify=None, message_timeout=1.0, tree_width=defaults.TREE_WIDTH)
    return forwarder.groups(forwarded(nodes, width))


def client_groups(nodes: list[str], width: int) -> list[list[str]]:
    return [[hop.node, *hop.forward_to] for hop in fanout.plan(compress(nodes), width)]


@pytest.mark.parametrize("width", WIDTHS)
def test_client_fanout_and_fake_forwarding_split_alike(width):
    for count in range(1, 130):
        nodes = names(count)
        expected = split_treewidth(nodes, width)
        assert client_groups(nodes, width) == expected, (count, width)
        assert fake_groups(nodes, width) == expected, (count, width)


def test_fake_uses_its_tree_width_when_the_header_has_none():
    nodes = names(9)
    forwarder = Forwarder({}, verify=None, message_timeout=1.0, tree_width=2)
    got = forwarder.groups(forwarded(nodes, 0))
    assert got == split_treewidth(nodes, 2) != split_treewidth(nodes, defaults.TREE_WIDTH)


def test_one_set_of_defaults(tmp_path):
    """Client settings, the slurm.conf reader and the fake all start from pyslurmrpc.defaults."""
    conf = tmp_path / "slurm.conf"
    conf.write_text("SlurmctldHost=ctl\n")
    read = config.read_slurm_conf(conf)
    from_conf = core.settings_from_conf(conf)
    from_args = core.settings_from_args("ctl")
    assert (read.slurmctld_port, read.slurmd_port, read.message_timeout, read.tcp_timeout, read.tree_width) == (
        defaults.SLURMCTLD_PORT, defaults.SLURMD_PORT, defaults.MESSAGE_TIMEOUT, defaults.TCP_TIMEOUT,
        defaults.TREE_WIDTH)
    for settings in (from_conf, from_args):
        assert settings.controllers[0].port == defaults.SLURMCTLD_PORT
        assert (settings.slurmd_port, settings.message_timeout, settings.connect_timeout, settings.tree_width) == (
            defaults.SLURMD_PORT, defaults.MESSAGE_TIMEOUT, defaults.TCP_TIMEOUT, defaults.TREE_WIDTH)
    assert Cluster().tree_width == Cluster.from_dict({}).tree_width == defaults.TREE_WIDTH
    assert FakeDaemon().message_timeout == defaults.MESSAGE_TIMEOUT


def test_treewidth_zero_in_slurm_conf_means_the_default(tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text("SlurmctldHost=ctl\nTreeWidth=0\n")
    assert config.read_slurm_conf(conf).tree_width == defaults.TREE_WIDTH
