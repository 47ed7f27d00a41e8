"""``pyslurmrpc demo`` runs every operation through the real client, with and without munged."""

from __future__ import annotations

import subprocess
import sys

from pyslurmrpc.cli.demo import run

OPERATIONS = ("ping()", "controller_version()", "checkpoint_able", "checkpoint_disable", "checkpoint_enable",
              "checkpoint_create", "checkpoint_tasks", "checkpoint_task_complete", "checkpoint_complete",
              "checkpoint_error", "checkpoint_requeue", "checkpoint_vacate", "checkpoint_restart")


def _lines(**kw):
    lines = []
    assert run(out=lines.append, **kw) == 0
    return lines


def _check(lines):
    text = "\n".join(lines)
    for op in OPERATIONS:
        assert op in text
    assert "checkpoint_error(42, 0)" in text and "-> (5, 'disk quota exceeded')" in text
    assert "-> {'n1': 0, 'n2': 0}" in text
    assert "ESLURM_DISABLED" in text and "ESLURM_INVALID_JOB_ID" in text and "ESLURM_JOB_PENDING" in text
    assert lines[-1].startswith("image records written: ") and "42.0/image.json" in lines[-1]


def test_demo_without_munged(tmp_path):
    lines = _lines(munge_socket=str(tmp_path / "no-munged-here"))
    assert "auth/none" in lines[1]
    _check(lines)


def test_demo_with_munged(munged):
    lines = _lines(munge_socket=munged.socket_path)
    assert "auth/munge" in lines[1]
    _check(lines)


def test_demo_command_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pyslurmrpc", "demo", "--munge-socket", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "checkpoint_restart" in result.stdout
