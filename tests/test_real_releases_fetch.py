"""How pyslurmrpc.testing.releases obtains other Slurm releases: the archive, the private apt, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pyslurmrpc.testing import releases
from pyslurmrpc.testing.ci import skip_or_fail
from pyslurmrpc.testing.debian_apt import AptError, PrivateApt, Source, debian_archive, machine_sources
from pyslurmrpc.testing.releases import ReleaseUnavailable, prepare
from pyslurmrpc.testing.slurmctld import release_slurmctld_or_skip

DEB822 = """\
Types: deb
URIs: http://archive.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://archive.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_archive_is_the_machines_main_suite_from_deb822(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "debian.sources").write_text(DEB822)
    sources = machine_sources(tmp_path / "none.list", tmp_path / "d")
    assert [s.uri for s in sources] == ["http://archive.example/debian", "http://archive.example/debian-security"]
    found = debian_archive(sources, "bookworm")
    assert found.uri == "http://archive.example/debian"
    assert found.signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"


def test_archive_from_a_one_line_sources_list(tmp_path):
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib\n"
        "deb http://one.example/debian-security bookworm-security main\n")
    found = debian_archive(machine_sources(tmp_path / "sources.list", tmp_path / "nodir"), "bookworm")
    assert (found.uri, found.suites, found.signed_by) == ("http://one.example/debian", ("bookworm",), "/k.gpg")


def test_no_debian_archive_is_a_clear_error():
    with pytest.raises(AptError, match="no Debian main archive"):
        debian_archive([Source("http://x.example/node", ("nodistro",), ("main",))], "bookworm")
    with pytest.raises(AptError, match="no Debian main archive"):
        debian_archive([], "bookworm")


def test_this_machines_archive_is_found():
    """The harness reuses whatever URI this machine's apt already uses (none is written in the repo)."""
    found = debian_archive()
    assert found.uri.startswith(("http://", "https://")) and "main" in found.components


def test_private_apt_keeps_every_file_under_its_root(tmp_path):
    apt = PrivateApt(tmp_path / "apt", "trixie", Source("http://archive.example/debian", ("bookworm",), ("main",)))
    apt.configure()
    opts = apt._options()
    assert opts[:2] == ["-c", str(tmp_path / "apt" / "apt.conf")]
    dirs = [opts[i + 1].split("=", 1)[1] for i in range(2, len(opts), 2) if opts[i + 1].startswith("Dir::")]
    assert dirs and all(d.startswith(str(tmp_path / "apt")) for d in dirs)
    line = (tmp_path / "apt" / "sources.list").read_text()
    assert line.endswith("http://archive.example/debian trixie main\n") and line.startswith("deb ")
    assert (tmp_path / "apt" / "status").read_text() == ""
    dump = apt.run("apt-config", "dump").stdout
    assert 'Dir::State::status "%s/apt/status"' % tmp_path in dump
    assert "appstreamcli" not in dump and "PackageKit" not in dump  # the machine's hooks are cleared


def test_unknown_release_is_named():
    with pytest.raises(ReleaseUnavailable, match="unknown release '19.05'"):
        prepare("19.05")


