"""Authentication: MUNGE (pure Python, no libmunge) and Slurm's auth envelope.

* :mod:`pyslurmrpc.auth.munge` - ``MungeClient``, ``AsyncMungeClient``, ``decode_offline``
* :mod:`pyslurmrpc.auth.slurm_auth` - auth/munge and auth/none envelopes
* :mod:`pyslurmrpc.auth.errors` - ``MungeError`` family and ``SlurmAuthError``
* :mod:`pyslurmrpc.auth.premint` - credentials minted ahead; ``PremintCounts``
"""

from .errors import MungeError, SlurmAuthError
from .munge import AsyncMungeClient, Credential, MungeClient, decode_offline, encode_offline
from .premint import PremintCounts
from .slurm_auth import AsyncAuth, MungeAuth, NoneAuth, OfflineMungeAuth, VerifiedAuth

__all__ = [
    "MungeClient", "AsyncMungeClient", "Credential", "decode_offline", "encode_offline",
    "MungeAuth", "NoneAuth", "OfflineMungeAuth", "AsyncAuth", "VerifiedAuth",
    "MungeError", "SlurmAuthError", "PremintCounts",
]
