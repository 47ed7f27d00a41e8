"""Run a real, throw-away slurmctld (Debian 12's Slurm 22.05.8, or another release) for tests.

>>> with MungedHarness() as m:
...     with SlurmctldHarness(m.socket_path) as ctld:
...         wire_ping(ctld.host, ctld.port, MungeAuth(m.socket_path))
...     with SlurmctldHarness(m.socket_path, release="24.11") as ctld:   # or release=prepare("24.11")
...         ctld.scontrol("ping")        # trixie's own scontrol 24.11

Other releases come from :mod:`.releases` (Debian's packages of other suites,
unpacked into a cache); their controller gets ``PluginDir`` set to the
unpacked plugins and is compared with the same release's scontrol.

The controller gets its own slurm.conf, state directory, pid and log file in a
private temporary directory, listens on a free port (on every address: slurmctld binds
INADDR_ANY, and slurm.conf can only move it to the host name's address), authenticates
through the given munged (``AuthInfo=socket=...``), runs in the foreground
(``-D``) as our child, and is stopped by its own pid.  Nothing outside the
temporary directory is touched.

The socket helpers it uses live in :mod:`.netio` (re-exported here for the
tests), the message hash in :mod:`pyslurmrpc.auth.msg_hash`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional


from pyslurmrpc.wire import MsgType
from pyslurmrpc.wire.versions import without_patch_level

from .netio import (  # noqa: F401  (re-exported)
    ANY_ADDRESS, IO_TIMEOUT, LOOPBACK, Transcript, exchange, free_port, message_hash, ping_frame, port_free,
    wire_ping,
)
from .ci import needs_root
from .process import ChildHarness, find_program, is_executable, is_socket, start_or_skip
from .releases import Release, ReleaseUnavailable, as_release, prepare

#: where Debian installs slurmctld when it is not on PATH
SLURMCTLD_CANDIDATES = ("/usr/sbin/slurmctld", "/usr/local/sbin/slurmctld")
SCONTROL_CANDIDATES = ("/usr/bin/scontrol", "/usr/local/bin/scontrol")
START_TIMEOUT = 30.0        # seconds to wait for the first answered ping
SCONTROL_PING_TIMEOUT = 10.0   # one readiness ping of a release's own scontrol
POLL_INTERVAL = 0.05


class SlurmctldNotFound(RuntimeError):
    """No slurmctld executable on this machine."""


class SlurmctldStartError(RuntimeError):
    """slurmctld exited or did not answer a ping in time (log attached)."""


def find_slurmctld() -> str:
    """Path of the slurmctld executable, or raise :class:`SlurmctldNotFound`."""
    found = find_program("slurmctld", SLURMCTLD_CANDIDATES)
    if not found:
        raise SlurmctldNotFound(
            "slurmctld not found (Debian 12: apt-get install -y slurmctld slurm-client munge)")
    return found


def find_scontrol() -> str:
    """Path of Debian's scontrol, or raise :class:`SlurmctldNotFound`."""
    found = find_program("scontrol", SCONTROL_CANDIDATES)
    if not found:
        raise SlurmctldNotFound("scontrol not found (Debian 12: apt-get install -y slurm-client)")
    return found


def slurmctld_version(binary: Optional[str] = None) -> str:
    """The release of a slurmctld binary, e.g. "22.05.8" (from ``slurmctld -V``)."""
    out = subprocess.run([binary or find_slurmctld(), "-V"], capture_output=True, text=True,
                         timeout=30).stdout.split()
    return out[-1] if out else ""


# ---------------------------------------------------------------------------
# the harness
# ---------------------------------------------------------------------------
SLURM_CONF = """\
# written by pyslurmrpc.testing.slurmctld for a throw-away test controller
ClusterName={cluster_name}
SlurmctldHost=localhost({host})
SlurmctldPort={port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={workdir}/state
SlurmdSpoolDir={workdir}/slurmd
SlurmctldPidFile={workdir}/slurmctld.pid
SlurmdPidFile={workdir}/slurmd.pid
SlurmctldLogFile={workdir}/slurmctld.log
SlurmdLogFile={workdir}/slurmd.log
SlurmctldDebug=debug2
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
NodeName={node_name} NodeAddr={host} NodeHostname={node_name} CPUs=1 RealMemory=100 State=UNKNOWN
PartitionName=debug Nodes={node_name} Default=YES MaxTime=INFINITE State=UP
{extra_conf}"""


