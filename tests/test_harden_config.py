"""slurm.conf: bad bytes and values are ConfigErrors naming file and line, bounded in time (issue 14 items 6, 7)."""

from __future__ import annotations

import time

import pytest

from pyslurmrpc.client import config
from pyslurmrpc.errors import ConfigError

BASE = "SlurmctldHost=ctl\n"


def conf(tmp_path, text, name="slurm.conf"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_binary_bytes_name_the_line(tmp_path):
    path = conf(tmp_path, BASE.encode() + b"ClusterName=a\xff\xfeb\n")
    with pytest.raises(ConfigError, match="0xff is not text") as exc:
        config.read_slurm_conf(path)
    assert exc.value.line == 2 and exc.value.path == str(path)


@pytest.mark.parametrize("line, needle", [
    ("MessageTimeout=\u00b2", "^.*: MessageTimeout must be a whole number"),   # '²'.isdigit() is True
    ("MessageTimeout=\u0663", "MessageTimeout must be a whole number"),         # Arabic-Indic three
    ("MessageTimeout=0", "MessageTimeout must be from 1 to 65535, not 0"),      # was "messagetimeout"
    ("MessageTimeout=65536", "not 65536"),
    ("TCPTimeout=0", "TCPTimeout must be from 1"),
    ("SlurmdPort=99999", "from 1 to 65535, not 99999"),
    ("SlurmdPort=0", "from 1 to 65535, not 0"),
    ("SlurmctldPort=70000", "out of range"),
    ("SlurmctldPort=\u00b2", "not a port"),
    ("TreeWidth=65534", "TreeWidth must be from 0 to 65533"),
    ("NodeName=n1 Port=99999", "Port of NodeName"),
])
def test_bad_numbers_are_config_errors(tmp_path, line, needle):
    with pytest.raises(ConfigError, match=needle) as exc:
        config.read_slurm_conf(conf(tmp_path, BASE + line + "\n"))
    assert exc.value.line == 2


@pytest.mark.parametrize("line, attr, value", [("MessageTimeout=1", "message_timeout", 1),
                                                ("MessageTimeout=65535", "message_timeout", 65535),
                                                ("SlurmdPort=65535", "slurmd_port", 65535),
                                                ("TreeWidth=0", "tree_width", 50),
                                                ("TreeWidth=65533", "tree_width", 65533)])
def test_limits_themselves_are_accepted(tmp_path, line, attr, value):
    assert getattr(config.read_slurm_conf(conf(tmp_path, BASE + line + "\n")), attr) == value


def test_error_quotes_a_huge_line_capped(tmp_path):
    huge = "x" * (5 << 20)
    with pytest.raises(ConfigError) as exc:
        config.read_slurm_conf(conf(tmp_path, BASE + huge + "\n"))
    assert len(str(exc.value)) < 400 and f"({len(huge)} characters)" in str(exc.value)


def test_error_quotes_a_huge_value_capped(tmp_path):
    with pytest.raises(ConfigError) as exc:
        config.read_slurm_conf(conf(tmp_path, BASE + "MessageTimeout=" + "9x" * 100000 + "\n"))
    assert len(str(exc.value)) < 400


def test_include_fan_out_is_bounded(tmp_path):
    """Eight Includes per file, six deep: 262,144 reads unbounded; refused after MAX_INCLUDE_FILES."""
    for level in range(6):
        target = "leaf.conf" if level == 5 else f"l{level + 1}.conf"
        conf(tmp_path, f"Include {target}\n" * 8, f"l{level}.conf")
    conf(tmp_path, "TreeWidth=3\n", "leaf.conf")
    conf(tmp_path, BASE + "Include l0.conf\n")
    start = time.monotonic()
    with pytest.raises(ConfigError, match=f"more than {config.MAX_INCLUDE_FILES} files"):
        config.read_slurm_conf(tmp_path / "slurm.conf")
    assert time.monotonic() - start < 3


def test_include_bytes_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "MAX_CONF_BYTES", 1000)
    conf(tmp_path, "ClusterName=" + "c" * 600 + "\n", "part.conf")
    conf(tmp_path, BASE + "Include part.conf\nInclude part.conf\n")
    with pytest.raises(ConfigError, match="more than 1000 bytes"):
        config.read_slurm_conf(tmp_path / "slurm.conf")


def test_a_few_includes_still_work(tmp_path):
    conf(tmp_path, "TreeWidth=3\n", "leaf.conf")
    conf(tmp_path, BASE + "Include leaf.conf\n" * 20)
    assert config.read_slurm_conf(tmp_path / "slurm.conf").tree_width == 3


def test_defaults_of_a_minimal_slurm_conf(tmp_path):
    """Every client-side default of read_config.h (19.05) when slurm.conf names only the controller."""
    conf_ = config.read_slurm_conf(conf(tmp_path, BASE))
    assert (conf_.slurmctld_port, conf_.slurmctld_port_count, conf_.slurmd_port) == (6817, 1, 6818)
    assert (conf_.message_timeout, conf_.tcp_timeout, conf_.tree_width) == (10, 2, 50)
    assert (conf_.auth_type, conf_.auth_info, conf_.munge_socket) == ("auth/munge", None, None)
    assert conf_.slurm_user == "root" and conf_.slurm_uid == 0
    assert [(c.name, c.addr) for c in conf_.controllers] == [("ctl", "ctl")]


def test_client_from_minimal_slurm_conf_uses_those_defaults(tmp_path):
    from pyslurmrpc import Client

    settings = Client.from_slurm_conf(conf(tmp_path, BASE)).settings
    assert (settings.controllers[0].port, settings.slurmd_port, settings.tree_width) == (6817, 6818, 50)
    assert (settings.message_timeout, settings.connect_timeout, settings.auth) == (10, 2, "munge")


def test_an_include_that_cannot_be_read_names_the_line_that_included_it(tmp_path):
    """It named only the missing file, though the README promises the file and line."""
    conf(tmp_path, "MessageTimeout=5\nInclude /nonexistent/more.conf\n", "part.conf")
    path = conf(tmp_path, BASE + f"Include {tmp_path / 'part.conf'}\n")
    with pytest.raises(ConfigError) as exc:
        config.read_slurm_conf(path)
    assert str(exc.value) == ("/nonexistent/more.conf: cannot read: No such file or directory "
                              f"(Include at {tmp_path / 'part.conf'}:2)")


def test_includes_nested_too_deeply_name_the_include_line(tmp_path):
    conf(tmp_path, "Include self.conf\n", "self.conf")
    with pytest.raises(ConfigError, match="Include nested too deeply") as exc:
        config.read_slurm_conf(conf(tmp_path, BASE + "Include self.conf\n"))
    assert exc.value.path == str(tmp_path / "self.conf") and exc.value.line == 1


def test_an_address_without_its_controller_is_named_as_slurm_conf_spells_them(tmp_path):
    """It said "backupaddr given without backupcontroller"."""
    with pytest.raises(ConfigError, match="BackupAddr given without BackupController") as exc:
        config.read_slurm_conf(conf(tmp_path, "ControlMachine=ctl\nBackupAddr=10.0.0.2\n"))
    assert exc.value.line == 2
