"""pyslurmrpc.fake exports its public API and nothing else; the internals stay importable from their modules."""

from __future__ import annotations

import inspect

import pyslurmrpc.fake as fake


def test_package_namespace_is_exactly_all():
    public = {name for name, value in vars(fake).items()
              if not name.startswith("_") and not inspect.ismodule(value)}
    assert public == set(fake.__all__)


def test_readme_and_plugin_names_are_public():
    # README "The fake controller", cli/demo.py and testing/plugin.py use these
    for name in ("FakeSlurmctld", "FakeSlurmd", "Cluster", "fixture_cluster", "ReplayDaemon", "RecordingProxy"):
        assert name in fake.__all__


def test_internals_are_not_exported_but_still_importable():
    from pyslurmrpc.fake.daemons import make_plugin
    from pyslurmrpc.fake.rules import Controller
    from pyslurmrpc.fake.server import FakeDaemon

    for internal in (make_plugin, Controller, FakeDaemon):
        assert internal.__name__ not in fake.__all__