class SlurmctldHarness(ChildHarness):
    """A slurmctld child process with its own slurm.conf, state and log.

    ``munge_socket`` must be the socket of the munged whose key our clients
    use (e.g. :class:`~pyslurmrpc.testing.munged.MungedHarness`'s).
    Attributes once started: ``host``, ``port``, ``slurmd_port``,
    ``conf_path``, ``pid``, ``log_file``, ``workdir``, ``version`` ("22.05")
    and ``release`` ("22.05.8").  ``env`` is an environment for Slurm
    clients (``SLURM_CONF`` set).
    """

    stop_timeout = 10.0  # seconds between SIGTERM and SIGKILL

    def __init__(self, munge_socket: str, *, workdir: Optional[str] = None,
                 cluster_name: str = "pyslurmrpc", port: Optional[int] = None,
                 slurmctld: Optional[str] = None, node_name: str = "node1",
                 start_timeout: float = START_TIMEOUT, extra_conf: str = "",
                 release: Optional[Release] = None):
        # release: a :func:`~.releases.prepare`d Slurm (or its name) whose slurmctld, scontrol and
        # plugins are used
        release = as_release(release) if release is not None else None
        if not isinstance(munge_socket, (str, os.PathLike)):
            raise TypeError(f"munge_socket must be the path of munged's socket, not {munge_socket!r}")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
            raise ValueError(f"port must be an int from 1 to 65535 (or None: a free one), not {port!r}")
        if not start_timeout > 0:
            raise ValueError(f"start_timeout must be a number of seconds above 0, not {start_timeout!r}")
        self.release_info = release
        self.slurmctld = slurmctld or (release.slurmctld if release else find_slurmctld())
        if not is_executable(self.slurmctld):
            raise SlurmctldNotFound(f"slurmctld {self.slurmctld!r} is not an executable file")
        self.scontrol_path = release.scontrol if release else None
        if release and release.plugin_dir:
            extra_conf = f"PluginDir={release.plugin_dir}\n{extra_conf}"
        self.munge_socket = os.fspath(munge_socket)
        self.cluster_name = cluster_name
        self.extra_conf = extra_conf  # more slurm.conf lines, e.g. CommunicationParameters=...
        self.node_name = node_name
        self.host = LOOPBACK
        self._want_port = port
        self.port: Optional[int] = None
        self.slurmd_port: Optional[int] = None
        self._given_workdir = workdir
        self.workdir: Optional[Path] = None
        self.start_timeout = start_timeout
        self.release = ""
        self._proc: Optional[subprocess.Popen] = None

    def __repr__(self) -> str:
        return f"SlurmctldHarness(host={self.host!r}, port={self.port}, pid={self.pid})"

    # paths -----------------------------------------------------------------
    conf_path = property(lambda self: self._path("slurm.conf"))
    log_file = property(lambda self: self._path("slurmctld.log"))
    pid_file = property(lambda self: self._path("slurmctld.pid"))
    stdout_file = property(lambda self: self._path("slurmctld.stdout"))

    @property
    def version(self) -> str:
        """The release's protocol name ("22.05" for 22.05.8)."""
        return without_patch_level(self.release)

    @property
    def env(self) -> dict:
        """``os.environ`` plus SLURM_CONF: run Slurm's clients against this controller."""
        if self.workdir is None:
            raise self._not_running_error()
        return {**os.environ, "SLURM_CONF": self.conf_path}

    # lifecycle ---------------------------------------------------------------
    def start(self) -> "SlurmctldHarness":
        """Write slurm.conf, launch slurmctld -D and wait until it answers a ping."""
        with self._starting():
            self._check_start()
            self._launch()
            self._wait_for_ping()
        return self

    def _check_start(self) -> None:
        """What would only fail after start_timeout: said before anything starts."""
        if not is_socket(self.munge_socket):
            raise SlurmctldStartError(f"munge_socket {self.munge_socket!r} is not a socket (is munged running?)")
        if self._want_port is not None and not port_free(self._want_port):
            raise SlurmctldStartError(f"port {self._want_port} is in use")

    def _launch(self) -> None:
        self.release = slurmctld_version(self.slurmctld)
        if self._given_workdir:
            self.workdir = Path(self._given_workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._own_workdir = False
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="pyslurmrpc-slurmctld-"))
            self._own_workdir = True
        for sub in ("state", "slurmd"):
            (self.workdir / sub).mkdir(exist_ok=True)
        # chosen on every address, as slurmctld binds them: a port free on loopback alone may not be
        self.port = self._want_port or free_port(ANY_ADDRESS)
        self.slurmd_port = free_port(ANY_ADDRESS)
        while self.slurmd_port == self.port:
            self.slurmd_port = free_port(ANY_ADDRESS)
        Path(self.conf_path).write_text(SLURM_CONF.format(
            cluster_name=self.cluster_name, host=self.host, port=self.port,
            slurmd_port=self.slurmd_port, munge_socket=self.munge_socket,
            workdir=self.workdir, node_name=self.node_name, extra_conf=self.extra_conf))
        # -D: foreground child; -c: no state from an earlier run; -i: ignore state errors
        cmd = [self.slurmctld, "-D", "-c", "-i", "-f", self.conf_path]
        with open(self.stdout_file, "wb") as out:
            self._spawn(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                        cwd=str(self.workdir))

    def _answers(self, auth, deadline: float) -> Optional[str]:
        """None once the controller answers a ping, else why not yet.

        A release harness asks the release's own scontrol (pyslurmrpc may not
        speak that release yet); the default one sends a 22.05 REQUEST_PING.
        """
        if self.release_info is not None:
            try:
                left = max(POLL_INTERVAL, deadline - time.monotonic())      # start_timeout bounds it
                proc = self.scontrol("ping", timeout=min(SCONTROL_PING_TIMEOUT, left))
            except subprocess.TimeoutExpired:
                return "scontrol ping did not answer"
            return None if " is UP" in proc.stdout else f"scontrol ping: {proc.stdout.strip()!r}"
        try:
            reply = wire_ping(self.host, self.port, auth, "22.05", timeout=2.0)
            if reply.header.msg_type == MsgType.RESPONSE_SLURM_RC:
                return None
            return f"answered msg_type {reply.header.msg_type}"
        except Exception as err:  # refused, closed, or a decode error: keep waiting, report it
            return repr(err)

    def _wait_for_ping(self) -> None:
        from pyslurmrpc.auth.slurm_auth import MungeAuth

        auth = MungeAuth(self.munge_socket)
        deadline = time.monotonic() + self.start_timeout
        last = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._stop_process()
                raise SlurmctldStartError(self._failure(f"exited with {self._proc_rc}"))
            last = self._answers(auth, deadline)
            if last is None:
                return
            time.sleep(POLL_INTERVAL)
        self._stop_process()
        raise SlurmctldStartError(self._failure(f"did not answer a ping in {self.start_timeout} s ({last})"))

    def _failure(self, what: str) -> str:
        """The message of a failed start: slurmctld's own fatal line first, then the ends of its
        output and log (its directory is removed after: a path to it would mislead)."""
        def lines(path):
            return Path(path).read_text(errors="replace").splitlines() if path and os.path.exists(path) else []
        out, log = lines(self.stdout_file), lines(self.log_file)
        fatal = next((line for line in out + log if "fatal" in line), None)
        return (f"slurmctld {what}" + (f": {fatal.strip()}" if fatal else "")
                + "\nstdout:\n" + "\n".join(out[-40:]) + "\nlog:\n" + "\n".join(log[-40:]))

    def stop(self) -> None:
        """SIGTERM our slurmctld (by pid), SIGKILL it if it lingers, remove the files."""
        self._stop_process()
        if self.workdir is not None and getattr(self, "_own_workdir", False):
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None

    def log_text(self) -> str:
        """slurmctld's log so far ("" when there is none)."""
        path = self.log_file
        return Path(path).read_text(errors="replace") if path and os.path.exists(path) else ""

    def scontrol(self, *args: str, timeout: float = 30.0, port: Optional[int] = None,
                 conf_path: Optional[str] = None) -> subprocess.CompletedProcess:
        """Run the release's scontrol (Debian's by default) against this controller (SLURM_CONF = our slurm.conf).

        ``port`` writes a copy of slurm.conf whose SlurmctldPort is ``port``
        (e.g. a :class:`RecordingProxy` in front of the controller).
        """
        if self.workdir is None:
            raise self._not_running_error()
        if port is not None and conf_path is None:
            conf_path = self._path(f"slurm.via-{port}.conf")
            text = Path(self.conf_path).read_text().replace(
                f"SlurmctldPort={self.port}\n", f"SlurmctldPort={port}\n")
            Path(conf_path).write_text(text)
        env = {**self.env, "SLURM_CONF": conf_path or self.conf_path}
        return subprocess.run([self.scontrol_path or find_scontrol(), *args], capture_output=True, text=True,
                              env=env, timeout=timeout, stdin=subprocess.DEVNULL)



def slurmctld_or_skip(pytest, munge_socket: str, **kwargs) -> SlurmctldHarness:
    """Start a harness for a pytest fixture: skip without slurmctld (or root), but fail under CI."""
    needs_root(pytest, "slurmctld runs with SlurmUser=root (it sets gid 0)")
    return start_or_skip(pytest, lambda: SlurmctldHarness(munge_socket, **kwargs).start(),
                         SlurmctldNotFound, "real-slurmctld")


def release_slurmctld_or_skip(pytest, munge_socket: str, release: str, **kwargs) -> SlurmctldHarness:
    """Start a harness of ``release`` ("20.11"...): skip when it cannot be had, but fail under CI."""
    needs_root(pytest, "slurmctld runs with SlurmUser=root (it sets gid 0)")
    def start():
        return SlurmctldHarness(munge_socket, release=prepare(release), **kwargs).start()
    return start_or_skip(pytest, start, (SlurmctldNotFound, ReleaseUnavailable), f"Slurm {release}")