def test_a_package_that_cannot_be_had_is_named(tmp_path, monkeypatch):
    """Through the real private apt of bullseye: libslurm36 'fails to download'; the error names it."""
    monkeypatch.setenv(releases.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(releases, "_FAILED", {})
    monkeypatch.setattr(PrivateApt, "download", lambda self, names, dest: ["libslurm36", "fonts-x"])
    with pytest.raises(ReleaseUnavailable, match=r"cannot download libslurm36 from bullseye") as info:
        prepare("20.11")
    assert "fonts-x" not in str(info.value)  # only what the release needs is named
    with pytest.raises(ReleaseUnavailable, match="libslurm36"):
        prepare("20.11")  # remembered: the next test does not wait for apt again
    assert not (tmp_path / "slurm-20.11" / releases.MARKER).exists()


def test_a_complete_cache_is_reused_without_apt(tmp_path, monkeypatch):
    monkeypatch.setenv(releases.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(releases, "_build", lambda *a: pytest.fail("rebuilt a complete cache"))
    base = tmp_path / "slurm-24.11"
    base.mkdir()
    exe = tmp_path / "prog"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (base / releases.MARKER).write_text(json.dumps({
        "format": releases.MARKER_FORMAT, "name": "24.11", "version": "24.11.5", "slurmctld": str(exe),
        "scontrol": str(exe), "plugin_dir": "/p", "suite": "trixie", "root": "/r", "packages": 1,
        "download_bytes": 2, "unavailable": []}))
    rel = prepare("24.11")
    assert (rel.version, rel.slurmctld, rel.suite) == ("24.11.5", str(exe), "trixie")


def test_fixture_fails_under_ci_when_a_release_cannot_be_had(monkeypatch):
    calls = []

    class FakePytest:
        @staticmethod
        def fail(msg):
            calls.append(("fail", msg))
            raise RuntimeError(msg)

        @staticmethod
        def skip(msg):
            calls.append(("skip", msg))
            raise RuntimeError(msg)

    import pyslurmrpc.testing.slurmctld as mod

    def missing(name):
        raise ReleaseUnavailable(f"slurm {name}: cannot download libslurm36 from bullseye")
    monkeypatch.setattr(mod, "prepare", missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(RuntimeError):
        release_slurmctld_or_skip(FakePytest, "/nonexistent.socket", "20.11")
    assert calls[0][0] == "fail" and "libslurm36" in calls[0][1]
    monkeypatch.delenv("CI")
    with pytest.raises(RuntimeError):
        release_slurmctld_or_skip(FakePytest, "/nonexistent.socket", "20.11")
    assert calls[1][0] == "skip"


def test_machine_release_is_debian_12s_own():
    rel = prepare("22.05")
    assert rel.suite is None and rel.plugin_dir is None and rel.version.startswith("22.05.")
    assert os.access(rel.slurmctld, os.X_OK) and os.access(rel.scontrol, os.X_OK)


@pytest.mark.parametrize("name", ["20.11", "24.11", "26.05"])
def test_prepared_release_is_patched_and_complete(name):
    rel = prepare(name)
    assert rel.version.startswith(name + ".") and rel.suite == releases.SUITES[name]
    assert os.path.basename(rel.slurmctld) == "slurmctld" and os.path.basename(rel.scontrol) == "scontrol"
    for program in (rel.slurmctld, rel.scontrol):
        assert releases.unresolved_libraries(program) == []
        assert releases._patchelf("--print-interpreter", program).startswith(rel.root + "/")
        assert rel.root + "/usr/lib/x86_64-linux-gnu" in releases._patchelf("--print-rpath", program)
    assert os.path.isfile(os.path.join(rel.plugin_dir, "auth_munge.so"))
    assert rel.unavailable == ()


@pytest.mark.parametrize("name", ["20.11", "24.11", "26.05"])
def test_every_library_comes_from_the_unpacked_suite(name):
    """A forced RPATH reaches the libraries' own dependencies too (a RUNPATH would let those
    fall through to Debian 12's libraries): every object the loader maps is under the release's tree."""
    rel = prepare(name)
    for program in (rel.slurmctld, rel.scontrol):
        trace = subprocess.run([program], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "LD_TRACE_LOADED_OBJECTS": "1"}).stdout
        paths = [w for line in trace.splitlines() for w in line.split() if w.startswith("/")]
        assert len(paths) > 3 and all(p.startswith(rel.root + "/") for p in paths), trace


def test_download_falls_back_to_one_package_at_a_time(tmp_path):
    """One name the suite lacks sinks a batch apt-get download; the rest still arrive, the bad one is named."""
    prepare("20.11")  # its private lists are on disk
    apt = PrivateApt(releases.release_dir("20.11") / "apt", "bullseye")
    failed = apt.download(["libmunge2", "pyslurmrpc-no-such-package"], tmp_path)
    assert failed == ["pyslurmrpc-no-such-package"]
    assert [p.name.split("_")[0] for p in tmp_path.glob("*.deb")] == ["libmunge2"]


def _releases_command(*args):
    return subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "pyslurmrpc.testing.releases",
                           *args], capture_output=True, text=True, timeout=300)


def test_the_command_runs_the_module_once_and_says_what_it_takes():
    """``python -m pyslurmrpc.testing.releases``, as the README and scripts/test run it: no runpy
    warning (the package no longer imports the module first), a usage, and a named mistake."""
    shown = _releases_command("--help")
    assert shown.returncode == 0 and "RELEASE" in shown.stdout and "20.11, 22.05, 24.11, 26.05" in shown.stdout
    wrong = _releases_command("99.1")
    assert wrong.returncode == 2 and "unknown release '99.1'" in wrong.stderr
    assert "Traceback" not in wrong.stderr + shown.stderr
    own = _releases_command("22.05")          # this machine's own: nothing to fetch
    if own.returncode == 1 and "UNAVAILABLE" in own.stderr:
        skip_or_fail(pytest, f"no slurmctld 22.05 here: {own.stderr.strip()}")
    assert own.returncode == 0, own.stderr
    assert own.stdout.startswith("slurm 22.05: 22.05.") and "(this machine's own)" in own.stdout
    assert own.stderr == ""


def test_the_testing_package_gives_its_names_on_first_use():
    import pyslurmrpc.testing as testing
    assert testing.prepare is prepare and testing.Release is releases.Release
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        testing.nothing_here
