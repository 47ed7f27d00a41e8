"""The errno text table against independent sources (issue 14, "tests that catch bugs").

* Debian's libslurm (22.05) ``slurm_strerror`` through ctypes, for every number of the table
  (19.05's text where the table says 22.05 kept it, the 22.05 row where it changed);
* the recordings (libslurm 17.11, 18.08 and 19.05 clients printed ``strerror``) for the rest.
"""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path

import pytest

from pyslurmrpc.slurm_errno import ERRORS, row_of, text_of
from pyslurmrpc.testing.ci import skip_or_fail

#: Debian 12's slurm-wlm packages; libslurmfull needs RTLD_GLOBAL for its own plugins' symbols
LIBSLURM_CANDIDATES = ("/usr/lib/x86_64-linux-gnu/slurm-wlm/libslurmfull.so",
                       "/usr/lib/x86_64-linux-gnu/libslurm.so.38")
LIBSLURM_RELEASE = "22.05"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
#: manifest -> release of the libslurm that recorded it
MANIFESTS = {FIXTURES / "manifest.jsonl": "19.05",
             FIXTURES / "slurm-17.11.13-client" / "manifest.jsonl": "17.11",
             FIXTURES / "slurm-18.08.9-client" / "manifest.jsonl": "18.08"}


@pytest.fixture(scope="module")
def slurm_strerror():
    for path in LIBSLURM_CANDIDATES:
        if os.path.exists(path):
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            lib.slurm_strerror.restype = ctypes.c_char_p
            lib.slurm_strerror.argtypes = [ctypes.c_int]
            return lambda n: lib.slurm_strerror(n).decode()
    skip_or_fail(pytest, "Debian's libslurm (slurm-wlm / libslurm38) is not installed")


def test_every_number_matches_libslurm_2205(slurm_strerror):
    wrong = {n: (text_of(n, LIBSLURM_RELEASE), slurm_strerror(n)) for n in ERRORS
             if text_of(n, LIBSLURM_RELEASE) != slurm_strerror(n)}
    assert wrong == {}


def test_unchanged_texts_of_1905_match_libslurm(slurm_strerror):
    """Where the table says 22.05 kept 19.05's row, 19.05's text is libslurm's, checked directly."""
    kept = [n for n in ERRORS if row_of(n, LIBSLURM_RELEASE) == row_of(n)]
    assert len(kept) > 150  # most of the table: a table that claims everything changed proves nothing
    assert {n: text_of(n) for n in kept if text_of(n) != slurm_strerror(n)} == {}


@pytest.mark.parametrize("n", [-1, -5000, 2, 13, 111, 99999])
def test_fallbacks_match_libslurm(slurm_strerror, n):
    """Negative numbers, libc errnos and unknown numbers follow slurm_strerror's fallbacks."""
    assert text_of(n, LIBSLURM_RELEASE) == slurm_strerror(n)


def _recorded():
    for manifest, release in MANIFESTS.items():
        for line in manifest.read_text().splitlines():
            outcome = json.loads(line)["outcome"]
            if outcome.get("slurm_errno"):
                yield release, outcome["slurm_errno"], outcome["strerror"]


RECORDED = sorted(set(_recorded()))


def test_recordings_hold_errors():
    assert len({n for _, n, _ in RECORDED}) >= 5


@pytest.mark.parametrize("release, n, text", RECORDED, ids=lambda v: str(v))
def test_texts_match_the_recordings(release, n, text):
    assert text_of(n, release) == text
