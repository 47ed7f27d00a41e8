"""The exception hierarchy of pyslurmrpc.

Every error the library raises derives from :class:`PyslurmrpcError`.  The
families are kept apart so callers can tell *where* a failure happened and
*whose fault* it is:

* :class:`ProtocolError` - bytes that do not follow Slurm's wire format, split
  as h11 splits blame: :class:`RemoteProtocolError` for what a peer sent (the
  decode boundary, the Framer, a reply that does not answer the request) and
  :class:`LocalProtocolError` for what we were asked to build and cannot
  encode.  ``reason`` is a :class:`FailureReason`, so code sorts failures by
  kind, never by message text.
* :class:`TransportError` - the TCP connection failed (refused, timed out,
  closed without a reply, no protocol version answered).
* :class:`AuthError` - MUNGE / Slurm authentication failed (defined here,
  refined in :mod:`pyslurmrpc.auth.errors`).
* :class:`SlurmError` - the daemon answered with a Slurm error code.

Slurm error numbers come from :mod:`pyslurmrpc.slurm_errno` by name.
"""

from __future__ import annotations

import enum
from errno import EINVAL

from .slurm_errno import REFERENCE_RELEASE, SlurmErrno, name_of, text_of


class PyslurmrpcError(Exception):
    """Base class of every exception raised by pyslurmrpc.

    Every one pickles (a ProcessPoolExecutor hands a worker's error back): its message and
    attributes come back as they were, without calling ``__init__`` again, whose arguments
    differ from class to class.  As with any pickled exception, ``__cause__``,
    ``__context__`` and the traceback are not carried.
    """

    def __reduce__(self):
        return _unpickled, (type(self), self.args, self.__dict__)


def _unpickled(cls, args: tuple, state: dict) -> PyslurmrpcError:
    """The exception ``cls`` with ``args`` and attributes ``state``, as it was pickled."""
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


# --------------------------------------------------------------------------
# Wire format errors
# --------------------------------------------------------------------------
class FailureReason(enum.Enum):
    """What kind of wire-format failure a :class:`ProtocolError` is."""

    TRUNCATED = "truncated"
    TOO_LARGE = "too large"
    TRAILING_BYTES = "trailing bytes"
    INVALID_FIELD = "invalid field"
    UNKNOWN_MESSAGE_TYPE = "unknown message type"
    UNSUPPORTED_VERSION = "unsupported version"
    UNEXPECTED_MESSAGE = "unexpected message"
    MALFORMED = "malformed"


