"""The Shared action: a flow run once for every run asking with the same key while it runs (one
detection round for many first calls at once), on both runners."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pyslurmrpc.effects import NOW, Invoke, Now, Shared
from pyslurmrpc.runners import AsyncRunner, SyncRunner

WAIT = 10.0        # a waiter's deadline, from now: far beyond what a run here takes


class Job:
    """The shared flow: counts its runs, and ends (or fails) when ``release`` is set."""

    def __init__(self, fail: bool = False):
        self.runs, self.fail, self.started, self.release = 0, fail, threading.Event(), threading.Event()

    def flow(self):
        self.runs += 1
        self.started.set()
        yield Invoke(self.release.wait, (WAIT,))
        if self.fail:
            raise RuntimeError("the round failed")
        return "verdict"


def asking(job: Job, key="ctl", wait: float = WAIT):
    """A call's flow: the Shared round, and what it got."""
    deadline = (yield NOW) + wait
    return (yield Shared(key, job.flow(), deadline))


def _sync_runner() -> SyncRunner:
    return SyncRunner({Now: lambda a: time.monotonic(), Invoke: lambda a: a.fn(*a.args)})


def _at_once(runner: SyncRunner, job: Job, flows: list) -> list:
    """The first flow runs until its round started; then the rest ask; then the round ends."""
    with ThreadPoolExecutor(len(flows)) as pool:
        first = pool.submit(runner.run, flows[0])
        assert job.started.wait(WAIT)
        rest = [pool.submit(runner.run, f) for f in flows[1:]]
        time.sleep(0.2)                      # every other thread is waiting by now
        job.release.set()
        outcomes = []
        for future in [first, *rest]:
            try:
                outcomes.append(future.result(WAIT))
            except RuntimeError as exc:
                outcomes.append(exc)
    return outcomes


def test_threads_asking_at_once_get_the_value_of_one_run():
    job = Job()
    assert _at_once(_sync_runner(), job, [asking(job) for _ in range(8)]) == [(True, "verdict")] * 8
    assert job.runs == 1


def test_a_failed_run_is_raised_to_its_runner_and_leaves_the_waiters_to_their_own():
    job = Job(fail=True)
    outcomes = _at_once(_sync_runner(), job, [asking(job) for _ in range(4)])
    assert isinstance(outcomes[0], RuntimeError) and outcomes[1:] == [(False, None)] * 3 and job.runs == 1


def test_a_waiter_whose_deadline_comes_first_stops_waiting_on_time():
    job = Job()
    outcomes = _at_once(_sync_runner(), job, [asking(job), asking(job, wait=0.05), asking(job, wait=-1)])
    assert outcomes == [(True, "verdict"), (None, None), (None, None)] and job.runs == 1


def test_other_keys_and_later_asks_run_again():
    job = Job()
    job.release.set()
    runner = _sync_runner()
    assert runner.run(asking(job, "a")) == runner.run(asking(job, "b")) == runner.run(asking(job, "a"))
    assert job.runs == 3                      # nothing is cached: only runs under way are shared


def test_a_child_forked_while_a_run_is_under_way_waits_for_none():
    """The parent's run is not the child's: its waiter would have waited out its deadline (and the
    lock, had another thread held it at the fork, would never be free)."""
    job = Job()
    runner = _sync_runner()
    with ThreadPoolExecutor(1) as pool:
        under_way = pool.submit(runner.run, asking(job))
        assert job.started.wait(WAIT)
        pid = os.fork()
        if pid == 0:                          # the child: its own run, at once
            child = Job()
            child.release.set()
            os._exit(0 if runner.run(asking(child, wait=WAIT)) == (True, "verdict") else 1)
        start = time.monotonic()
        _, status = os.waitpid(pid, 0)
        job.release.set()
        assert under_way.result(WAIT) == (True, "verdict")
    assert os.waitstatus_to_exitcode(status) == 0 and time.monotonic() - start < WAIT / 2


def _async_runner(now=None) -> AsyncRunner:
    now = now or (lambda a: time.monotonic())
    return AsyncRunner({Invoke: lambda a: asyncio.to_thread(a.fn, *a.args)}, fast={Now: now})


