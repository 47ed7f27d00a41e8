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


# --------------------------------------------------------------------------
# Transport errors
# --------------------------------------------------------------------------
class TransportError(PyslurmrpcError):
    """The connection to a daemon failed."""


class ConnectionRefusedTransportError(TransportError):
    """Nobody listens at the address (every controller tried refused)."""


class TimeoutTransportError(TransportError):
    """The daemon did not answer within the timeout."""


class ConnectionClosedError(TransportError):
    """The daemon closed the connection without (a complete) reply."""


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
class CheckpointUnsupported(PyslurmrpcError):
    """The controller speaks only Slurm 20.02 or newer, which removed checkpoint RPCs."""
