"""Slurm's auth envelope for auth/munge and auth/none: build it, verify it.

Each authenticator has ``create(protocol_version) -> Auth`` (the envelope a
request - or a fake daemon's response - carries) and ``verify(auth,
protocol_version=None) -> VerifiedAuth`` which accepts exactly what libslurm
19.05's receive path accepts (``slurm_unpack_received_msg`` in
src/common/slurm_protocol_api.c, ``g_slurm_auth_unpack`` in
src/common/slurm_auth.c, ``slurm_auth_verify`` in the plugins) and fails with
the Slurm error it would report.  protocol_specs/munge.md lists the checks.

One class per method: :class:`MungeAuth` (munged), :class:`OfflineMungeAuth`
(key file, no munged: for recordings and fake daemons), :class:`NoneAuth`.
Each also has ``create_flow``/``verify_flow`` (:mod:`pyslurmrpc.effects`), which
the clients reach with ``yield from``: the runner decides blocking or asyncio.
:class:`AsyncAuth` gives any of them awaitable methods (``AsyncMungeAuth``).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass, field
from typing import Optional, Union

from pyslurmrpc.wire.constants import AUTH_PLUGIN_NAMES, AuthPluginId
from pyslurmrpc.wire.types import Auth, MungeAuthCred, NoneAuthCred
from pyslurmrpc.wire.versions import OLDEST, RELEASES, VERSION_CODES, AuthFraming

from ..effects import Background, Flow, Invoke, NOW, Sleep, WallClock, deadline_passed, pure
from ..runners import run_async, run_sync
from .errors import (
    ESLURM_AUTH_CRED_INVALID, ESLURM_AUTH_UNPACK, ESLURM_PROTOCOL_INCOMPLETE_PACKET,
    SLURM_PROTOCOL_AUTHENTICATION_ERROR, MungeError, MungeOutOfTimeError, SlurmAuthError,
)
from .munge import MungeClient
from .munge_constants import MungeErr
from .munge_cred import KeyLike, MungeKey, ReplayCache, decode_offline, encode_offline
from .munge_proto import Credential
from .munge_xfer import LIBMUNGE_RETRY, RetryPolicy, out_of_time
from .premint import CredentialStock

# versions and plugin ids come from the release table (pyslurmrpc.wire.versions / constants)
SLURM_19_05_PROTOCOL_VERSION = VERSION_CODES["19.05"]
SLURM_18_08_PROTOCOL_VERSION = VERSION_CODES["18.08"]
SLURM_17_11_PROTOCOL_VERSION = VERSION_CODES["17.11"]
SLURM_MIN_PROTOCOL_VERSION = OLDEST
#: from here envelopes name the plugin by id and auth/none carries the hostname
FIRST_BY_ID_VERSION = min(r.code for r in RELEASES if r.auth is AuthFraming.BY_ID)

# the uint32 after the plugin type in 17.11 / 18.08 envelopes: SLURM_VERSION_NUMBER of the packing
# release (the table's auth_word, as fixtures/slurm-1*-client recorded); 19.05+ pack 0 there instead.
BY_TYPE_PLUGIN_VERSION = {r.code: r.auth_word for r in RELEASES if r.auth is AuthFraming.BY_TYPE}

AUTH_PLUGIN_NONE = AuthPluginId.AUTH_PLUGIN_NONE
AUTH_PLUGIN_MUNGE = AuthPluginId.AUTH_PLUGIN_MUNGE
PLUGIN_NAMES = AUTH_PLUGIN_NAMES

# src/plugins/auth/munge/auth_munge.c: EMUNGE_SOCKET is retried 20 times, 0.1 s apart
SLURM_MUNGE_RETRIES = 20
SLURM_MUNGE_RETRY_DELAY = 0.1


@dataclass(frozen=True)
class VerifiedAuth:
    """What a verified envelope vouches for: who sent the message."""

    uid: int
    gid: int
    plugin: str
    hostname: Optional[str] = None
    credential: Optional[Credential] = field(default=None, repr=False)


def _auth_error(message: str, slurm_errno: int, plugin_errno: Optional[int] = None,
                cause: Optional[MungeError] = None) -> SlurmAuthError:
    return SlurmAuthError(message, slurm_errno=slurm_errno, plugin_errno=plugin_errno,
                          munge_error=cause)


def _check_version(protocol_version: int) -> None:
    if protocol_version < SLURM_MIN_PROTOCOL_VERSION:
        raise _auth_error(f"protocol_version {protocol_version} not supported",
                          SLURM_PROTOCOL_AUTHENTICATION_ERROR)


def _check_plugin(auth: Auth, plugin_id: int, protocol_version: Optional[int]) -> None:
    """``g_slurm_auth_unpack``: only the configured plugin is known to a client.

    From 19.05 the envelope is matched by plugin id, before by plugin name;
    an unknown one makes the receive fail with ESLURM_PROTOCOL_INCOMPLETE_PACKET.
    """
    by_id = protocol_version is None or protocol_version >= FIRST_BY_ID_VERSION
    if by_id and auth.plugin_id is not None:
        ok = auth.plugin_id == plugin_id
    else:
        ok = auth.plugin == PLUGIN_NAMES[plugin_id]
    if not ok:
        raise _auth_error(f"remote auth plugin {auth.plugin!r} (id {auth.plugin_id}) not found; "
                          f"this client uses {PLUGIN_NAMES[plugin_id]}",
                          ESLURM_PROTOCOL_INCOMPLETE_PACKET)


class _MungeEnvelope:
    """Shared envelope logic of the auth/munge authenticators (no I/O)."""

    def _envelope(self, credential: str, protocol_version: int) -> Auth:
        _check_version(protocol_version)
        return MungeAuthCred(credential=credential,  # the word after the name: as that release packs it
                             plugin_version=BY_TYPE_PLUGIN_VERSION.get(protocol_version, 0))

    @staticmethod
    def _credential_of(auth: Auth, protocol_version: Optional[int]) -> str:
        _check_plugin(auth, AUTH_PLUGIN_MUNGE, protocol_version)
        if not auth.credential:
            raise _auth_error("auth/munge envelope without a credential",
                              ESLURM_PROTOCOL_INCOMPLETE_PACKET, ESLURM_AUTH_UNPACK)
        return auth.credential

    @staticmethod
    def _verified(cred: Credential) -> VerifiedAuth:
        return VerifiedAuth(uid=cred.uid, gid=cred.gid, plugin=PLUGIN_NAMES[AUTH_PLUGIN_MUNGE],
                            credential=cred)

    @staticmethod
    def _rejected(err: MungeError) -> SlurmAuthError:
        # auth_munge.c _decode_cred: any MUNGE failure -> ESLURM_AUTH_CRED_INVALID,
        # and slurm_unpack_received_msg turns that into the protocol error.
        return _auth_error(f"Munge decode failed: {err.text}", SLURM_PROTOCOL_AUTHENTICATION_ERROR,
                           ESLURM_AUTH_CRED_INVALID, err)

    @staticmethod
    def _create_failed(err: MungeError) -> SlurmAuthError:
        return _auth_error(f"Munge encode failed: {err.text}", SLURM_PROTOCOL_AUTHENTICATION_ERROR,
                           ESLURM_AUTH_CRED_INVALID, err)


def slurm_retry(make_flow, retries: int, delay: float, budget: Optional[float],
                end: Optional[float] = None) -> Flow:
    """auth_munge's own loop around libmunge: a socket error is tried again ``retries`` times,
    ``delay`` apart, all within ``budget`` seconds (None: no bound) and before ``end`` (the
    runner's time the caller's call ends by; None: none); ``make_flow(deadline)`` gets the
    earlier of the two, so libmunge's own retries and pauses fit in it too."""
    deadline = None if budget is None else (yield NOW) + budget
    if end is not None:
        deadline = end if deadline is None else min(deadline, end)
    attempt, failed = 0, None
    while True:
        try:
            return (yield from make_flow(deadline))
        except MungeOutOfTimeError:
            if failed is not None:   # the time ran out after munged failed: that failure is the error
                raise out_of_time(failed) from None
            raise
        except MungeError as err:
            if err.code != MungeErr.SOCKET or attempt == retries:
                raise
            if deadline is not None and deadline_passed((yield NOW), deadline, delay):
                raise out_of_time(err) from None
            failed = err
        yield Sleep(delay)
        attempt += 1