async def _tasks_at_once(runner: AsyncRunner, job: Job, flows: list) -> list:
    first = asyncio.create_task(runner.run(flows[0]))
    await asyncio.to_thread(job.started.wait, WAIT)
    rest = [asyncio.create_task(runner.run(f)) for f in flows[1:]]
    await asyncio.sleep(0.1)
    job.release.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


async def test_tasks_asking_at_once_get_the_value_of_one_run():
    job = Job()
    assert await _tasks_at_once(_async_runner(), job, [asking(job) for _ in range(8)]) == [(True, "verdict")] * 8
    assert job.runs == 1


async def test_a_failed_task_run_leaves_the_waiters_to_their_own():
    job = Job(fail=True)
    outcomes = await _tasks_at_once(_async_runner(), job, [asking(job) for _ in range(4)])
    assert isinstance(outcomes[0], RuntimeError) and outcomes[1:] == [(False, None)] * 3 and job.runs == 1


async def test_a_task_whose_deadline_comes_first_stops_waiting_on_time():
    job = Job()
    outcomes = await _tasks_at_once(_async_runner(), job, [asking(job), asking(job, wait=0.05), asking(job, wait=-1)])
    assert outcomes == [(True, "verdict"), (None, None), (None, None)] and job.runs == 1


async def test_a_waiters_deadline_is_read_on_the_runners_own_clock():
    """A clock the runner awaits (in its table, not its fast steps) was passed over for the
    machine's: deadlines on another clock had passed, so nobody waited."""
    job = Job()
    virtual = 100.0

    async def now(action):
        return virtual
    runner = AsyncRunner({Invoke: lambda a: asyncio.to_thread(a.fn, *a.args), Now: now})
    outcomes = await _tasks_at_once(runner, job, [asking(job) for _ in range(4)])
    assert outcomes == [(True, "verdict")] * 4 and job.runs == 1


async def test_a_cancelled_run_leaves_the_waiters_to_their_own():
    job = Job()
    runner = _async_runner()
    first = asyncio.create_task(runner.run(asking(job)))
    await asyncio.to_thread(job.started.wait, WAIT)
    waiters = [asyncio.create_task(runner.run(asking(job))) for _ in range(3)]
    await asyncio.sleep(0.1)
    first.cancel()
    assert await asyncio.gather(*waiters) == [(False, None)] * 3
    job.release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert job.runs == 1


def test_a_call_from_a_signal_handler_in_the_running_thread_does_not_wait_for_itself():
    """A SIGALRM handler's ping came in while its own thread ran the round: it waited out its
    deadline for a round that could not go on until it returned."""
    job, inner = Job(), Job()
    inner.release.set()
    runner = _sync_runner()
    answers = []

    def handler():                           # runs in the thread running the shared flow
        start = time.monotonic()
        answers.append((runner.run(asking(inner)), time.monotonic() - start))
        job.release.set()
        return True

    def flow():
        job.runs += 1
        yield Invoke(handler)
        return "verdict"
    job.flow = flow
    assert runner.run(asking(job)) == (True, "verdict")
    (got, took), = answers
    assert got == (None, None) and took < 1 and inner.runs == 0


def test_a_call_from_a_signal_handler_while_its_thread_holds_the_lock_runs_unshared():
    """With the lock re-entrant, a handler's call coming in while its thread held it became the
    round's runner, and every other thread's call blocked on the lock, with no deadline, for
    as long as that round took."""
    job, inner = Job(), Job()
    job.release.set()
    inner.release.set()
    runner = _sync_runner()
    shared = runner._shared
    answers = []

    class SignalInside:
        """The lock, with a signal handler's call coming in once it is held."""

        def __init__(self, lock):
            self.lock, self.fired = lock, False

        def __enter__(self):
            self.lock.__enter__()
            if not self.fired:
                self.fired = True
                answers.append(runner.run(asking(inner)))
            return self

        def __exit__(self, *exc):
            return self.lock.__exit__(*exc)
    shared._lock = SignalInside(shared._lock)
    assert runner.run(asking(job)) == (True, "verdict")
    assert answers == [(None, None)] and inner.runs == 0 and shared._under_way == {}
