"""pyslurmrpc's client and CLI against the real slurmctld 22.05 (Debian) and real munged."""

from __future__ import annotations

import time

import pytest

from pyslurmrpc import AsyncClient, CheckpointUnsupported, Client
from pyslurmrpc.cli import main


def test_ping_and_version_live(slurmctld, munged):
    client = Client(slurmctld.host, slurmctld.port, munge_socket=munged.socket_path, timeout=5)
    assert client.ping() is True
    assert client.controller_version() == "22.05"


def test_from_slurm_conf_live(slurmctld):
    client = Client.from_slurm_conf(slurmctld.conf_path, timeout=5)
    assert client.ping() is True


@pytest.mark.parametrize("call", [
    lambda c: c.checkpoint_able(1, 0),
    lambda c: c.checkpoint_create(1, 0, 10, "/tmp"),
    lambda c: c.checkpoint_complete(1, 0, 0, 0, None),
    lambda c: c.checkpoint_error(1, 0),
])
def test_checkpoint_against_2205_is_one_clear_line(slurmctld, munged, call):
    client = Client(slurmctld.host, slurmctld.port, munge_socket=munged.socket_path, timeout=10)
    start = time.monotonic()
    with pytest.raises(CheckpointUnsupported) as info:
        call(client)
    elapsed = time.monotonic() - start
    text = str(info.value)
    assert f"{slurmctld.host}:{slurmctld.port}" in text
    assert "Slurm 22.05" in text and "removed in Slurm 20.02" in text and "\n" not in text
    assert elapsed < 3, "a few round trips, never MessageTimeout per attempt"


async def test_async_client_verdict_live(slurmctld, munged):
    client = AsyncClient(slurmctld.host, slurmctld.port, munge_socket=munged.socket_path, timeout=10)
    assert await client.ping() is True
    with pytest.raises(CheckpointUnsupported):
        await client.checkpoint_disable(1, 0)
    assert await client.controller_version() == "22.05"


def test_cli_ping_and_checkpoint_live(slurmctld, capsys):
    assert main(["--conf", str(slurmctld.conf_path), "ping"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0].startswith("Slurmctld(primary) at ") and out.splitlines()[0].endswith(" is UP")
    code = main(["--conf", str(slurmctld.conf_path), "checkpoint", "able", "1.0"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and "checkpoint RPCs were removed in Slurm 20.02" in err
