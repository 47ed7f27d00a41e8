"""Authentication exceptions: MUNGE failures and Slurm envelope failures.

MUNGE failures map one error number to one class (:data:`MUNGE_ERROR_CLASSES`).
Socket failures (``EMUNGE_SOCKET``) are refined by the OS errno that caused
them, so "munged is not running" and "no such socket" can be told apart.
"""

from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING, Optional

from pyslurmrpc.errors import AuthError
from pyslurmrpc.slurm_errno import SlurmErrno, text_of

from .munge_constants import MungeErr, strerror

if TYPE_CHECKING:  # pragma: no cover
    from .munge_proto import Credential


class MungeError(AuthError):
    """A MUNGE operation failed; ``code`` is MUNGE's ``munge_err_t``, ``text`` its message.

    ``credential`` is set for expired / rewound / replayed credentials, which
    munged still decodes and reports alongside the error.
    """

    default_code: int = MungeErr.SNAFU

    def __init__(self, text: Optional[str] = None, *, code: Optional[int] = None,
                 credential: "Optional[Credential]" = None,
                 os_errno: Optional[int] = None):
        code = self.default_code if code is None else code
        text = text or strerror(code)
        super().__init__(f"MUNGE error {code} ({strerror(code)}): {text}", code=code, text=text)
        self.credential = credential
        self.os_errno = os_errno


class MungeInternalError(MungeError):
    default_code = MungeErr.SNAFU


class MungeBadArgumentError(MungeError):
    default_code = MungeErr.BAD_ARG


class MungeBadLengthError(MungeError):
    default_code = MungeErr.BAD_LENGTH


class MungeOverflowError(MungeError):
    default_code = MungeErr.OVERFLOW


class MungeNoMemoryError(MungeError):
    default_code = MungeErr.NO_MEMORY


class MungeSocketError(MungeError):
    """Talking to munged over its UNIX socket failed (``EMUNGE_SOCKET``)."""

    default_code = MungeErr.SOCKET


class MungeSocketMissingError(MungeSocketError):
    """The socket path does not exist (munged never started, or wrong path)."""


class MungedNotRunningError(MungeSocketError):
    """The socket exists but nobody accepts on it (munged died, stale socket)."""


class MungeSocketPermissionError(MungeSocketError):
    """The socket (or a directory above it) is not accessible to this process."""


class MungeTimeoutError(MungeSocketError):
    default_code = MungeErr.TIMEOUT


class MungeOutOfTimeError(MungeTimeoutError):
    """The caller's time ran out before munged was asked: munged itself is not at fault
    (a call whose time went to the controller's answers, not munged's)."""


class MungeCredentialFormatError(MungeError):
    """The credential text is not a well-formed MUNGE credential."""

    default_code = MungeErr.BAD_CRED


class MungeBadVersionError(MungeCredentialFormatError):
    default_code = MungeErr.BAD_VERSION


class MungeBadCipherError(MungeCredentialFormatError):
    """Unknown cipher number, or one this Python's ``cryptography`` cannot run."""

    default_code = MungeErr.BAD_CIPHER


class MungeBadMacError(MungeCredentialFormatError):
    default_code = MungeErr.BAD_MAC


class MungeBadZipError(MungeCredentialFormatError):
    default_code = MungeErr.BAD_ZIP


class MungeBadRealmError(MungeCredentialFormatError):
    default_code = MungeErr.BAD_REALM


class MungeCredentialInvalidError(MungeError):
    """MAC mismatch or bad padding: typically minted with another key."""

    default_code = MungeErr.CRED_INVALID


class MungeCredentialExpiredError(MungeError):
    default_code = MungeErr.CRED_EXPIRED


class MungeCredentialRewoundError(MungeError):
    """Encode time lies in the future (clocks out of sync)."""

    default_code = MungeErr.CRED_REWOUND


class MungeCredentialReplayedError(MungeError):
    default_code = MungeErr.CRED_REPLAYED


class MungeCredentialUnauthorizedError(MungeError):
    """The credential is restricted to another uid / gid than the decoder's."""

    default_code = MungeErr.CRED_UNAUTHORIZED


