"""Real slurmctld/scontrol of other Slurm releases, from Debian's own binary packages.

>>> rel = prepare("24.11")          # trixie's 24.11.x, unpacked once into the cache
>>> SlurmctldHarness(munge_socket, release=rel)

Debian 12 ships 22.05; bullseye, trixie and sid ship 20.11, 24.11 and 26.05.
For those, the packages ``slurmctld``, ``slurm-client``,
``slurm-wlm-basic-plugins`` and their shared-library closure (down to that
suite's ``libc6``) are downloaded by name through a private apt
(:mod:`.debian_apt`), unpacked with ``dpkg -x`` into
``$PYSLURMRPC_CACHE/slurm-<release>`` (default ``~/.cache/pyslurmrpc``), and
the two programs are copied and patched with ``patchelf`` to use the unpacked
loader and libraries.  Running them through the unpacked loader instead does
not work: slurmctld re-executes itself (``/proc/self/exe``) for slurmscriptd.
A complete cache carries a marker file, so later runs only read it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .debian_apt import AptError, PrivateApt

#: release -> the Debian suite whose own packages carry it (None: the machine's own install)
SUITES: Dict[str, Optional[str]] = {
    "20.11": "bullseye",
    "22.05": None,
    "24.11": "trixie",
    "26.05": "sid",
}
#: the packages asked for; everything else is their dependency closure
ROOT_PACKAGES = ("slurmctld", "slurm-client", "slurm-wlm-basic-plugins")
#: names that must be had whatever else is missing (prefixes)
REQUIRED_PREFIXES = ("slurm", "libslurm", "libc6")
#: names the packages may ship each program under (24.11+ add "-wlm" for alternatives)
PROGRAMS = {"slurmctld": ("usr/sbin/slurmctld", "usr/sbin/slurmctld-wlm"),
            "scontrol": ("usr/bin/scontrol", "usr/bin/scontrol-wlm")}
LOADER_NAME = "ld-linux-x86-64.so.2"
LIB_DIRS = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu")
PLUGIN_MARK = "auth_munge.so"          # a plugin every Debian release ships
LIBSLURM_NAME = "libslurmfull.so"       # beside the plugins: the library Debian's programs link
MARKER = "complete.json"
MARKER_FORMAT = 2                      # bump when Release's fields change: old caches rebuild
CACHE_ENV = "PYSLURMRPC_CACHE"
UNPACK_WORKERS = 2
RUN_TIMEOUT = 60.0


class ReleaseUnavailable(RuntimeError):
    """A release's daemon cannot be had here; the message names the package or step."""


@dataclass(frozen=True)
class Release:
    """A runnable Slurm release: its programs and plugin directory.

    ``plugin_dir`` is None for the machine's own install (slurmctld's built-in default).
    """

    name: str                       # "24.11"
    version: str                    # "24.11.5", from ``slurmctld -V``
    slurmctld: str
    scontrol: str
    plugin_dir: Optional[str] = None
    suite: Optional[str] = None
    root: Optional[str] = None      # the unpacked tree (None: the machine's own)
    packages: int = 0
    download_bytes: int = 0
    unavailable: Tuple[str, ...] = field(default_factory=tuple)


