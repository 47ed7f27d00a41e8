"""Load: 10,000 checkpoint calls from 200 concurrent asyncio tasks, MUNGE on (issue 8).

The controller is :class:`pyslurmrpc.fake.FakeSlurmctld` with the "simulated"
checkpoint plugin and ``AsyncMungeAuth`` against the session munged, running
on its own event loop in a background thread; the client is one
:class:`pyslurmrpc.AsyncClient` with auth/munge.  Every request and every reply
carries a fresh credential that munged both mints and verifies (40,000 munged
transactions in all).

"All answered, none lost or duplicated" is proven by the fake's own state:

* 8,000 ``checkpoint_disable`` calls are spread at random over 50 steps; the
  simulated plugin counts disables per step (``SimState.disabled``), so each
  step's counter must equal exactly the number of disables sent to it;
* 2,000 ``checkpoint_task_complete`` calls each carry a unique error message;
  the controller's handler is wrapped to record what it handled, and the
  multiset of messages handled must equal the set sent, each once;
* the per-(message type, job, step, op) count of handled requests equals what
  was sent, and every call returned success to its caller.

Memory: peak RSS (``VmHWM``) and current RSS are read before and after; the
growth must stay under :data:`RSS_BOUND_MB`.  The figures are printed (run
with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import time

from pyslurmrpc import AsyncClient
from pyslurmrpc.auth.slurm_auth import AsyncMungeAuth
from pyslurmrpc.fake import Cluster, FakeSlurmctld
from pyslurmrpc.wire import CheckOp, MsgType

CALLS = 10_000
TASK_COMPLETES = 2_000
CONCURRENCY = 200
JOBS = 10
STEPS = 5
#: generous bound on memory growth over the run
RSS_BOUND_MB = 200
#: correctness bound: the run must end (no call may hang); not a speed assertion
RUN_TIMEOUT = 300


def rss_kb(field: str) -> int:
    """``VmHWM`` (peak) or ``VmRSS`` (current) of this process, in kB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class CountingFake(FakeSlurmctld):
    """The fake slurmctld with its controller's handler wrapped to record each handled request."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.handled = collections.Counter()
        self.messages = collections.Counter()
        handle = self.controller.handle

        def counting(uid, msg_type, body):
            reply = handle(uid, msg_type, body)
            op = getattr(body, "op", None)
            self.handled[(int(msg_type), body.job_id, body.step_id, op)] += 1
            if msg_type == MsgType.REQUEST_CHECKPOINT_TASK_COMP:
                self.messages[body.error_msg] += 1
            return reply
        self.controller.handle = counting


def plan(seed: int = 1905):
    """The calls to make: ("disable", job, step) and ("task_complete", job, step, message)."""
    rng = random.Random(seed)
    pairs = [(job, step) for job in range(1, JOBS + 1) for step in range(STEPS)]
    calls = [("disable", *rng.choice(pairs)) for _ in range(CALLS - TASK_COMPLETES)]
    calls += [("task_complete", *rng.choice(pairs), f"req-{i}") for i in range(TASK_COMPLETES)]
    rng.shuffle(calls)
    return pairs, calls


async def run_load(port: int, munge_socket: str, calls):
    client = AsyncClient("127.0.0.1", port, auth="munge", munge_socket=munge_socket, timeout=60)
    queue = collections.deque(calls)
    results = []

    async def worker():
        while queue:
            call = queue.popleft()
            if call[0] == "disable":
                result = await client.checkpoint_disable(call[1], call[2])
            else:
                result = await client.checkpoint_task_complete(call[1], call[2], 0, 0, 0, call[3])
            results.append((call, result))

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), RUN_TIMEOUT)
    current = asyncio.current_task()
    assert asyncio.all_tasks() == {current}
    return results


def test_ten_thousand_calls_through_the_fake_with_munge(munged):
    uid = os.geteuid()
    cluster = Cluster()
    for job in range(1, JOBS + 1):
        cluster.add_job(job, uid, "running", steps=range(STEPS))
    pairs, calls = plan()

    fake = CountingFake(cluster, plugin="simulated", auth=AsyncMungeAuth(munged.socket_path),
                        message_timeout=60)
    peak_before, rss_before = rss_kb("VmHWM"), rss_kb("VmRSS")
    start = time.monotonic()
    with fake:
        results = asyncio.run(run_load(fake.port, munged.socket_path, calls))
        # read the fake's state on its own loop thread
        disabled = fake.call(lambda: {(j, s): getattr(cluster.jobs[j].steps[s].plugin_state, "disabled", 0)
                                      for j, s in pairs})
        handled = fake.call(lambda: collections.Counter(fake.handled))
        messages = fake.call(lambda: collections.Counter(fake.messages))
    duration = time.monotonic() - start
    peak_after, rss_after = rss_kb("VmHWM"), rss_kb("VmRSS")
    print(f"\nload: {CALLS} calls, {CONCURRENCY} tasks, MUNGE on: {duration:.1f} s "
          f"({CALLS / duration:.0f} calls/s); peak RSS {peak_before / 1024:.1f} -> {peak_after / 1024:.1f} MB, "
          f"RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MB")

    # every call answered, successfully, exactly once
    assert len(results) == CALLS
    assert collections.Counter(call for call, _ in results) == collections.Counter(calls)
    assert all(result is None for _, result in results)

    # the fake's state matches what was sent
    sent_disables = collections.Counter((c[1], c[2]) for c in calls if c[0] == "disable")
    assert disabled == {pair: sent_disables.get(pair, 0) for pair in pairs}
    assert messages == collections.Counter(c[3] for c in calls if c[0] == "task_complete")
    assert set(messages.values()) == {1}
    expected = collections.Counter()
    for c in calls:
        if c[0] == "disable":
            expected[(int(MsgType.REQUEST_CHECKPOINT), c[1], c[2], int(CheckOp.CHECK_DISABLE))] += 1
        else:
            expected[(int(MsgType.REQUEST_CHECKPOINT_TASK_COMP), c[1], c[2], None)] += 1
    assert handled == expected

    # memory stays flat
    assert (peak_after - peak_before) / 1024 < RSS_BOUND_MB
    assert (rss_after - rss_before) / 1024 < RSS_BOUND_MB
