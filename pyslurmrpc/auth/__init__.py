"""Authentication: MUNGE (pure Python, no libmunge) and Slurm's auth envelope.

* :mod:`pyslurmrpc.auth.munge` - ``MungeClient``, ``AsyncMungeClient``, ``decode_offline``
* :mod:`pyslurmrpc.auth.slurm_auth` - auth/munge and auth/none envelopes
* :mod:`pyslurmrpc.auth.errors` - ``MungeError`` family and ``SlurmAuthError``
"""