def cache_root() -> Path:
    """Where unpacked releases live: $PYSLURMRPC_CACHE, else ~/.cache/pyslurmrpc."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pyslurmrpc"


def release_dir(name: str) -> Path:
    return cache_root() / f"slurm-{name}"


def program_version(path: str, env: Optional[dict] = None) -> str:
    """"24.11.5" from ``<program> -V`` ("slurm 24.11.5"); raise when the program does not run."""
    proc = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=RUN_TIMEOUT,
                          stdin=subprocess.DEVNULL, env=env)
    words = proc.stdout.split()
    if proc.returncode != 0 or not words:
        raise ReleaseUnavailable(f"{path} -V failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return words[-1]


def unresolved_libraries(path: str) -> List[str]:
    """Shared libraries ``path`` needs that its loader cannot find (the loader's own trace mode)."""
    proc = subprocess.run([path], capture_output=True, text=True, timeout=RUN_TIMEOUT,
                          stdin=subprocess.DEVNULL, env={**os.environ, "LD_TRACE_LOADED_OBJECTS": "1"})
    if proc.returncode != 0 and not proc.stdout:
        return [f"(loader failed: {proc.stderr.strip()[-400:]})"]
    return [line.split()[0] for line in proc.stdout.splitlines() if "not found" in line]


# ---------------------------------------------------------------------------
# the machine's own release
# ---------------------------------------------------------------------------
def _machine_release(name: str) -> Release:
    from .slurmctld import SlurmctldNotFound, find_scontrol, find_slurmctld

    try:
        ctld, scontrol = find_slurmctld(), find_scontrol()
    except SlurmctldNotFound as err:
        raise ReleaseUnavailable(str(err)) from err
    version = program_version(ctld)
    if not version.startswith(name + "."):
        raise ReleaseUnavailable(f"the machine's slurmctld is {version}, not {name}")
    return Release(name, version, ctld, scontrol)


# ---------------------------------------------------------------------------
# a release from another suite
# ---------------------------------------------------------------------------
def _required(name: str) -> bool:
    return name.startswith(REQUIRED_PREFIXES)


def _wanted(apt: PrivateApt) -> Tuple[List[str], int, List[str]]:
    """Names to download (architecture-specific ones: ``all`` packages ship no ELF code), their
    total size, and names of the closure apt cannot show in this suite."""
    closure = apt.closure(ROOT_PACKAGES)
    info = apt.show(closure)
    unknown = [n for n in closure if n not in info]
    wanted = [n for n in closure if n in info and info[n].architecture != "all"]
    for root in ROOT_PACKAGES:
        if root not in info:
            raise ReleaseUnavailable(f"{apt.suite}: package {root} is not in the suite's lists")
    return wanted, sum(info[n].size for n in wanted), unknown


def _inside(root: Path, rel: str, hops: int = 40) -> Path:
    """Follow symlinks of ``root/rel`` without leaving ``root`` (absolute targets are re-rooted)."""
    path = root / rel.lstrip("/")
    for _ in range(hops):
        if not path.is_symlink():
            return path
        target = os.readlink(path)
        path = root / target.lstrip("/") if target.startswith("/") else path.parent / target
        path = Path(os.path.normpath(path))
    raise ReleaseUnavailable(f"symlink loop at {rel} in {root}")


def _find_loader(root: Path) -> Path:
    for d in ("lib64", *LIB_DIRS, "usr/lib64"):
        real = _inside(root, f"{d}/{LOADER_NAME}")
        if real.is_file():
            return real
    raise ReleaseUnavailable(f"no {LOADER_NAME} unpacked under {root} (is libc6 missing?)")


def _find_plugin_dir(root: Path) -> Path:
    for d in LIB_DIRS:
        for mark in (root / d).glob(f"*/{PLUGIN_MARK}"):
            return mark.parent
    raise ReleaseUnavailable(f"no Slurm plugin directory ({PLUGIN_MARK}) unpacked under {root}")


def _patchelf(*args: str) -> str:
    proc = subprocess.run(["patchelf", *args], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if proc.returncode != 0:
        raise ReleaseUnavailable(f"patchelf {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _patch_tree(root: Path, plugin_dir: Path) -> Tuple[str, str]:
    """Copy slurmctld and scontrol to ``root/../bin`` under their plain names and point them at the
    unpacked loader and libraries; re-point libraries/plugins that carry a search path of their own
    (their RUNPATH would otherwise win over the programs' RPATH for their dependencies)."""
    if not shutil.which("patchelf"):
        raise ReleaseUnavailable("patchelf not installed (apt-get install -y patchelf)")
    loader = _find_loader(root)
    rpath = ":".join([str(root / d) for d in LIB_DIRS] + [str(plugin_dir)])
    for lib in sorted(plugin_dir.rglob("*.so*")) + sorted((root / LIB_DIRS[0]).glob("libslurm*.so*")):
        if lib.is_file() and not lib.is_symlink() and _patchelf("--print-rpath", str(lib)):
            _patchelf("--force-rpath", "--set-rpath", rpath, str(lib))
    bindir = root.parent / "bin"
    bindir.mkdir(exist_ok=True)
    made = []
    for prog, candidates in PROGRAMS.items():
        source = next((root / c for c in candidates if (root / c).is_file()), None)
        if source is None:
            raise ReleaseUnavailable(f"{prog} not found in the unpacked packages ({', '.join(candidates)})")
        target = bindir / prog
        shutil.copy2(source, target)
        _patchelf("--set-interpreter", str(loader), "--force-rpath", "--set-rpath", rpath, str(target))
        made.append(str(target))
    return made[0], made[1]


def _unpack(debs: Sequence[Path], root: Path) -> None:
    def one(deb: Path) -> None:
        proc = subprocess.run(["dpkg", "-x", str(deb), str(root)], capture_output=True, text=True,
                              timeout=RUN_TIMEOUT)
        if proc.returncode != 0:
            raise ReleaseUnavailable(f"dpkg -x {deb.name} failed: {proc.stderr.strip()}")
    with ThreadPoolExecutor(UNPACK_WORKERS) as pool:
        list(pool.map(one, debs))


def _build(name: str, suite: str, base: Path, log) -> Release:
    apt = PrivateApt(base / "apt", suite)
    log(f"slurm {name}: apt-get update for {suite} (private lists under {apt.root})")
    apt.update()
    wanted, size, unknown = _wanted(apt)
    log(f"slurm {name}: downloading {len(wanted)} packages ({size / 1e6:.1f} MB) from {suite}")
    debs = base / "debs"
    shutil.rmtree(debs, ignore_errors=True)  # an unfinished earlier build may hold other versions
    failed = apt.download(wanted, debs)
    missing = [n for n in failed if _required(n)]
    if missing:
        raise ReleaseUnavailable(f"slurm {name}: cannot download {', '.join(missing)} from {suite}")
    root = base / "root"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    files = sorted(debs.glob("*.deb"))
    log(f"slurm {name}: unpacking {len(files)} packages into {root}")
    _unpack(files, root)
    plugin_dir = _find_plugin_dir(root)
    ctld, scontrol = _patch_tree(root, plugin_dir)
    unavailable = tuple(sorted(set(failed) | set(unknown)))
    lost = [f"{Path(p).name}: {lib}" for p in (ctld, scontrol) for lib in unresolved_libraries(p)]
    try:
        if lost:
            raise ReleaseUnavailable(f"unresolved libraries: {'; '.join(lost)}")
        version = program_version(ctld)
    except ReleaseUnavailable as err:
        raise ReleaseUnavailable(f"slurm {name}: {err}\n(packages of the closure not had from "
                                 f"{suite}: {', '.join(unavailable) or 'none'})") from err
    if not version.startswith(name + "."):
        raise ReleaseUnavailable(f"{suite}'s slurmctld is {version}, not {name}")
    return Release(name, version, ctld, scontrol, str(plugin_dir), suite, str(root), len(files),
                   sum(f.stat().st_size for f in files), unavailable)


def unknown_releases(names: Sequence[str]) -> Optional[str]:
    """What to say of the ``names`` that are no release this module prepares, or None (one
    name given as a str is that name, not its letters)."""
    unknown = [name for name in ([names] if isinstance(names, str) else names) if name not in SUITES]
    return f"unknown release {', '.join(map(repr, unknown))} (known: {', '.join(SUITES)})" if unknown else None


def prepare(name: str, log=lambda msg: None) -> Release:
    """The runnable release ``name`` ("20.11", "22.05", "24.11", "26.05"), building its cache once.

    Raises :class:`ReleaseUnavailable` naming the package or step that failed.
    """
    if not isinstance(name, str):      # 24.11 as a float would be said "unknown release 24.11"
        raise TypeError(f"name must be a release name such as '24.11', not {name!r}")
    if name not in SUITES:
        raise ReleaseUnavailable(unknown_releases([name]))
    suite = SUITES[name]
    if suite is None:
        return _machine_release(name)
    base = release_dir(name)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as err:             # e.g. $PYSLURMRPC_CACHE names a file
        raise ReleaseUnavailable(f"slurm {name}: cannot make its cache {base}: {err.strerror}") from None
    with open(base.parent / f"slurm-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per release, other processes wait
        rel = _cached(base / MARKER)
        if rel is not None:
            return rel
        if name in _FAILED:  # one try per process: each test must not wait for apt again
            raise ReleaseUnavailable(_FAILED[name])
        try:
            rel = _build(name, suite, base, log)
        except (AptError, ReleaseUnavailable, OSError, subprocess.SubprocessError) as err:
            _FAILED[name] = str(err) if isinstance(err, ReleaseUnavailable) else f"slurm {name}: {err}"
            raise ReleaseUnavailable(_FAILED[name]) from err
        (base / MARKER).write_text(json.dumps({"format": MARKER_FORMAT, **asdict(rel)}, indent=1))
        return rel


#: release -> why preparing it failed in this process
_FAILED: Dict[str, str] = {}


def _cached(marker: Path) -> Optional[Release]:
    """The release a complete cache describes, or None when it must be (re)built."""
    try:
        data = json.loads(marker.read_text())
        if data.pop("format", None) != MARKER_FORMAT:
            return None
        data["unavailable"] = tuple(data.get("unavailable", ()))
        rel = Release(**data)
    except (OSError, ValueError, TypeError):
        return None
    return rel if all(os.access(p, os.X_OK) for p in (rel.slurmctld, rel.scontrol)) else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m pyslurmrpc.testing.releases [RELEASE...]``: prepare releases, print what they are."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m pyslurmrpc.testing.releases",
        description="Fetch, unpack and patch Debian's packages of each Slurm release named (all of them "
                    "when none is), and print what each release's slurmctld is. Exit status 1 when one "
                    "could not be prepared.")
    parser.add_argument("releases", nargs="*", metavar="RELEASE", help=f"one of {', '.join(SUITES)}")
    names = parser.parse_args(argv).releases or list(SUITES)
    unknown = unknown_releases(names)
    if unknown:     # not choices=: argparse then refuses the empty list of no argument at all
        parser.error(unknown)
    status = 0
    for name in names:
        try:
            rel = prepare(name, log=lambda m: print(m, flush=True))
        except ReleaseUnavailable as err:
            print(f"slurm {name}: UNAVAILABLE: {err}", file=sys.stderr, flush=True)
            status = 1
            continue
        extra = f" from {rel.suite}, {rel.packages} packages, {rel.download_bytes / 1e6:.1f} MB" \
            if rel.suite else " (this machine's own)"
        print(f"slurm {name}: {rel.version} {rel.slurmctld}{extra}", flush=True)
    return status



# ---------------------------------------------------------------------------
# the release's own libslurm, for the benchmark's C side
# ---------------------------------------------------------------------------
def as_release(rel) -> Release:
    """``rel`` itself, or the prepared release it names ("24.11"); a TypeError for anything else."""
    if isinstance(rel, Release):
        return rel
    if isinstance(rel, str):
        return prepare(rel)
    raise TypeError(f"release must be a Release from prepare() or a release name such as '24.11', not {rel!r}")


def libslurm_of(rel: Release) -> Tuple[Optional[str], Optional[str]]:
    """(libslurm path, dynamic loader to run it under) of ``rel``: for an unpacked tree its
    libslurmfull.so and its own ld-linux (it may need a newer C library than this machine's);
    for the machine's own release (None, None): whatever the benchmark finds here."""
    rel = as_release(rel)
    if rel.root is None:
        return None, None
    lib = Path(rel.plugin_dir) / LIBSLURM_NAME
    if not lib.is_file():
        raise ReleaseUnavailable(f"no {LIBSLURM_NAME} unpacked for {rel.name} under {rel.plugin_dir}")
    loader = _find_loader(Path(rel.root))
    # an older C library than this machine's (bullseye's 2.31 for 20.11) cannot run this
    # interpreter (it needs GLIBC_2.34 here): the machine's own loader runs that libslurm
    host = host_glibc()
    own = host is None or tree_glibc(Path(rel.root), loader) > host
    return str(lib), (str(loader) if own else None)


#: what a glibc's libc.so.6 says of itself ("... stable release version 2.36.")
_GLIBC_BANNER = re.compile(rb"release version (\d+)\.(\d+)")


def tree_glibc(root: Path, loader: Path) -> tuple[int, int]:
    """The version of the glibc next to the tree's ``loader``, from its libc.so.6's banner
    (symlinks followed inside the tree)."""
    libc = _inside(root, str((loader.parent / "libc.so.6").relative_to(root)))
    try:
        match = _GLIBC_BANNER.search(libc.read_bytes())
    except OSError as err:
        raise ReleaseUnavailable(f"cannot read the tree's C library {libc}: {err.strerror}") from None
    if not match:
        raise ReleaseUnavailable(f"cannot tell the glibc version of {libc}")
    return int(match[1]), int(match[2])


def host_glibc() -> tuple[int, int] | None:
    """This machine's glibc version, or None when it has none (musl) or does not say."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""      # "glibc 2.36"
    except (ValueError, OSError):
        text = ""
    match = re.fullmatch(r"glibc (\d+)\.(\d+).*", text)
    return (int(match[1]), int(match[2])) if match else None


# ---------------------------------------------------------------------------
# more client programs of a release (squeue, sinfo, sbatch ...), patched on first use
# ---------------------------------------------------------------------------
#: client programs a release may be asked for, beyond slurmctld and scontrol
CLIENT_PROGRAMS = ("squeue", "sinfo", "sbatch", "scancel")


def client_program(rel: Release, prog: str) -> str:
    """The path of ``prog`` (one of :data:`CLIENT_PROGRAMS`) of ``rel``, runnable here.

    The machine's own release uses the installed program; an unpacked release's
    program is copied next to its scontrol and patched like it, once.
    """
    rel = as_release(rel)
    if prog not in CLIENT_PROGRAMS:
        raise ReleaseUnavailable(f"{prog} is not one of {', '.join(CLIENT_PROGRAMS)}")
    if rel.root is None:
        found = shutil.which(prog) or next((p for p in (f"/usr/bin/{prog}",) if os.path.exists(p)), None)
        if found is None:
            raise ReleaseUnavailable(f"{prog} not installed (apt-get install -y slurm-client)")
        return found
    target = Path(rel.scontrol).parent / prog
    if os.access(target, os.X_OK):
        return str(target)
    root = Path(rel.root)
    source = next((root / c for c in (f"usr/bin/{prog}", f"usr/bin/{prog}-wlm") if (root / c).is_file()), None)
    if source is None:
        raise ReleaseUnavailable(f"{prog} not found in the unpacked packages of {rel.name}")
    rpath = ":".join([str(root / d) for d in LIB_DIRS] + [str(rel.plugin_dir)])
    partial = target.with_suffix(".partial")
    shutil.copy2(source, partial)
    _patchelf("--set-interpreter", str(_find_loader(root)), "--force-rpath", "--set-rpath", rpath, str(partial))
    os.replace(partial, target)  # whole or absent: a concurrent test never runs a half-patched copy
    return str(target)


if __name__ == "__main__":
    raise SystemExit(main())
