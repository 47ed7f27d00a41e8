"""How a fake daemon checks the envelope of a request and signs its answer.

Runs any authenticator of :mod:`pyslurmrpc.auth.slurm_auth` (its flows, on the
asyncio runner) behind one awaitable interface.  What 19.05 refuses:

* anything the authenticator refuses (bad MAC, expired, rewound, replayed:
  munged reports those; auth_munge.c ``_decode_cred`` turns every failure
  into ESLURM_AUTH_CRED_INVALID);
* uid/gid-restricted credentials whose restriction does not name the
  daemon's own uid/gid.  auth_munge.c itself never looks at restrictions:
  munged refuses to decode such a credential for any other client
  (EMUNGE_CRED_UNAUTHORIZED), so to slurmctld it is just a failed decode.
  An offline verifier cannot know who decodes, so the check is repeated here.

Only slurmd is given ``accept_replayed``: several fake slurmds on one host
share one munged, so a forwarded credential is "replayed" for every peer
after the first - the case Slurm's MULTIPLE_SLURMD build tolerates.
"""

from __future__ import annotations

import os
from typing import Optional

from pyslurmrpc.auth.errors import SLURM_PROTOCOL_AUTHENTICATION_ERROR, SlurmAuthError
from pyslurmrpc.auth.munge_constants import MungeErr
from pyslurmrpc.auth.slurm_auth import VerifiedAuth, create_flow, verify_flow
from pyslurmrpc.runners import run_async
from pyslurmrpc.wire import Auth, MungeAuthCred


class DaemonAuth:
    """Verify request envelopes and create reply envelopes for one daemon.

    ``uid``/``gid``: who the daemon runs as (default: this process), i.e.
    who a uid/gid restriction must name.
    """

    def __init__(self, authenticator, *, uid: Optional[int] = None, gid: Optional[int] = None,
                 accept_replayed: bool = False):
        self.authenticator = authenticator
        self.uid = os.geteuid() if uid is None else uid
        self.gids = {os.getegid(), *os.getgroups()} if gid is None else {gid}
        self.accept_replayed = accept_replayed

    def __repr__(self) -> str:  # never show key material or credentials
        return f"DaemonAuth({type(self.authenticator).__name__}, uid={self.uid})"

    async def verify(self, auth: Auth, protocol_version: int) -> VerifiedAuth:
        """The caller's identity; raises :class:`SlurmAuthError` when 19.05 would refuse."""
        try:
            verified = await run_async(verify_flow(self.authenticator, auth, protocol_version))
        except SlurmAuthError as exc:
            replayed = self._replayed_identity(exc)
            if replayed is None:
                raise
            verified = replayed
        self._check_restrictions(verified)
        return verified

    def _replayed_identity(self, exc: SlurmAuthError) -> Optional[VerifiedAuth]:
        err = exc.munge_error
        if not (self.accept_replayed and err is not None and err.code == MungeErr.CRED_REPLAYED
                and err.credential is not None):
            return None
        cred = err.credential
        return VerifiedAuth(uid=cred.uid, gid=cred.gid, plugin=MungeAuthCred.plugin, credential=cred)

    def _check_restrictions(self, verified: VerifiedAuth) -> None:
        cred = verified.credential
        if cred is None:
            return
        if cred.uid_restriction is not None and cred.uid_restriction != self.uid:
            raise SlurmAuthError("credential restricted to another uid", slurm_errno=SLURM_PROTOCOL_AUTHENTICATION_ERROR)
        if cred.gid_restriction is not None and cred.gid_restriction not in self.gids:
            raise SlurmAuthError("credential restricted to another gid", slurm_errno=SLURM_PROTOCOL_AUTHENTICATION_ERROR)

    async def create(self, protocol_version: int) -> Auth:
        """A fresh envelope for an answer in ``protocol_version``."""
        return await run_async(create_flow(self.authenticator, protocol_version))
