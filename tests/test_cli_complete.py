"""checkpoint complete sends scontrol 19.05's first test code (update_job.c: a static starting at 1, one per process)."""

from pyslurmrpc.cli import main
from pyslurmrpc.wire import decode_message
from peers import ReplayPeer
from test_client_behaviour import reply_rc

def test_complete_sends_scontrols_first_test_code_every_time(capsys):
    with ReplayPeer(reply_rc) as peer:
        for _ in range(2):
            assert main(["--controller", f"{peer.host}:{peer.port}", "--auth", "none", "--timeout", "2",
                         "checkpoint", "complete", "2.0"]) == 0
    bodies = [decode_message(frame).body for frame in peer.received]
    assert [(b.error_code, b.error_msg) for b in bodies] == [(1, "test error message 1")] * 2