def bounded_retry(seconds: float, base: RetryPolicy = LIBMUNGE_RETRY) -> RetryPolicy:
    """libmunge's policy with each socket wait shrunk so all its tries fit in ``seconds``."""
    per_try_ms = max(int(seconds * 1000 / base.xfer_attempts), 1)
    return dataclasses.replace(base, timeout_ms=min(base.timeout_ms, per_try_ms))


class MungeAuth(_MungeEnvelope):
    """auth/munge through a local munged; blocking ``create``/``verify``, or their flows.

    ``ttl`` is Slurm's ``AuthInfo=ttl=N`` (None: munged's default).
    ``slurm_retries``/``slurm_retry_delay``: auth_munge's own retry of socket
    errors on top of libmunge's (20 x 0.1 s in Slurm 19.05).  ``budget``:
    seconds after which no further retry starts (None: retry as libslurm does).
    ``premint``: credentials kept minted ahead per payload (0: none, as libslurm);
    the rules are in :mod:`pyslurmrpc.auth.premint`.
    """

    def __init__(self, socket_path: Optional[str] = None, ttl: Optional[int] = None, *,
                 retry: RetryPolicy = LIBMUNGE_RETRY, slurm_retries: int = SLURM_MUNGE_RETRIES,
                 slurm_retry_delay: float = SLURM_MUNGE_RETRY_DELAY, budget: Optional[float] = None,
                 premint: int = 0):
        self.client = MungeClient(socket_path, retry=retry)
        self.ttl = ttl
        self.slurm_retries = slurm_retries
        self.slurm_retry_delay = slurm_retry_delay
        self.budget = budget
        self.stock = CredentialStock(premint) if premint else None

    def __repr__(self) -> str:
        return f"MungeAuth(socket_path={self.client.socket_path!r}, ttl={self.ttl}, stock={self.stock!r})"

    def drop_minted(self) -> None:
        """Forget the credentials minted ahead (a call failed: nothing minted before is used)."""
        if self.stock is not None:
            self.stock.drop()

    def create(self, protocol_version: int = SLURM_19_05_PROTOCOL_VERSION, payload: bytes = b"") -> Auth:
        """:meth:`create_flow` on the blocking runner (:class:`AsyncAuth` awaits it instead)."""
        return run_sync(self.create_flow(protocol_version, payload))

    def verify(self, auth: Auth, protocol_version: Optional[int] = None) -> VerifiedAuth:
        """:meth:`verify_flow` on the blocking runner."""
        return run_sync(self.verify_flow(auth, protocol_version))

    #: its flows take ``end`` (create_flow / verify_flow below pass the caller's deadline on)
    takes_end = True

    def _retrying(self, make_flow, end: Optional[float] = None) -> Flow:
        return slurm_retry(make_flow, self.slurm_retries, self.slurm_retry_delay, self.budget, end)

    def create_flow(self, protocol_version: int = SLURM_19_05_PROTOCOL_VERSION, payload: bytes = b"",
                    end: Optional[float] = None) -> Flow:
        """Envelope with a fresh credential (no uid restriction, as Slurm does).

        ``payload``: what libslurm of that version puts in the credential: nothing
        up to 21.08, the message hash from 22.05 (pyslurmrpc.auth.msg_hash).
        With a stock, a credential minted ahead is used when one is ready, and the
        next is minted in the background while the caller goes on.  ``end``: the
        runner's time by which a mint must have succeeded or failed (None: the budget only).
        """
        cred = None
        if self.stock is not None:
            cred = self.stock.take(payload, (yield NOW))
            yield from self._restock(payload, end)
        if cred is None:
            try:
                cred = yield from self._mint(payload, end)
            except MungeError as err:
                self.drop_minted()
                raise self._create_failed(err) from err
        return self._envelope(cred, protocol_version)

    def _mint(self, payload: bytes, end: Optional[float] = None) -> Flow:
        return self._retrying(lambda deadline: self.client.encode_flow(payload, self.ttl, deadline=deadline), end)

    def _restock(self, payload: bytes, end: Optional[float] = None) -> Flow:
        """Start the mints the stock wants for ``payload``; none is waited for (nor outlives ``end``)."""
        stock = self.stock
        while (generation := stock.reserve(payload)) is not None:
            minted_at = yield NOW

            def done(cred, error, generation=generation, minted_at=minted_at):
                stock.put(payload, generation, minted_at, None if error else cred)
            try:
                yield Background(self._mint(payload, end), done)
            except Exception:  # a runner that cannot start one (no handler, shutting down): mint on demand
                done(None, True)
                return

    def verify_flow(self, auth: Auth, protocol_version: Optional[int] = None, end: Optional[float] = None) -> Flow:
        """Check ``auth`` as libslurm 19.05 does; raise :class:`SlurmAuthError` if it would fail
        (``end``: as for :meth:`create_flow`)."""
        text = self._credential_of(auth, protocol_version)
        try:
            cred = yield from self._retrying(lambda deadline: self.client.decode_flow(text, deadline), end)
        except MungeError as err:
            self.drop_minted()
            raise self._rejected(err) from err
        return self._verified(cred)


