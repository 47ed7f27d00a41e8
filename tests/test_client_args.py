"""Client(...) and from_slurm_conf(...) refuse what they cannot use when they are made, naming it,
and every error of the library survives pickling (a ProcessPoolExecutor hands errors back so)."""

from __future__ import annotations

import pickle
import re
from concurrent.futures import ProcessPoolExecutor

import pytest

from pyslurmrpc import AsyncClient, Client, InvalidArgumentError
from pyslurmrpc.auth.errors import MungeCredentialExpiredError, MungeSocketError, SlurmAuthError
from pyslurmrpc.auth.slurm_auth import NoneAuth
from pyslurmrpc.client import calls, validate
from pyslurmrpc.errors import (
    CheckpointUnsupported, ConfigError, ConnectionClosedError, ConnectionRefusedTransportError,
    NoVersionAnsweredError, ProtocolError, PyslurmrpcError, SlurmError, TruncatedError, UnreachableError,
)

CONF = "SlurmctldHost=ctl(127.0.0.1)\nSlurmctldPort=7000\nAuthType=auth/none\n"


@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize("auth, named", [(None, "not a NoneType"), (5, "not a int"), ("bogus", "'bogus'"),
                                         (object(), "not a object")])
def test_an_auth_that_is_no_authenticator_is_refused_when_the_client_is_made(cls, auth, named):
    with pytest.raises(InvalidArgumentError, match="auth must be 'munge', 'none' or an authenticator") as exc:
        cls("127.0.0.1", 7000, auth=auth)
    assert named in str(exc.value)


def test_an_authenticator_object_is_taken():
    auth = NoneAuth(uid=5, gid=5)
    assert Client("127.0.0.1", 7000, auth=auth).settings.auth is auth


class _PlainAuth:
    """An authenticator with only create/verify (slurm_auth.create_flow calls it through the runner)."""

    def __init__(self):
        self.inner = NoneAuth(uid=5, gid=5)

    def create(self, protocol_version, payload=b""):
        return self.inner.create(protocol_version, payload)

    def verify(self, envelope, protocol_version=None):
        return self.inner.verify(envelope, protocol_version)


def test_an_authenticator_with_only_create_and_verify_is_taken_and_works():
    from pyslurmrpc.fake import FakeSlurmctld, fixture_cluster
    with FakeSlurmctld(fixture_cluster(), auth=NoneAuth(uid=0, gid=0)) as ctld:
        assert Client(ctld.host, ctld.port, auth=_PlainAuth(), timeout=5).ping() is True


def test_a_bytes_auth_is_named_by_its_type_only():
    """A key passed by mistake is never echoed in the error."""
    with pytest.raises(InvalidArgumentError) as exc:
        Client("127.0.0.1", 7000, auth=b"SECRET-KEY-BYTES")
    assert "SECRET" not in str(exc.value) and "not a bytes" in str(exc.value)


@pytest.mark.parametrize("nodes, named", [({"n1": ("127.0.0.1",)}, "nodes['n1']"), ({"n1": 5}, "nodes['n1']"),
                                          (5, "nodes must be a dict"), (["n1"], "nodes must be a dict"),
                                          ({"": "127.0.0.1"}, "node names"),
                                          ({"n1": ("127.0.0.1", "7000")}, "nodes['n1'] port")])
def test_bad_nodes_are_named(nodes, named):
    with pytest.raises(InvalidArgumentError, match="nodes") as exc:
        Client("127.0.0.1", 7000, auth="none", nodes=nodes)
    assert named in str(exc.value)


def test_a_node_given_by_its_address_alone_takes_the_slurmd_port():
    client = Client("127.0.0.1", 7000, auth="none", nodes={"n1": "127.0.0.2", "n2": ("127.0.0.3", 7003),
                                                           "n3": "127.0.0.4:7004", "n4": "[::1]:7005"},
                    slurmd_port=7100)
    where = {n: (client.settings.node(n).host, client.settings.node(n).port) for n in ("n1", "n2", "n3", "n4")}
    assert where == {"n1": ("127.0.0.2", 7100), "n2": ("127.0.0.3", 7003), "n3": ("127.0.0.4", 7004),
                     "n4": ("::1", 7005)}
    pairs = Client("127.0.0.1", 7000, auth="none", nodes=[("n1", ("127.0.0.2", 7001))])
    assert pairs.settings.node("n1").port == 7001


