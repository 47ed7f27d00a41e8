"""A private apt for one Debian suite: its own sources file, lists, cache and status.

The machine's apt configuration is only *read*, to learn which archive URI it
already uses for Debian's main archive; that URI (never written in this
repository) is reused with another suite name (bullseye, trixie, sid).  Every
file apt writes lives under the directory given to :class:`PrivateApt`.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

SOURCES_LIST = Path("/etc/apt/sources.list")
SOURCES_DIR = Path("/etc/apt/sources.list.d")
OS_RELEASE = Path("/etc/os-release")
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
ARCH = "amd64"
#: suite names that only Debian's own archive serves (for a machine whose codename is not among its sources)
DEBIAN_SUITES = frozenset({"bullseye", "bookworm", "trixie", "forky", "duke", "sid",
                           "oldstable", "stable", "testing", "unstable"})
APT_TIMEOUT = 900.0         # seconds for one apt-get update / download call
#: how much of a failed apt command's stderr an error quotes
ERROR_TAIL_CHARS = 2 * 1024
NET_TIMEOUT = 60            # apt's own per-connection timeout (seconds) ...
NET_RETRIES = 2             # ... and retries, so an unreachable archive fails fast
SHOW_BATCH = 200            # package names per apt-cache call
#: the machine's apt.conf.d stays in force (proxies, snapshot Valid-Until settings), but not its
#: hooks: an update of our lists must not refresh the machine's AppStream or PackageKit caches
CLEARED_HOOKS = ("APT::Update::Pre-Invoke", "APT::Update::Post-Invoke",
                 "APT::Update::Post-Invoke-Success", "DPkg::Pre-Invoke", "DPkg::Post-Invoke",
                 "DPkg::Pre-Install-Pkgs")


class AptError(RuntimeError):
    """A private apt call failed; the message names the suite, command and packages."""


@dataclass(frozen=True)
class Source:
    """One ``deb`` entry of the machine's apt sources."""

    uri: str
    suites: Tuple[str, ...]
    components: Tuple[str, ...]
    signed_by: Optional[str] = None


@dataclass(frozen=True)
class PackageInfo:
    """What ``apt-cache show`` says of one candidate package."""

    name: str
    version: str
    architecture: str
    size: int