class ProtocolError(PyslurmrpcError):
    """Bytes that are not a valid Slurm message (base of the Local/Remote split).

    ``reason`` is the :class:`FailureReason` (each subclass has its own
    default), ``detail`` the human text, ``field`` the dotted path of the field
    concerned (``"header.msg_type"``, ``"body.image_dir"``) and ``offset`` the
    byte offset inside the frame (length prefix included) where the problem
    was found.
    """

    default_reason = FailureReason.MALFORMED

    def __init__(self, message: str, *, field: str | None = None, offset: int | None = None,
                 reason: FailureReason | None = None):
        self.reason = self.default_reason if reason is None else reason
        self.detail = message
        self.field = field
        self.offset = offset
        where = []
        if field:
            where.append(f"field {field}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class RemoteProtocolError(ProtocolError):
    """A peer sent bytes that break Slurm's wire format or do not answer our request."""


class LocalProtocolError(ProtocolError):
    """We were asked to encode something Slurm's wire format cannot carry (our mistake, not the peer's)."""


class TruncatedError(RemoteProtocolError):
    """The frame ended before a field was complete."""

    default_reason = FailureReason.TRUNCATED


class FrameTooLargeError(RemoteProtocolError):
    """A length prefix (or a length inside the frame) exceeds the limit."""

    default_reason = FailureReason.TOO_LARGE


class UnknownMessageTypeError(RemoteProtocolError):
    """The header names a message type this library has no schema for."""

    default_reason = FailureReason.UNKNOWN_MESSAGE_TYPE


class UnsupportedVersionError(RemoteProtocolError):
    """The header's protocol version is not one this library speaks."""

    default_reason = FailureReason.UNSUPPORTED_VERSION


class TrailingBytesError(RemoteProtocolError):
    """Bytes are left over after the last field of a part of the frame."""

    default_reason = FailureReason.TRAILING_BYTES


class InvalidFieldError(RemoteProtocolError):
    """A field holds a value the format does not allow (e.g. no NUL at the end of a string)."""

    default_reason = FailureReason.INVALID_FIELD


class UnexpectedMessageError(RemoteProtocolError):
    """A well-formed reply of a type (or version) the request cannot be answered with."""

    default_reason = FailureReason.UNEXPECTED_MESSAGE


class InvalidArgumentError(PyslurmrpcError, ValueError):
    """An argument the request cannot carry (e.g. a job id over 32 bits); names the argument.

    ``argument`` is its name where a caller may need it apart from the message (None
    otherwise): ``"nodelist"`` for a node list the call cannot use."""

    def __init__(self, message: str, *, argument: str | None = None):
        self.argument = argument
        super().__init__(message)


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
#: errno libslurm leaves when connecting to slurmctld fails (SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR)
CONNECT_ERRNO = int(SlurmErrno.SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR)


class TransportError(PyslurmrpcError):
    """The connection to a daemon failed.

    ``slurm_errno`` is the number libslurm would have left in errno for the same
    failure (e.g. SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR), ``address``
    the (host, port) concerned when there is one.
    """

    default_errno = int(SlurmErrno.SLURM_COMMUNICATIONS_CONNECTION_ERROR)

    def __init__(self, message: str, *, slurm_errno: int | None = None, address=None):
        self.slurm_errno = self.default_errno if slurm_errno is None else slurm_errno
        self.address = address
        super().__init__(message)


class UnreachableError(TransportError):
    """No connection could be made: the address refused it, could not be looked up, or
    did not answer the connect in time (for a call with failover: every controller).

    ``failures``, for a call that tried several controllers, maps each one as the errors
    show it (``"host:port"``, or ``"name (host:port)"``) to its own :class:`TransportError`,
    in the order tried, with its last failure; empty when one address was tried (the
    error is that address's own).  libslurm reports all of these with one errno,
    SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR (slurm_open_controller_conn).
    """

    default_errno = CONNECT_ERRNO

    def __init__(self, message: str, *, slurm_errno: int | None = None, address=None,
                 failures: dict | None = None):
        super().__init__(message, slurm_errno=slurm_errno, address=address)
        self.failures = dict(failures or {})


class ConnectionRefusedTransportError(UnreachableError):
    """Nobody listens at the address (every address tried refused the connection)."""


class TimeoutTransportError(TransportError):
    """The daemon did not answer within the timeout."""

    default_errno = int(SlurmErrno.SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT)


class ConnectTimeoutError(UnreachableError, TimeoutTransportError):
    """The connect itself did not complete in time (TCPTimeout): the daemon was not reached
    (its errno is UnreachableError's, first in the method order)."""


class ConnectionClosedError(TransportError):
    """The daemon closed the connection without (a complete) reply."""

    default_errno = int(SlurmErrno.SLURM_PROTOCOL_SOCKET_ZERO_BYTES_SENT)


class NoVersionAnsweredError(TransportError):
    """The daemon's release could not be found: it answered a ping in none of the protocol
    versions tried (``answered`` False), or its answers fit no single release, as when a
    probe got no answer in time (``answered`` True: a ping had its answer).

    Not a :class:`ConnectionClosedError`: every connection may have worked, but
    no probe got a reply the version detection accepts.  ``slurm_errno`` stays
    the one libslurm reports when a connection yields no reply.
    """

    default_errno = int(SlurmErrno.SLURM_PROTOCOL_SOCKET_ZERO_BYTES_SENT)

    def __init__(self, message: str, *, slurm_errno: int | None = None, address=None, answered: bool = False):
        super().__init__(message, slurm_errno=slurm_errno, address=address)
        self.answered = answered


# --------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------
class AuthError(PyslurmrpcError):
    """Authentication failed.  ``code`` and ``text`` carry MUNGE's error when there is one;
    ``slurm_errno`` is the number libslurm reports, SLURM_PROTOCOL_AUTHENTICATION_ERROR
    unless a subclass knows better (what scontrol then prints is that errno's text)."""

    default_errno = int(SlurmErrno.SLURM_PROTOCOL_AUTHENTICATION_ERROR)

    def __init__(self, message: str, *, code: int | None = None, text: str | None = None,
                 slurm_errno: int | None = None):
        self.code = code
        self.text = text
        self.slurm_errno = self.default_errno if slurm_errno is None else slurm_errno
        super().__init__(message)


# --------------------------------------------------------------------------
# Slurm-level errors
# --------------------------------------------------------------------------
class SlurmError(PyslurmrpcError):
    """The daemon answered with a Slurm error code.

    ``errno`` is the number, ``name`` Slurm's symbol (e.g. "ESLURM_DISABLED")
    and ``str()`` Slurm's own text for it ("Requested operation is presently
    disabled"), exactly as ``slurm_strerror`` gives it in ``release`` (19.05
    unless the caller knows the daemon's release).
    """

    def __init__(self, errno: int, *, details=None, release: str = REFERENCE_RELEASE):
        self.errno = errno
        self.name = name_of(errno, release) or f"E{errno}"
        self.details = details  # e.g. per-node codes of checkpoint_tasks
        super().__init__(text_of(errno, release))


class CheckpointUnsupported(PyslurmrpcError):
    """The controller speaks only Slurm 20.02 or newer, which removed checkpoint RPCs."""

    def __init__(self, controller: str, version: str, *, pinned: bool = False, nodes: str | None = None,
                 oldest: str | None = None):
        self.controller = controller
        self.version = version
        self.pinned = pinned    # the caller's protocol_version said the release; nothing was sent
        self.nodes = nodes      # checkpoint_tasks: the node list no slurmd of which can checkpoint ...
        self.oldest = oldest    # ... as the controller takes none older than this release
        if nodes is not None:
            said = (f"controller {controller} speaks Slurm {version}, whose slurmds are {oldest} or newer: "
                    f"checkpoint RPCs were removed in Slurm 20.02, so no node of {nodes} can checkpoint "
                    f"(nothing was sent)")
        elif pinned:
            said = (f"the client's protocol_version (--protocol) is {version}, a release without checkpoint RPCs "
                    f"(removed in Slurm 20.02): nothing was sent to {controller}")
        else:
            said = (f"controller {controller} speaks Slurm {version}: checkpoint RPCs were removed "
                    f"in Slurm 20.02, so this controller cannot checkpoint")
        super().__init__(said)


#: errno libslurm leaves when reading a reply fails (SLURMCTLD_COMMUNICATIONS_RECEIVE_ERROR)
RECEIVE_ERRNO = int(SlurmErrno.SLURMCTLD_COMMUNICATIONS_RECEIVE_ERROR)
#: errno for failures that are not a Slurm reply
SLURM_UNEXPECTED_MSG_ERROR = int(SlurmErrno.SLURM_UNEXPECTED_MSG_ERROR)
SLURM_PROTOCOL_VERSION_ERROR = int(SlurmErrno.SLURM_PROTOCOL_VERSION_ERROR)


def slurm_errno_of(exc: PyslurmrpcError) -> int:
    """The number libslurm would leave in errno for the same failure."""
    if isinstance(exc, SlurmError):
        return exc.errno
    if isinstance(exc, (TransportError, AuthError)):
        return exc.slurm_errno
    if isinstance(exc, CheckpointUnsupported):
        return SLURM_PROTOCOL_VERSION_ERROR
    if isinstance(exc, (InvalidArgumentError, LocalProtocolError)):
        return EINVAL        # nothing was sent: libslurm's own answer to a bad argument
    return SLURM_UNEXPECTED_MSG_ERROR