def _controllers(client):
    return [(c.host, c.port) for c in client.settings.controllers]


def test_backups_as_host_host_port_pair_or_ipv6():
    client = Client("127.0.0.1", 7000, auth="none", backups=["b1", "b2:7002", ("b3", 7003), "::1", "[::2]:7004"])
    assert _controllers(client) == [("127.0.0.1", 7000), ("b1", 7000), ("b2", 7002), ("b3", 7003),
                                    ("::1", 7000), ("::2", 7004)]
    assert _controllers(Client("127.0.0.1", 7000, auth="none", backups=None)) == [("127.0.0.1", 7000)]


@pytest.mark.parametrize("backups, named", [("h1", "backups must be a list"), (5, "backups must be a list"),
                                            ([("h1",)], "backups items"), (["h1:x"], "backups port"),
                                            ([("h1", "7000")], "backups port")])
def test_bad_backups_are_refused_not_split_into_letters(backups, named):
    with pytest.raises(InvalidArgumentError, match=named):
        Client("127.0.0.1", 7000, auth="none", backups=backups)


@pytest.mark.parametrize("host, named", [("127.0.0.1:6817", "host must not hold a port"),
                                         ("1:2:3", "neither a host name nor an IPv6 address")])
def test_a_host_with_a_port_in_it_is_refused(host, named):
    with pytest.raises(InvalidArgumentError, match=named):
        Client(host, 7000, auth="none")


def test_ipv6_hosts_are_taken():
    assert _controllers(Client("fe80::1%lo", 7000, auth="none")) == [("fe80::1%lo", 7000)]


@pytest.mark.parametrize("ttl", ["x", -1, 1.5, True, 2**31])
def test_a_bad_auth_ttl_is_refused_when_the_client_is_made(ttl):
    with pytest.raises(InvalidArgumentError, match="auth_ttl must be None or whole seconds"):
        Client("127.0.0.1", 7000, auth_ttl=ttl)


@pytest.mark.parametrize("ttl", [None, 0, 60, 2**31 - 1])
def test_auth_ttl_taken(ttl):
    assert Client("127.0.0.1", 7000, auth_ttl=ttl).settings.auth_ttl == ttl


def test_from_slurm_conf_names_a_path_that_is_no_path():
    with pytest.raises(InvalidArgumentError, match="path must be the path of slurm.conf"):
        Client.from_slurm_conf(5)
    for bad in ("", "a\0b"):
        with pytest.raises(InvalidArgumentError, match="path must name slurm.conf"):
            Client.from_slurm_conf(bad)