class OfflineMungeAuth(_MungeEnvelope):
    """auth/munge from the key file alone: verify recordings, sign as a fake daemon.

    ``ignore_expiry`` skips the time window (recorded credentials are long
    expired); ``replay_cache`` enables replay detection; ``uid``/``gid`` are
    what :meth:`create` claims (root, like a daemon running as SlurmUser=root).
    """

    def __init__(self, key_file: KeyLike, *, ignore_expiry: bool = False,
                 replay_cache: Optional[ReplayCache] = None, uid: int = 0, gid: int = 0,
                 ttl: Optional[int] = None, addr: str = "127.0.0.1"):
        self.key = key_file if isinstance(key_file, MungeKey) else (
            MungeKey(key_file) if isinstance(key_file, bytes) else MungeKey.from_file(key_file))
        self.ignore_expiry = ignore_expiry
        self.replay_cache = replay_cache
        self.uid, self.gid, self.ttl, self.addr = uid, gid, ttl, addr

    def __repr__(self) -> str:
        return f"OfflineMungeAuth(uid={self.uid}, ignore_expiry={self.ignore_expiry})"

    def create(self, protocol_version: int = SLURM_19_05_PROTOCOL_VERSION, payload: bytes = b"") -> Auth:
        """Envelope with a credential minted locally for ``uid``/``gid``."""
        cred = encode_offline(self.key, uid=self.uid, gid=self.gid, addr=self.addr, payload=payload,
                              **({"ttl": self.ttl} if self.ttl else {}))
        return self._envelope(cred, protocol_version)

    def verify(self, auth: Auth, protocol_version: Optional[int] = None, *,
               now: Optional[float] = None) -> VerifiedAuth:
        """See :meth:`MungeAuth.verify`; ``now`` overrides the clock."""
        text = self._credential_of(auth, protocol_version)
        try:
            cred = decode_offline(text, self.key, self.ignore_expiry, now=now,
                                  replay_cache=self.replay_cache)
        except MungeError as err:
            raise self._rejected(err) from err
        return self._verified(cred)

    def create_flow(self, protocol_version: int = SLURM_19_05_PROTOCOL_VERSION, payload: bytes = b"") -> Flow:
        return pure(self.create, protocol_version, payload)

    def verify_flow(self, auth: Auth, protocol_version: Optional[int] = None) -> Flow:
        """:meth:`verify` at the runner's wall clock."""
        now = None if self.ignore_expiry else (yield WallClock())
        return self.verify(auth, protocol_version, now=now)


