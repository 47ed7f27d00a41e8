"""Test helpers for pyslurmrpc (real daemons started in temporary directories)."""
