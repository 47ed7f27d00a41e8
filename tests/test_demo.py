"""``pyslurmrpc demo`` runs every operation through the real client, with and without munged."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

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
    assert lines[-1].startswith("image records written (") and "42.0/image.json" in lines[-1]
    able = [line for line in lines if line.startswith("checkpoint_able(42, 0)")]
    assert able[0].endswith("-> 0 (able; no checkpoint begun)")
    began = re.search(r"-> (\d+) \(able; a checkpoint began (.+) UTC\)$", able[2])
    assert began and time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(began[1]))) == began[2]


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


def test_demo_image_records_go_to_a_temporary_directory_by_default(tmp_path):
    lines = _lines(munge_socket=str(tmp_path / "no-munged-here"))
    assert "(in a temporary directory, removed now; --image-dir DIR keeps them)" in lines[-1]


def test_demo_keeps_the_image_records_in_image_dir(tmp_path):
    kept = tmp_path / "kept" / "images-here"
    lines = _lines(munge_socket=str(tmp_path / "no-munged-here"), image_dir=str(kept))
    assert lines[-1].startswith(f"image records written (under {kept}): ")
    record = kept / "images" / "42.0" / "image.json"
    assert record.is_file() and "42" in record.read_text()


def _demo_cli(*args):
    return subprocess.run([sys.executable, "-m", "pyslurmrpc", "demo", *args],
                          capture_output=True, text=True, timeout=120)


def test_demo_refuses_an_image_dir_it_cannot_use_in_one_line(tmp_path):
    """Nothing the user had may be overwritten, and a bad directory is named, without a traceback."""
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep me")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for target, reason in ((full, "is not empty; give a new or empty directory"),
                           (a_file, "not a directory"), (a_file / "sub", "Not a directory")):
        result = _demo_cli("--munge-socket", str(tmp_path / "x"), "--image-dir", str(target))
        assert result.returncode == 2 and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("pyslurmrpc demo: error: ")
        assert str(target) in result.stderr and reason in result.stderr and "Traceback" not in result.stderr
    assert os.listdir(full) == ["mine.txt"] and (full / "mine.txt").read_text() == "keep me"
