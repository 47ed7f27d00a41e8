"""slurm.conf reading: controllers, ports, nodes, auth, Include, errors naming file and line."""

from __future__ import annotations

import pytest

from pyslurmrpc import Client, ConfigError
from pyslurmrpc.client.config import read_slurm_conf

from fixtures_data import FIXTURES


def write(tmp_path, text, name="slurm.conf"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_recordings_cluster_conf():
    conf = read_slurm_conf(FIXTURES / "slurm.conf")
    assert [(c.name, c.addr) for c in conf.controllers] == [("localhost", "127.0.0.1")]
    assert (conf.slurmctld_port, conf.slurmd_port, conf.message_timeout) == (7817, 7818, 10)
    assert conf.munge_socket == "/opt/s19/munge.sock"
    assert conf.nodes["localhost"].addr == "127.0.0.1"
    assert conf.slurm_uid == 0


def test_slurmctldhost_forms_ranges_nodes_and_include(tmp_path):
    write(tmp_path, "NodeName=gpu[1-2] NodeAddr=10.0.0.[7-8] Port=7100-7101\n", "nodes.conf")
    path = write(tmp_path, """
# comment
slurmctldhost=ctl1(10.0.0.1)
SlurmctldHost=ctl2
SLURMCTLDPORT=6820-6823   # a range
SlurmdPort=7000
AuthType=auth/munge
AuthInfo=socket=/run/m.sock,ttl=60
MessageTimeout=5
TreeWidth=3
SomeUnknownKey=whatever
NodeName=n[01-03] CPUs=2
Include nodes.conf
PartitionName=debug Nodes=n[01-03] Default=YES
""")
    conf = read_slurm_conf(path)
    assert [(c.name, c.addr) for c in conf.controllers] == [("ctl1", "10.0.0.1"), ("ctl2", "ctl2")]
    assert (conf.slurmctld_port, conf.slurmctld_port_count) == (6820, 4)
    assert conf.munge_socket == "/run/m.sock" and conf.auth_ttl == 60
    assert conf.nodes["n02"].addr == "n02" and conf.nodes["n02"].port is None
    assert (conf.nodes["gpu2"].addr, conf.nodes["gpu2"].port) == ("10.0.0.8", 7101)
    client = Client.from_slurm_conf(path, timeout=1)
    assert client.settings.message_timeout == 1
    assert client.settings.node("gpu1").port == 7100 and client.settings.node("n01").port == 7000
    ports = {e.port for e in client.settings.controller_order(False)}
    assert len(ports) == 1 and 6820 <= ports.pop() <= 6823


def test_legacy_control_machine(tmp_path):
    path = write(tmp_path, "ControlMachine=old\nControlAddr=1.2.3.4\nBackupController=bak\n")
    conf = read_slurm_conf(path)
    assert [(c.name, c.addr) for c in conf.controllers] == [("old", "1.2.3.4"), ("bak", "bak")]


def test_slurm_conf_env(tmp_path, monkeypatch):
    path = write(tmp_path, "SlurmctldHost=envhost\nAuthType=auth/none\n")
    monkeypatch.setenv("SLURM_CONF", str(path))
    client = Client.from_slurm_conf()
    assert client.settings.controllers[0].host == "envhost" and client.settings.auth == "none"


@pytest.mark.parametrize("text, line, what", [
    ("SlurmctldHost=a\nthis is not a pair\n", 2, "expected key=value"),
    ("SlurmctldHost=a(b\n", 1, "SlurmctldHost"),
    ("SlurmctldHost=a\nSlurmctldPort=abc\n", 2, "SlurmctldPort"),
    ("SlurmctldHost=a\nNodeName=n[3-1]\n", 2, "backwards"),
    ("SlurmctldHost=a\nMessageTimeout=x\n", 2, "MessageTimeout must be a whole number"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, line, what):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        read_slurm_conf(path)
    assert info.value.line == line and str(path) in str(info.value) and what in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_slurm_conf(tmp_path / "nope.conf")


def test_controllers_built_by_hand_are_numbered_by_their_place():
    """controller_order hands out the Settings' own endpoints (no copies per call), so the
    Settings number them: a backup built with index 0 would pass for the primary."""
    from pyslurmrpc.client.core import Endpoint, Settings

    settings = Settings(controllers=(Endpoint("a", "10.0.0.1", 6817), Endpoint("b", "10.0.0.2", 6817)))
    assert [e.index for e in settings.controllers] == [0, 1]
    assert [e.name for e in settings.controller_order(use_backup=True)] == ["b", "a"]
    assert settings.controller_order(False) == list(settings.controllers)
    assert settings.controller_order(False)[0] is settings.controllers[0]


@pytest.mark.parametrize("auth_type", ["auth/slurm", "auth/jwt", "bogus"])
def test_an_authtype_the_client_cannot_speak_names_its_line(tmp_path, auth_type):
    """Every other slurm.conf problem named file and line; an unsupported AuthType named the file."""
    (tmp_path / "more.conf").write_text(f"# included\n\nAuthType={auth_type}\n")
    conf = tmp_path / "slurm.conf"
    conf.write_text(f"SlurmctldHost=c1\nInclude {tmp_path / 'more.conf'}\n")
    with pytest.raises(ConfigError) as info:
        Client.from_slurm_conf(conf)
    assert str(info.value) == (f"{tmp_path / 'more.conf'}:3: AuthType {auth_type} is not supported "
                               "(auth/munge, auth/none)")
    assert info.value.line == 3


@pytest.mark.parametrize("written, ttl", [
    ("60", 60), ("0", None), ("-5", None), ("", None),
    ("99999999999", 1215752191),            # atoi: a C long cut to a C int, as glibc does
    ("99999999999999999999", None),         # past a C long: strtol's LONG_MAX, then -1 as an int
])
def test_authinfo_ttl_is_read_as_libslurms_atoi(tmp_path, written, ttl):
    """slurm_get_auth_ttl (src/common/slurm_protocol_api.c, 22.05): atoi of what follows
    "ttl=", negative as 0 (munged's default); a client from such a file still works."""
    path = tmp_path / "slurm.conf"
    path.write_text(f"ClusterName=c\nSlurmctldHost=h(127.0.0.1)\nAuthType=auth/munge\n"
                    f"AuthInfo=socket=/run/m.sock,ttl={written}\n")
    conf = read_slurm_conf(path)
    assert conf.auth_ttl == ttl
    assert Client.from_slurm_conf(path).settings.auth_ttl == ttl
