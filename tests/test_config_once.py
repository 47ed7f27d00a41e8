"""slurm.conf and its Include files are each read once per read_slurm_conf."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pyslurmrpc.client import config


def test_each_file_is_read_once(tmp_path, monkeypatch):
    (tmp_path / "nodes.conf").write_text("NodeName=n[1-2] NodeAddr=10.0.0.[1-2] Port=7001\n")
    conf = tmp_path / "slurm.conf"
    conf.write_text("SlurmctldHost=ctl\nInclude nodes.conf\nTreeWidth=4\n")
    reads = Counter()
    original = config._Budget.take

    def counting(self, path, origin=None):
        reads[Path(path).name] += 1
        return original(self, path, origin)

    monkeypatch.setattr(config._Budget, "take", counting)
    read = config.read_slurm_conf(conf)
    assert read.nodes["n2"] == config.NodeAddress("10.0.0.2", 7001) and read.tree_width == 4
    assert reads == {"slurm.conf": 1, "nodes.conf": 1}