def test_from_slurm_conf_overrides_are_checked_under_the_name_given(tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text(CONF)
    with pytest.raises(InvalidArgumentError, match=r"^timeout must be"):
        Client.from_slurm_conf(conf, timeout=0)
    with pytest.raises(InvalidArgumentError, match="auth_ttl must be"):
        Client.from_slurm_conf(conf, auth_ttl="x")
    with pytest.raises(InvalidArgumentError, match="auth must be"):
        Client.from_slurm_conf(conf, auth=5)
    assert Client.from_slurm_conf(conf, auth=None, timeout=None).settings.auth == "none"   # None: the file's
    with_socket = tmp_path / "socket.conf"
    with_socket.write_text(CONF + "AuthInfo=socket=/run/elsewhere.socket,ttl=50\n")
    kept = Client.from_slurm_conf(with_socket, munge_socket=None, auth_ttl=None).settings
    assert (kept.munge_socket, kept.auth_ttl) == ("/run/elsewhere.socket", 50)
    with pytest.raises(InvalidArgumentError) as exc:
        Client.from_slurm_conf(conf, port=7001, host="x")
    assert "unknown setting(s) for from_slurm_conf: host, port" in str(exc.value)
    assert "it takes timeout, " in str(exc.value) and "controllers come from the file" in str(exc.value)
    with pytest.raises(InvalidArgumentError) as exc:
        Client.from_slurm_conf(conf, tiemout=3)
    assert str(exc.value).endswith("controllers come from the file; did you mean 'timeout'?)")
    with pytest.raises(InvalidArgumentError, match="timeout and message_timeout are the same setting"):
        Client.from_slurm_conf(conf, timeout=1, message_timeout=5)
    nodes = Client.from_slurm_conf(conf, nodes={"n1": ("127.0.0.1", 7001)}).settings
    assert (nodes.node("n1").host, nodes.node("n1").port) == ("127.0.0.1", 7001)
    client = Client.from_slurm_conf(conf, timeout=3, auth="munge", auth_ttl=30, munge_socket=None)
    assert (client.settings.message_timeout, client.settings.auth, client.settings.auth_ttl) == (3.0, "munge", 30)
    assert _controllers(client) == [("127.0.0.1", 7000)]


@pytest.mark.parametrize("stick, data", [(True, 1), (False, 0), (0, 0), (1, 1)])
def test_stick_goes_out_as_libslurm_sends_it(stick, data):
    """checkpoint.c: slurm_checkpoint_restart's uint16_t stick is the op's data as given."""
    assert calls.restart(1, 0, stick=stick).body.data == data


@pytest.mark.parametrize("stick", ["yes", None, -1, 2, 65535, 1.0])
def test_a_stick_the_controller_would_ignore_is_refused(stick):
    """job_mgr.c job_restart sticks only on data == 1: a 2 was sent as 1 before, now it is said."""
    with pytest.raises(InvalidArgumentError, match="stick must be True or False"):
        calls.restart(1, 0, stick=stick)


ERRORS = [
    SlurmError(2017, details={"n1": 0, "n2": 1001}), SlurmError(2037, release="17.11"),
    CheckpointUnsupported("ctl (127.0.0.1:6817)", "22.05"),
    CheckpointUnsupported("ctl (127.0.0.1:6817)", "22.05", nodes="n[1-2]", oldest="20.11"),
    SlurmAuthError("refused", slurm_errno=1007, plugin_errno=6000, munge_error=MungeCredentialExpiredError()),
    MungeSocketError("Failed to connect", os_errno=2), ProtocolError("bad", field="header.version", offset=6),
    TruncatedError("short", field="body.image_dir", offset=40),
    ConnectionClosedError("closed", address=("127.0.0.1", 6817)), NoVersionAnsweredError("none", address=None),
    ConfigError("bad line", path="/etc/slurm.conf", line=3), InvalidArgumentError("job_id must be ..."),
    UnreachableError("no slurmctld answered (h:1: refused)",
                     failures={"h:1": ConnectionRefusedTransportError("h:1: refused", address=("h", 1))}),
]


@pytest.mark.parametrize("exc", ERRORS, ids=lambda e: type(e).__name__)
def test_every_error_pickles_whole(exc):
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc) and back.args == exc.args
    assert {k: repr(v) for k, v in vars(back).items()} == {k: repr(v) for k, v in vars(exc).items()}


def test_the_errors_listed_cover_every_constructor_kind():
    """A new error class with its own __init__ gets a row in ERRORS (or inherits the pickling)."""
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    own_init = {c for c in subclasses(PyslurmrpcError) if "__init__" in vars(c) and c.__module__.startswith("pyslurmrpc")}
    covered = {type(e) for e in ERRORS} | {b for e in ERRORS for b in type(e).__mro__}
    assert own_init - covered - {c for c in own_init if c.__name__.startswith("Munge")} == set()
    assert all("__reduce__" not in vars(c) for c in subclasses(PyslurmrpcError))


def _raise_invalid_job():
    raise SlurmError(2017)


def test_a_slurm_error_comes_back_from_a_process_pool():
    with ProcessPoolExecutor(max_workers=1) as pool:
        with pytest.raises(SlurmError) as exc:
            pool.submit(_raise_invalid_job).result(timeout=60)
    assert (exc.value.errno, exc.value.name, str(exc.value)) == (2017, "ESLURM_INVALID_JOB_ID", "Invalid job id specified")


