"""What real controllers of four releases answer to a REQUEST_PING in each header version.

Judged on the raw bytes (not through pyslurmrpc's decoder), so these facts hold
whatever the client or decoder does with them; protocol_specs/real_daemons.md
explains each from the source.  The requests are the harness's own ping frames
(``ping_frame``) with a real MUNGE credential of the session's munged.
"""

from __future__ import annotations

import struct

import pytest

from pyslurmrpc.auth.slurm_auth import MungeAuth
from pyslurmrpc.testing.slurmctld import exchange, ping_frame, release_slurmctld_or_skip
from pyslurmrpc.wire.versions import VERSION_CODES

#: SLURM_MIN_PROTOCOL_VERSION .. SLURM_PROTOCOL_VERSION (src/common/slurm_protocol_common.h at each tag)
ACCEPTS = {"20.11": (0x2200, 0x2400), "22.05": (0x2400, 0x2600),
           "24.11": (0x2700, 0x2A00), "26.05": (0x2A00, 0x2D00)}
#: replies without a credential, flag SLURM_NO_AUTH_CRED (slurm_protocol_api.c _response_init /
#: slurm_resp_msg_init: every reply from 24.05 on, 23.02+ protocol replies in 23.02/23.11)
NO_AUTH_CRED = 0x0040
REPLIES_WITHOUT_CREDENTIAL = frozenset({"24.11", "26.05"})
RESPONSE_SLURM_RC = 8001
SLURM_PROTOCOL_AUTHENTICATION_ERROR = 1007  # src/common/slurm_errno.h
HEADER = struct.Struct(">IHHH")             # length, version, flags, msg_type
#: below 22.05 a 16-bit word (msg_index, 0 from 22.05's pack_header) sits before msg_type
#: (slurm_protocol_pack.c pack_header at slurm-21-08-8-2 and slurm-22-05-8-1)
OLD_HEADER = struct.Struct(">IHHxxH")
FIRST_WITHOUT_MSG_INDEX = 0x2600
RC_FRAME_WITHOUT_CREDENTIAL = 24            # length + header(16) + rc(4), no auth section

#: how each release refuses a version outside ACCEPTS (see protocol_specs/real_daemons.md)
CLOSE, UNAUTHENTICATED_RC, HTTP_405 = "closes", "unauthenticated RESPONSE_SLURM_RC", "HTTP 405"
REFUSAL = {"20.11": CLOSE, "22.05": CLOSE, "24.11": UNAUTHENTICATED_RC, "26.05": HTTP_405,
           "26.05-disable_http": CLOSE}
MODES = {"20.11": "", "22.05": "", "24.11": "", "26.05": "", "26.05-disable_http": "disable_http"}


@pytest.fixture(scope="module", params=list(MODES))
def ctld(request, munged):
    release = request.param.split("-")[0]
    comm = MODES[request.param]
    extra = f"CommunicationParameters={comm}\n" if comm else ""
    harness = release_slurmctld_or_skip(pytest, munged.socket_path, release, extra_conf=extra)
    harness.mode, harness.release_name = request.param, release
    yield harness
    harness.stop()


def _answer(ctld, munged, name: str):
    ex = exchange(ctld.host, ctld.port, ping_frame(MungeAuth(munged.socket_path), name),
                  timeout=5, until_frame=True)
    return bytes(ex.received)


@pytest.mark.parametrize("name", list(VERSION_CODES))
def test_ping_in_each_header_version(ctld, munged, name):
    code = VERSION_CODES[name]
    got = _answer(ctld, munged, name)
    print(f"{ctld.mode} <- {name} (0x{code:04x}): {got[:64]!r}")
    low, high = ACCEPTS[ctld.release_name]
    own = ACCEPTS[ctld.release_name][1]
    if low <= code <= high:
        layout = HEADER if code >= FIRST_WITHOUT_MSG_INDEX else OLD_HEADER
        length, version, flags, msg_type = layout.unpack_from(got)
        assert (version, msg_type) == (code, RESPONSE_SLURM_RC) and length + 4 == len(got)
        without = ctld.release_name in REPLIES_WITHOUT_CREDENTIAL
        assert bool(flags & NO_AUTH_CRED) == without
        assert (len(got) == RC_FRAME_WITHOUT_CREDENTIAL) == without
        assert (b"MUNGE:" in got) != without
        if without:
            assert got[-4:] == b"\0\0\0\0"  # rc SLURM_SUCCESS (else the credential comes last)
        return
    refusal = REFUSAL[ctld.mode]
    if refusal == CLOSE:
        assert got == b""
    elif refusal == HTTP_405:
        assert got.startswith(b"HTTP/1.1 405 ")
    else:
        length, version, flags, msg_type = HEADER.unpack_from(got)
        assert (version, msg_type, flags & NO_AUTH_CRED) == (own, RESPONSE_SLURM_RC, NO_AUTH_CRED)
        assert len(got) == RC_FRAME_WITHOUT_CREDENTIAL and b"MUNGE:" not in got
        assert struct.unpack(">I", got[-4:])[0] == SLURM_PROTOCOL_AUTHENTICATION_ERROR
