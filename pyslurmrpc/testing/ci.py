"""One rule for "under CI": what a developer's machine may lack is skipped, what CI must have fails.

``CI`` set to anything but empty, ``0``, ``false`` or ``no`` (any case) means CI: GitHub Actions
sets ``CI=true``, others ``CI=1``; both get the same answer everywhere in the suite.
"""

from __future__ import annotations

import os

#: values of CI that mean "not under CI"
_NOT_CI = frozenset({"", "0", "false", "no", "off"})


def under_ci() -> bool:
    """True when the CI environment variable says so (CI=1, CI=true, CI=yes...)."""
    return os.environ.get("CI", "").strip().lower() not in _NOT_CI


def skip_or_fail(pytest, reason: str) -> None:
    """Skip the test on a developer's machine; fail it under CI, where nothing may be skipped."""
    if under_ci():
        pytest.fail(f"{reason}; CI is set, so this test must not be skipped")
    pytest.skip(reason)


def needs_root(pytest, why: str) -> None:
    """Call first in a test that needs root: ``needs_root(pytest, "runs a child as nobody")``."""
    if os.geteuid() != 0:
        skip_or_fail(pytest, f"needs root: {why}")