def short_hostname() -> str:
    """Slurm's ``xshort_hostname``: the host name up to the first dot."""
    return socket.gethostname().split(".", 1)[0]


class NoneAuth:
    """auth/none: the envelope just states uid and gid (and, from 19.05, the host).

    Nothing is verified (auth_none.c ``slurm_auth_verify`` returns success);
    only the plugin must match.  Defaults are this process's euid/egid.
    """

    def __init__(self, uid: Optional[int] = None, gid: Optional[int] = None,
                 hostname: Optional[str] = None):
        self.uid = os.geteuid() if uid is None else uid
        self.gid = os.getegid() if gid is None else gid
        self.hostname = hostname or short_hostname()

    def create(self, protocol_version: int = SLURM_19_05_PROTOCOL_VERSION, payload: bytes = b"") -> Auth:
        """Envelope for ``protocol_version`` (hostname only from 19.05 on); auth/none has no payload."""
        _check_version(protocol_version)
        with_host = protocol_version >= FIRST_BY_ID_VERSION
        return NoneAuthCred(uid=self.uid, gid=self.gid, hostname=self.hostname if with_host else None,
                            plugin_version=BY_TYPE_PLUGIN_VERSION.get(protocol_version, 0))

    def verify(self, auth: Auth, protocol_version: Optional[int] = None) -> VerifiedAuth:
        """Accept any auth/none envelope; return the uid/gid it claims."""
        _check_plugin(auth, AUTH_PLUGIN_NONE, protocol_version)
        if auth.uid is None or auth.gid is None:
            raise _auth_error("auth/none envelope without uid/gid",
                              ESLURM_PROTOCOL_INCOMPLETE_PACKET, ESLURM_AUTH_UNPACK)
        return VerifiedAuth(uid=auth.uid, gid=auth.gid, plugin=PLUGIN_NAMES[AUTH_PLUGIN_NONE],
                            hostname=auth.hostname)

    def create_flow(self, protocol_version: int = SLURM_19_05_PROTOCOL_VERSION, payload: bytes = b"") -> Flow:
        return pure(self.create, protocol_version, payload)

    def verify_flow(self, auth: Auth, protocol_version: Optional[int] = None) -> Flow:
        return pure(self.verify, auth, protocol_version)