def _deb822_stanzas(text: str) -> Iterable[Dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: Dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields:
            yield fields


def _one_line_sources(text: str) -> Iterable[Source]:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        options = dict(re.findall(r"([\w-]+)=([^\s\]]+)", line[line.find("["):line.find("]")])) \
            if "[" in line else {}
        words = re.sub(r"\[[^]]*\]", "", line).split()
        if len(words) >= 4:
            yield Source(words[1], (words[2],), tuple(words[3:]), options.get("signed-by"))


def machine_sources(sources_list: Path = SOURCES_LIST, sources_dir: Path = SOURCES_DIR) -> List[Source]:
    """Every ``deb`` entry the machine's apt reads (one-line and deb822 formats)."""
    found: List[Source] = []
    if sources_list.is_file():
        found += _one_line_sources(sources_list.read_text(errors="replace"))
    for path in sorted(sources_dir.glob("*.list")) if sources_dir.is_dir() else ():
        found += _one_line_sources(path.read_text(errors="replace"))
    for path in sorted(sources_dir.glob("*.sources")) if sources_dir.is_dir() else ():
        for st in _deb822_stanzas(path.read_text(errors="replace")):
            if "deb" not in st.get("types", "").split() or st.get("enabled", "yes") == "no":
                continue
            for uri in st.get("uris", "").split():
                found.append(Source(uri, tuple(st.get("suites", "").split()),
                                    tuple(st.get("components", "").split()), st.get("signed-by")))
    return found


def machine_codename(os_release: Path = OS_RELEASE) -> str:
    """The machine's Debian codename ("bookworm"), or "" when it has none."""
    if os_release.is_file():
        match = re.search(r"^VERSION_CODENAME=\"?([\w-]*)", os_release.read_text(), re.M)
        if match:
            return match.group(1)
    return ""


def debian_archive(sources: Optional[Sequence[Source]] = None, codename: Optional[str] = None) -> Source:
    """The machine's source of Debian's main archive: ``main`` of the plain release suite.

    The security and updates suites live elsewhere or carry a ``-`` suffix; a
    suite equal to the machine's codename is preferred, then any suite name
    only Debian serves (third-party repositories use names like "nodistro").
    """
    sources = machine_sources() if sources is None else sources
    codename = machine_codename() if codename is None else codename
    main = [s for s in sources if "main" in s.components]
    exact = [s for s in main if codename and codename in s.suites]
    debian = [s for s in main if DEBIAN_SUITES & set(s.suites)]
    if not (exact or debian):
        raise AptError("no Debian main archive in the machine's apt sources "
                       f"({SOURCES_LIST}, {SOURCES_DIR}/*.sources): cannot fetch other suites")
    return (exact or debian)[0]


class PrivateApt:
    """apt-get/apt-cache for one ``suite`` whose every file lives under ``root``."""

    def __init__(self, root: Path, suite: str, archive: Optional[Source] = None):
        self.root = Path(root)
        self.suite = suite
        self.archive = archive or debian_archive()

    def _options(self) -> List[str]:
        r = self.root
        head = ["-c", str(r / "apt.conf")]
        opts = {
            "Dir::Etc::SourceList": r / "sources.list", "Dir::Etc::SourceParts": r / "sources.list.d",
            "Dir::Etc::Preferences": r / "preferences", "Dir::Etc::PreferencesParts": r / "preferences.d",
            "Dir::State::Lists": r / "lists", "Dir::State::status": r / "status",
            "Dir::Cache": r / "cache", "APT::Architecture": ARCH, "APT::Architectures::": ARCH,
            "APT::Get::AllowUnauthenticated": "false",
            "Acquire::http::Timeout": NET_TIMEOUT, "Acquire::https::Timeout": NET_TIMEOUT,
            "Acquire::Retries": NET_RETRIES,
        }
        return head + [arg for k, v in opts.items() for arg in ("-o", f"{k}={v}")]

    def configure(self) -> None:
        """Write the private sources file and the empty dirs/status apt expects."""
        for sub in ("sources.list.d", "preferences.d", "lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()
        (self.root / "apt.conf").write_text("".join(f"#clear {hook};\n" for hook in CLEARED_HOOKS))
        keyring = self.archive.signed_by or (DEFAULT_KEYRING if os.path.exists(DEFAULT_KEYRING) else None)
        option = f"[signed-by={keyring}] " if keyring else ""
        (self.root / "sources.list").write_text(f"deb {option}{self.archive.uri} {self.suite} main\n")

    def run(self, tool: str, *args: str, cwd: Optional[Path] = None,
            check: bool = True) -> subprocess.CompletedProcess:
        if not (self.root / "apt.conf").is_file():
            self.configure()
        cmd = [tool, *self._options(), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=APT_TIMEOUT,
                              stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"})
        if check and proc.returncode != 0:
            raise AptError(f"{self.suite}: {tool} {' '.join(args[:6])} failed ({proc.returncode}):\n"
                           f"{proc.stderr.strip()[-ERROR_TAIL_CHARS:]}")
        return proc

    def update(self) -> None:
        self.configure()
        self.run("apt-get", "-q", "update")

    def closure(self, roots: Sequence[str]) -> List[str]:
        """Real package names that ``roots`` depend on (Depends and Pre-Depends), recursively."""
        out = self.run("apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                       "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *roots).stdout
        names = {line.strip() for line in out.splitlines() if line and not line[0].isspace()}
        return sorted(n for n in names if not n.startswith("<"))  # <name>: virtual

    def show(self, names: Sequence[str]) -> Dict[str, PackageInfo]:
        """Candidate version, architecture and size of each name apt knows (unknown names absent)."""
        found: Dict[str, PackageInfo] = {}
        for i in range(0, len(names), SHOW_BATCH):
            out = self.run("apt-cache", "show", "--no-all-versions", *names[i:i + SHOW_BATCH],
                           check=False).stdout
            for st in _deb822_stanzas(out):
                if "package" in st:
                    found[st["package"]] = PackageInfo(st["package"], st.get("version", ""),
                                                       st.get("architecture", ""), int(st.get("size", 0)))
        return found

    def download(self, names: Sequence[str], dest: Path) -> List[str]:
        """``apt-get download`` into ``dest``: all at once, then one by one; returns the names that failed."""
        dest.mkdir(parents=True, exist_ok=True)
        if not names or self.run("apt-get", "-q", "download", *names, cwd=dest, check=False).returncode == 0:
            return []
        failed = []
        for name in names:
            if not any(dest.glob(f"{name}_*.deb")):
                if self.run("apt-get", "-q", "download", name, cwd=dest, check=False).returncode != 0:
                    failed.append(name)
        return failed
