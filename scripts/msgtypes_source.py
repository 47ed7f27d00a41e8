"""Read slurm_msg_type_t out of Slurm's sources (the bare mirror), for the per-release table.

Used by hand to write pyslurmrpc/wire/msg_types_by_release.py's data, and by
scripts/check_msgtypes_against_source to check that data against the sources.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

MIRROR = Path("/work/.mirror/SchedMD+slurm/repo")
#: release -> the tag read for it (the newest micro release the brief names)
TAGS = {
    "17.11": "slurm-17-11-13-2", "18.08": "slurm-18-08-9-1", "19.05": "slurm-19-05-8-1",
    "20.02": "slurm-20-02-7-1", "20.11": "slurm-20-11-9-1", "21.08": "slurm-21-08-8-2",
    "22.05": "slurm-22-05-11-1", "23.02": "slurm-23-02-8-1", "23.11": "slurm-23-11-11-1",
    "24.05": "slurm-24-05-8-1", "24.11": "slurm-24-11-7-1", "25.05": "slurm-25-05-8-1",
    "25.11": "slurm-25-11-7-1", "26.05": "slurm-26-05-3-1",
}
#: where the enum lives (it moved out of slurm_protocol_defs.h in 24.05)
FILES = ("src/common/msg_type.h", "src/common/slurm_protocol_defs.h")
_ENTRY = re.compile(r"^([A-Z][A-Z0-9_]*)\s*(?:=\s*(\d+))?$")


def available() -> bool:
    return (MIRROR / "HEAD").exists()


def _show(tag: str, path: str) -> str | None:
    run = subprocess.run(["git", "-C", str(MIRROR), "show", f"{tag}:{path}"], capture_output=True, text=True)
    return run.stdout if run.returncode == 0 else None


def enum_text(tag: str) -> str:
    """The body of the typedef enum ending in slurm_msg_type_t at ``tag``."""
    for path in FILES:
        text = _show(tag, path)
        if text is None:
            continue
        end = text.find("} slurm_msg_type_t;")
        if end < 0:
            continue
        start = text.rfind("typedef enum {", 0, end)
        return text[start + len("typedef enum {"):end]
    raise LookupError(f"no slurm_msg_type_t at {tag}")


def parse_enum(body: str) -> dict[int, str]:
    """number -> name of an enum body (comments and preprocessor lines dropped)."""
    body = re.sub(r"/\*.*?\*/", " ", body, flags=re.S)
    body = re.sub(r"//[^\n]*", " ", body)
    body = "\n".join(line for line in body.splitlines() if not line.strip().startswith("#"))
    table: dict[int, str] = {}
    value = -1
    for item in body.split(","):
        item = " ".join(item.split())
        if not item:
            continue
        match = _ENTRY.match(item)
        if match is None:
            raise ValueError(f"enum entry not understood: {item!r}")
        value = int(match.group(2)) if match.group(2) else value + 1
        table.setdefault(value, match.group(1))
    return table


def release_tables() -> dict[str, dict[int, str]]:
    return {release: parse_enum(enum_text(tag)) for release, tag in TAGS.items()}


def rows(tables: dict[str, dict[int, str]]) -> list[tuple[int, str, str, str]]:
    """(number, name, first release, last release): runs of consecutive releases with one name."""
    releases = list(tables)
    out = []
    numbers = sorted({n for t in tables.values() for n in t})
    for number in numbers:
        run = None
        for release in releases + [None]:
            name = tables[release].get(number) if release else None
            if run and name == run[1]:
                run[3] = release
                continue
            if run:
                out.append(tuple(run))
            run = [number, name, release, release] if name else None
    return out