def test_a_client_pickles_as_its_settings_and_mints_its_own_credentials(tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text(CONF)
    for client in (Client("ctl", 7000, backups=["b1:7001"], nodes={"n1": "10.0.0.1"}, timeout=3, premint=4,
                          munge_socket="/run/m.sock"),
                   AsyncClient("ctl", 7000, premint=2), Client.from_slurm_conf(conf)):
        back = pickle.loads(pickle.dumps(client))
        assert type(back) is type(client) and back.settings == client.settings
        assert back._state is not client._state and back._auth is not client._auth
        assert back._state.versions == {} and repr(back) == repr(client)
        assert back.premint_counts == client.premint_counts   # None, or nothing minted yet


def _ping_from_a_child(client) -> tuple[object, bool, object]:
    return client.premint_counts, client.ping(), client.premint_counts


def test_a_client_with_minted_credentials_pings_from_a_process_pool(slurmctld, munged):
    """The child gets the settings, never the parent's credentials: it mints its own from munged."""
    client = Client(slurmctld.host, slurmctld.port, munge_socket=munged.socket_path, premint=4, timeout=5)
    with client:
        assert client.ping() and client.ping()
        before = client.premint_counts
        assert before.taken_from_stock >= 1 and before.minted_ahead >= 4
        with ProcessPoolExecutor(max_workers=1) as pool:
            arrived, pinged, counts = pool.submit(_ping_from_a_child, client).result(timeout=60)
            assert pinged is True and pool.submit(client.ping).result(timeout=60) is True
        assert (arrived.taken_from_stock, arrived.minted_ahead, arrived.thrown_away) == (0, 0, 0)
        assert counts.minted_ahead >= 1
        assert client.premint_counts == before                  # nothing of the parent's was used


@pytest.mark.parametrize("index", [2, -1, "0", True, 1.0])
async def test_a_controller_index_out_of_range_is_named(index):
    """ping(1) with one controller was an IndexError, ping(-1) pinged the last one, ping("0") a TypeError."""
    said = f"controller must be an index from 0 (the primary) to 1, not {index!r}"
    client = Client("127.0.0.1", 1, backups=["127.0.0.1:2"], auth="none")
    for call in (client.ping, client.controller_version):
        with pytest.raises(InvalidArgumentError, match=re.escape(said)):
            call(index)
    with pytest.raises(InvalidArgumentError, match=re.escape(said)):
        await AsyncClient("127.0.0.1", 1, backups=["127.0.0.1:2"], auth="none").ping(index)


def test_compat_slurm_ping_of_a_controller_not_configured_returns_minus_one():
    """libslurm's slurm_open_controller_conn_spec fails for a dest it has no address for."""
    from pyslurmrpc import compat

    compat.slurm_init(client=Client("127.0.0.1", 1, auth="none"))
    assert compat.slurm_ping(1) == -1 and compat.slurm_ping(-1) == -1


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_a_mistyped_keyword_names_the_client_and_what_it_takes(cls):
    """It was "settings_from_args() got an unexpected keyword argument 'tiemout'"."""
    with pytest.raises(TypeError, match=re.escape(f"{cls.__name__}() got an unexpected keyword argument 'tiemout' "
                                                  "(it takes backups, auth, ")) as info:
        cls("ctl", tiemout=3)
    assert str(info.value).endswith("premint; did you mean 'timeout'?)")


def test_an_ipv6_address_is_shown_in_brackets_as_controller_takes_it():
    """Errors said "::1:7000: connection refused", which --controller cannot read back."""
    client = Client("::1", 7000, backups=[("fe80::1", 7001)], auth="none")
    assert [str(c) for c in client.settings.controllers] == ["[::1]:7000", "[fe80::1]:7001"]
    assert validate.controller_address(str(client.settings.controllers[0]), 6817) == ("::1", 7000)


@pytest.mark.parametrize("kwargs, shown", [
    ({}, "Client(ctl:7000, release found per controller)"),
    ({"protocol_version": "24.11"}, "Client(ctl:7000, release 24.11 pinned)"),
    ({"protocol_version": 0x2200, "backups": ["b1:7001"]}, "Client(ctl:7000, b1:7001, release 19.05 pinned)"),
])
def test_a_clients_repr_names_the_release_it_speaks_only_when_pinned(kwargs, shown):
    """It showed "protocol 0x2200" unpinned: the checkpoint calls' version, read as the one it speaks."""
    assert repr(Client("ctl", 7000, **kwargs)) == shown
