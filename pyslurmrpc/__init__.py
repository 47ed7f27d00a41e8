"""pyslurmrpc: Slurm's binary RPC protocol in pure Python.

The checkpoint API of Slurm 17.11 - 19.05 (``slurm_checkpoint_*``) and ping /
version detection for every release up to 26.05, over TCP with MUNGE, without
libslurm.  Start with :class:`Client` or :class:`AsyncClient`.
"""

from .client import AsyncClient, Client
from .errors import (
    AuthError, CheckpointUnsupported, ConfigError, ConnectionClosedError, ConnectTimeoutError,
    ConnectionRefusedTransportError, FailureReason, InvalidArgumentError, LocalProtocolError,
    NoVersionAnsweredError, ProtocolError, PyslurmrpcError, RemoteProtocolError, SlurmError,
    TimeoutTransportError, TransportError, UnexpectedMessageError, UnreachableError,
)
from .wire.constants import NO_VAL, NO_VAL16, SLURM_BATCH_SCRIPT

__version__ = "0.1.0"

__all__ = [
    "Client", "AsyncClient", "SlurmError", "CheckpointUnsupported", "TransportError",
    "UnreachableError", "ConnectionRefusedTransportError", "ConnectTimeoutError", "TimeoutTransportError",
    "ConnectionClosedError",
    "NoVersionAnsweredError", "ProtocolError", "LocalProtocolError", "RemoteProtocolError",
    "FailureReason", "UnexpectedMessageError", "AuthError", "ConfigError", "InvalidArgumentError",
    "PyslurmrpcError", "NO_VAL", "NO_VAL16", "SLURM_BATCH_SCRIPT",
]
