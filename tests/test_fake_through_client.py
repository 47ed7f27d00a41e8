"""Acceptance of the fake: driven through the real client with the manifest's calls in order,
a fake seeded with the recordings' cluster (plugin ompi) gives every outcome libslurm recorded.

Both the sync and the asyncio client, over TCP, with MUNGE through a real munged.
"""

from __future__ import annotations



from pyslurmrpc import AsyncClient, Client, SlurmError
from pyslurmrpc.auth.slurm_auth import AsyncMungeAuth
from pyslurmrpc.fake import FakeSlurmctld, FakeSlurmd, SettableClock, fixture_cluster

from fixtures_data import manifest
from test_client_replay import METHODS, _expected

#: the controller's clock when the recordings were made (able_enabled's event time)
RECORDED_NOW = 1795462038




def _outcome_of(call):
    try:
        return 0, call()
    except SlurmError as exc:
        return exc.errno, str(exc)


def _check(entry, errno, result):
    expected = entry["outcome"].get("slurm_errno", 0)
    assert errno == expected, (entry["name"], result)
    if errno:
        assert result == entry["outcome"]["strerror"]
    else:
        _expected(entry, result)


def _uid_env(entry):
    return entry.get("caller_uid", 0)


def test_sync_client_through_fake_reproduces_manifest(munged):
    cluster = fixture_cluster()
    ctld = FakeSlurmctld(cluster, plugin="ompi", clock=SettableClock(RECORDED_NOW),
                         auth=AsyncMungeAuth(munged.socket_path))
    slurmd = FakeSlurmd(cluster, "localhost", plugin="ompi", auth=AsyncMungeAuth(munged.socket_path))
    with ctld, slurmd:
        nodes = {"localhost": (slurmd.host, slurmd.port)}
        for entry in manifest():
            client = _client_for(entry, Client, ctld, nodes, munged)
            method, names = METHODS[entry["function"]]
            errno, result = _outcome_of(lambda: getattr(client, method)(*[entry["args"][n] for n in names]))
            _check(entry, errno, result)


def _client_for(entry, cls, ctld, nodes, munged):
    uid = _uid_env(entry)
    if uid == 0:
        return cls(ctld.host, ctld.port, munge_socket=munged.socket_path, nodes=nodes, timeout=10)
    # an unprivileged caller: run the call as that uid through auth/none is not what
    # the recordings did; instead mint the credential offline with munged's key
    from pyslurmrpc.auth.slurm_auth import OfflineMungeAuth

    return cls(ctld.host, ctld.port, auth=OfflineMungeAuth(munged.key_file, uid=uid, gid=uid),
               nodes=nodes, timeout=10)


async def test_async_client_through_fake_reproduces_manifest(munged):
    cluster = fixture_cluster()
    ctld = FakeSlurmctld(cluster, plugin="ompi", clock=SettableClock(RECORDED_NOW),
                         auth=AsyncMungeAuth(munged.socket_path))
    slurmd = FakeSlurmd(cluster, "localhost", plugin="ompi", auth=AsyncMungeAuth(munged.socket_path))
    async with ctld, slurmd:
        nodes = {"localhost": (slurmd.host, slurmd.port)}
        for entry in manifest():
            client = _client_for(entry, AsyncClient, ctld, nodes, munged)
            method, names = METHODS[entry["function"]]
            try:
                errno, result = 0, await getattr(client, method)(*[entry["args"][n] for n in names])
            except SlurmError as exc:
                errno, result = exc.errno, str(exc)
            _check(entry, errno, result)


async def test_async_client_reaches_a_controller_by_host_name():
    """The asyncio runner looks a name up (within the connect timeout) and connects to its
    first address, as the blocking runner does; an address needs no lookup."""
    async with FakeSlurmctld(fixture_cluster()) as ctld:  # auth/none by default
        _, port = ctld.address
        for host in ("localhost", "127.0.0.1"):
            client = AsyncClient(host, port, auth="none")
            assert await client.ping(0) is True
