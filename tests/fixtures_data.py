"""Helpers to load the recordings in fixtures/ (shared by several test modules)."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def manifest() -> list[dict]:
    with open(FIXTURES / "manifest.jsonl") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def recording(name: str, direction: str) -> bytes:
    return (FIXTURES / f"{name}.{direction}.bin").read_bytes()


def all_recordings() -> list[Path]:
    return sorted(FIXTURES.glob("*.bin"))
