"""The exception hierarchy of pyslurmrpc.

Every error the library raises derives from :class:`PyslurmrpcError`.  The
families are kept apart so callers can tell *where* a failure happened:

* :class:`ProtocolError` - bytes that do not follow Slurm's wire format.
* :class:`TransportError` - the TCP connection failed (refused, timed out,
  closed without a reply).
* :class:`AuthError` - MUNGE / Slurm authentication failed (defined here,
  refined in :mod:`pyslurmrpc.auth.errors`).
* :class:`SlurmError` - the daemon answered with a Slurm error code.
"""

from __future__ import annotations


class PyslurmrpcError(Exception):
    """Base class of every exception raised by pyslurmrpc."""


# --------------------------------------------------------------------------
# Wire format errors
# --------------------------------------------------------------------------
class ProtocolError(PyslurmrpcError):
    """Bytes that are not a valid Slurm message.

    ``field`` is the dotted path of the field being decoded (``"header.msg_type"``,
    ``"body.image_dir"``) and ``offset`` the byte offset inside the frame
    (length prefix included) where the problem was found.
    """

    def __init__(self, message: str, *, field: str | None = None, offset: int | None = None):
        self.reason = message
        self.field = field
        self.offset = offset
        where = []
        if field:
            where.append(f"field {field}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class TruncatedError(ProtocolError):
    """The frame ended before a field was complete."""


class FrameTooLargeError(ProtocolError):
    """A length prefix (or a length inside the frame) exceeds the limit."""


class UnknownMessageTypeError(ProtocolError):
    """The header names a message type this library has no schema for."""


class UnsupportedVersionError(ProtocolError):
    """The header's protocol version is not one this library speaks."""


class TrailingBytesError(ProtocolError):
    """Bytes are left over after the last field of a part of the frame."""


class InvalidFieldError(ProtocolError):
    """A field holds a value the format does not allow (e.g. no NUL at the end of a string)."""


class UnexpectedMessageError(ProtocolError):
    """A well-formed reply of a type (or version) the request cannot be answered with."""


class InvalidArgumentError(PyslurmrpcError, ValueError):
    """An argument the request cannot carry (e.g. a job id over 32 bits); names the argument."""


class ConfigError(PyslurmrpcError):
    """slurm.conf could not be read; names the file and line."""

    def __init__(self, message: str, *, path=None, line: int | None = None):
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(where + message)


# --------------------------------------------------------------------------
# Transport errors
# --------------------------------------------------------------------------
class TransportError(PyslurmrpcError):
    """The connection to a daemon failed.

    ``slurm_errno`` is the number libslurm would have left in errno for the same
    failure (e.g. 1800 SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR), ``address``
    the (host, port) concerned when there is one.
    """

    default_errno = 1001  # SLURM_COMMUNICATIONS_CONNECTION_ERROR

    def __init__(self, message: str, *, slurm_errno: int | None = None, address=None):
        self.slurm_errno = self.default_errno if slurm_errno is None else slurm_errno
        self.address = address
        super().__init__(message)


class ConnectionRefusedTransportError(TransportError):
    """Nobody listens at the address (every controller tried refused)."""

    default_errno = 1800  # SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR


class TimeoutTransportError(TransportError):
    """The daemon did not answer within the timeout."""

    default_errno = 5004  # SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT


class ConnectionClosedError(TransportError):
    """The daemon closed the connection without (a complete) reply."""

    default_errno = 5005  # SLURM_PROTOCOL_SOCKET_ZERO_BYTES_SENT


# --------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------
class AuthError(PyslurmrpcError):
    """Authentication failed.  ``code`` and ``text`` carry MUNGE's error when there is one."""

    def __init__(self, message: str, *, code: int | None = None, text: str | None = None):
        self.code = code
        self.text = text
        super().__init__(message)


# --------------------------------------------------------------------------
# Slurm-level errors
# --------------------------------------------------------------------------
class SlurmError(PyslurmrpcError):
    """The daemon answered with a Slurm error code.

    ``errno`` is the number (2037), ``name`` Slurm's symbol ("ESLURM_DISABLED")
    and ``str()`` Slurm's own text for it ("Requested operation is presently
    disabled"), exactly as ``slurm_strerror`` gives it in 19.05.
    """

    def __init__(self, errno: int, *, details=None):
        from .slurm_errno import name_of, text_of

        self.errno = errno
        self.name = name_of(errno) or f"E{errno}"
        self.details = details  # e.g. per-node codes of checkpoint_tasks
        super().__init__(text_of(errno))


class CheckpointUnsupported(PyslurmrpcError):
    """The controller speaks only Slurm 20.02 or newer, which removed checkpoint RPCs."""

    def __init__(self, controller: str, version: str):
        self.controller = controller
        self.version = version
        super().__init__(
            f"controller {controller} speaks Slurm {version}: checkpoint RPCs were removed "
            f"in Slurm 20.02, so this controller cannot checkpoint")


#: errno for failures that are not a Slurm reply (src/common/slurm_errno.c numbers)
SLURM_UNEXPECTED_MSG_ERROR = 1000
SLURM_PROTOCOL_VERSION_ERROR = 1005


def slurm_errno_of(exc: PyslurmrpcError) -> int:
    """The number libslurm would leave in errno for the same failure."""
    if isinstance(exc, SlurmError):
        return exc.errno
    if isinstance(exc, TransportError):
        return exc.slurm_errno
    if isinstance(exc, CheckpointUnsupported):
        return SLURM_PROTOCOL_VERSION_ERROR
    auth_errno = getattr(exc, "slurm_errno", None)  # SlurmAuthError
    return auth_errno if isinstance(auth_errno, int) else SLURM_UNEXPECTED_MSG_ERROR