def create_flow(auth, protocol_version: int, payload: bytes = b"", end: Optional[float] = None) -> Flow:
    """The flow making ``auth``'s envelope; an object with only a ``create`` method (plain or
    async, with or without a payload argument) is called through the runner.  ``end``: the
    runner's time the caller's call ends by, for an authenticator whose flows wait
    (``takes_end``, MungeAuth); the others finish at once or bound themselves."""
    make = getattr(auth, "create_flow", None)
    if make is not None:
        if end is not None and getattr(auth, "takes_end", False):
            return make(protocol_version, payload, end)
        return make(protocol_version, payload)
    return _invoke(auth.create, (protocol_version, payload) if payload else (protocol_version,))


def verify_flow(auth, envelope: Auth, protocol_version: Optional[int] = None, end: Optional[float] = None) -> Flow:
    """The flow verifying ``envelope`` with ``auth`` (see :func:`create_flow`)."""
    check = getattr(auth, "verify_flow", None)
    if check is not None:
        if end is not None and getattr(auth, "takes_end", False):
            return check(envelope, protocol_version, end)
        return check(envelope, protocol_version)
    return _invoke(auth.verify, (envelope, protocol_version))


def _invoke(fn, args: tuple) -> Flow:
    return (yield Invoke(fn, args))


class AsyncAuth:
    """An authenticator with awaitable ``create``/``verify``: its flows run on the asyncio runner.

    Attributes and flows are the wrapped authenticator's (``AsyncAuth(MungeAuth(...)).client``).
    """

    def __init__(self, auth):
        self.auth = auth

    def __getattr__(self, name):
        if name == "auth":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.auth, name)

    def __repr__(self) -> str:
        return f"AsyncAuth({self.auth!r})"

    async def create(self, protocol_version: int = SLURM_19_05_PROTOCOL_VERSION, payload: bytes = b"") -> Auth:
        return await run_async(create_flow(self.auth, protocol_version, payload))

    async def verify(self, auth: Auth, protocol_version: Optional[int] = None) -> VerifiedAuth:
        return await run_async(verify_flow(self.auth, auth, protocol_version))


def AsyncMungeAuth(*args, **kwargs) -> AsyncAuth:
    """:class:`MungeAuth` with awaitable methods (kept for older code: both clients take MungeAuth)."""
    return AsyncAuth(MungeAuth(*args, **kwargs))


def AsyncNoneAuth(*args, **kwargs) -> AsyncAuth:
    """:class:`NoneAuth` with awaitable methods."""
    return AsyncAuth(NoneAuth(*args, **kwargs))


Authenticator = Union[MungeAuth, OfflineMungeAuth, NoneAuth]