#: munge_err_t -> exception class
MUNGE_ERROR_CLASSES: dict[int, type[MungeError]] = {
    MungeErr.SNAFU: MungeInternalError,
    MungeErr.BAD_ARG: MungeBadArgumentError,
    MungeErr.BAD_LENGTH: MungeBadLengthError,
    MungeErr.OVERFLOW: MungeOverflowError,
    MungeErr.NO_MEMORY: MungeNoMemoryError,
    MungeErr.SOCKET: MungeSocketError,
    MungeErr.TIMEOUT: MungeTimeoutError,
    MungeErr.BAD_CRED: MungeCredentialFormatError,
    MungeErr.BAD_VERSION: MungeBadVersionError,
    MungeErr.BAD_CIPHER: MungeBadCipherError,
    MungeErr.BAD_MAC: MungeBadMacError,
    MungeErr.BAD_ZIP: MungeBadZipError,
    MungeErr.BAD_REALM: MungeBadRealmError,
    MungeErr.CRED_INVALID: MungeCredentialInvalidError,
    MungeErr.CRED_EXPIRED: MungeCredentialExpiredError,
    MungeErr.CRED_REWOUND: MungeCredentialRewoundError,
    MungeErr.CRED_REPLAYED: MungeCredentialReplayedError,
    MungeErr.CRED_UNAUTHORIZED: MungeCredentialUnauthorizedError,
}

#: OS errno behind an EMUNGE_SOCKET -> more precise class
SOCKET_ERRNO_CLASSES: dict[int, type[MungeSocketError]] = {
    _errno.ENOENT: MungeSocketMissingError,
    _errno.ENOTDIR: MungeSocketMissingError,
    _errno.ECONNREFUSED: MungedNotRunningError,
    _errno.EACCES: MungeSocketPermissionError,
    _errno.EPERM: MungeSocketPermissionError,
    _errno.ETIMEDOUT: MungeTimeoutError,
}


def munge_error(code: int, text: Optional[str] = None, *,
                credential: "Optional[Credential]" = None,
                os_errno: Optional[int] = None) -> MungeError:
    """Build the exception for MUNGE error ``code`` (and, for socket errors, ``os_errno``)."""
    cls = MUNGE_ERROR_CLASSES.get(code, MungeError)
    if code == MungeErr.SOCKET and os_errno is not None:
        cls = SOCKET_ERRNO_CLASSES.get(os_errno, cls)
    return cls(text, code=code, credential=credential, os_errno=os_errno)


# ---------------------------------------------------------------------------
# Slurm-level authentication failures
# ---------------------------------------------------------------------------
#: Slurm error numbers used by the auth layer (from the one errno table)
SLURM_PROTOCOL_AUTHENTICATION_ERROR = int(SlurmErrno.SLURM_PROTOCOL_AUTHENTICATION_ERROR)
ESLURM_PROTOCOL_INCOMPLETE_PACKET = int(SlurmErrno.ESLURM_PROTOCOL_INCOMPLETE_PACKET)
ESLURM_AUTH_CRED_INVALID = int(SlurmErrno.ESLURM_AUTH_CRED_INVALID)
ESLURM_AUTH_BADARG = int(SlurmErrno.ESLURM_AUTH_BADARG)
ESLURM_AUTH_UNPACK = int(SlurmErrno.ESLURM_AUTH_UNPACK)


class SlurmAuthError(AuthError):
    """libslurm would have rejected this auth envelope.

    ``slurm_errno`` is the error libslurm 19.05's receive path reports
    (``SLURM_PROTOCOL_AUTHENTICATION_ERROR`` or
    ``ESLURM_PROTOCOL_INCOMPLETE_PACKET``); ``plugin_errno`` the one the auth
    plugin set (``ESLURM_AUTH_CRED_INVALID`` ...).  When MUNGE caused it,
    ``code``/``text`` are MUNGE's and ``munge_error`` is the MUNGE exception.
    """

    def __init__(self, message: str, *, slurm_errno: int,
                 plugin_errno: Optional[int] = None,
                 munge_error: Optional[MungeError] = None):
        code = munge_error.code if munge_error else None
        text = munge_error.text if munge_error else None
        detail = text_of(slurm_errno)
        super().__init__(f"{message} [slurm errno {slurm_errno}: {detail}]", code=code, text=text,
                         slurm_errno=slurm_errno)
        self.plugin_errno = plugin_errno
        self.munge_error = munge_error
