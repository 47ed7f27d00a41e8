"""Credentials minted ahead (pyslurmrpc.auth.premint, Client(premint=N)).

Each rule of the stock has a test that fails when the rule is removed; the
integration tests run the real munged and the real slurmctld 22.05 of the harness.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from pyslurmrpc.auth.premint import (
    PREMINT_MAX_AGE, PREMINT_MAX_DEPTH, PREMINT_MAX_PAYLOADS, CredentialStock, PremintCounts,
)
from pyslurmrpc.auth.slurm_auth import AsyncAuth, MungeAuth
from pyslurmrpc.client import AsyncClient, Client
from pyslurmrpc.errors import InvalidArgumentError, TransportError
from pyslurmrpc.testing.netio import free_port

P = b"\x01\x00\x08"  # any payload


def _stocked(stock: CredentialStock, payload: bytes, cred: str, minted_at: float) -> None:
    generation = stock.reserve(payload)
    assert generation is not None
    stock.put(payload, generation, minted_at, cred)


def test_a_credential_is_taken_once():
    stock = CredentialStock(2)
    _stocked(stock, P, "MUNGE:one:", 100.0)
    _stocked(stock, P, "MUNGE:two:", 100.5)
    assert [stock.take(P, 101.0), stock.take(P, 101.0), stock.take(P, 101.0)] == ["MUNGE:one:", "MUNGE:two:", None]
    assert stock.taken == 2


def test_the_stock_is_filled_up_to_its_depth_and_no_further():
    stock = CredentialStock(2)
    assert stock.reserve(P) is not None and stock.reserve(P) is not None
    assert stock.reserve(P) is None  # two mints under way: enough
    assert stock.reserve(b"other") is not None  # per payload


def test_the_stock_is_refilled_only_when_it_runs_dry():
    """While any credential is left no mint starts; the call that finds it dry starts them all."""
    stock = CredentialStock(3)
    for cred in ("MUNGE:a:", "MUNGE:b:", "MUNGE:c:"):
        _stocked(stock, P, cred, 100.0)
    assert stock.reserve(P) is None  # full
    assert stock.take(P, 100.1) == "MUNGE:a:"
    assert stock.reserve(P) is None  # two left: the next calls mint nothing
    assert stock.take(P, 100.1) == "MUNGE:b:" and stock.reserve(P) is None
    assert stock.take(P, 100.1) == "MUNGE:c:"
    assert [stock.reserve(P) is not None for _ in range(4)] == [True, True, True, False]  # dry: refilled at once
    assert stock.reserve(b"other") is not None  # each payload on its own


def test_a_payload_forgotten_mid_refill_starts_afresh():
    stock = CredentialStock(3)
    assert stock.reserve(P) is not None  # a refill of P begins
    for i in range(PREMINT_MAX_PAYLOADS):
        _stocked(stock, bytes([i + 1]) * 3, "MUNGE:x:", 100.0)  # P is pushed out
    assert P not in stock._ready and P not in stock._filling


def test_an_old_credential_is_thrown_away_never_used():
    stock = CredentialStock(2)
    _stocked(stock, P, "MUNGE:old:", 100.0)
    _stocked(stock, P, "MUNGE:new:", 100.0 + PREMINT_MAX_AGE)
    assert stock.take(P, 100.0 + PREMINT_MAX_AGE + 0.01) == "MUNGE:new:"
    assert stock.discarded == 1
    assert _refill(stock) == 1                  # one in two grew old: the next refill is halved


def _refill(stock: CredentialStock, payload: bytes = P) -> int:
    """How many mints the stock starts now (as a call's restock does), all reserved."""
    started = 0
    while stock.reserve(payload) is not None:
        started += 1
    return started


def _fill(stock: CredentialStock, minted_at: float, payload: bytes = P) -> int:
    generation, started = stock._generation, _refill(stock, payload)
    for i in range(started):
        stock.put(payload, generation, minted_at, f"MUNGE:{minted_at}-{i}:")
    return started


def test_credentials_grown_old_halve_the_next_refill():
    stock = CredentialStock(8)
    assert _fill(stock, 100.0) == 8
    assert stock.take(P, 100.1) is not None                                # 7 left
    assert stock.take(P, 100.1 + PREMINT_MAX_AGE) is None                  # all 7 too old
    assert stock.discarded == 7 and _fill(stock, 106.0) == 4               # the caller used 1 of 8


def _call(stock: CredentialStock, now: float):
    """What a call does with the stock: take one, then start the mints it wants (all of them
    ending at once, at ``now``); (the credential or None, mints started)."""
    return stock.take(P, now), _fill(stock, now)


def test_a_caller_slower_than_the_stock_stops_the_refills_and_its_waste():
    stock = CredentialStock(8)
    assert _call(stock, 0.0) == (None, 8)
    for n in range(1, 6):                       # a call every 10 s: nothing minted ahead is used
        assert _call(stock, 10.0 * n) == (None, 0)
    assert stock.counts() == PremintCounts(8, 0, 8, 8)   # the first refill's waste, and no more


def _refill_sizes(stock: CredentialStock, start: float, every: float, calls: int) -> list[int]:
    sizes, now = [], start
    for _ in range(calls):
        now += every
        _, started = _call(stock, now)
        if started:
            sizes.append(started)
    return sizes


def test_a_caller_back_to_a_quick_pace_brings_the_stock_back_to_its_depth():
    stock = CredentialStock(8)
    _call(stock, 0.0)
    assert _call(stock, 60.0) == (None, 0)      # a pause: the refills stop
    sizes = _refill_sizes(stock, 60.0, 0.01, 40)   # then a call every 10 ms
    assert sizes[:5] == [1, 2, 4, 8, 8], sizes   # one brought back, doubled by each young refill
    assert stock.discarded == 8


def test_a_refill_used_only_when_old_does_not_grow():
    """A caller every 3 s takes each credential at more than half its allowed age: a twice
    larger refill would grow too old, so one is minted ahead at a time, and none is wasted."""
    stock = CredentialStock(8)
    _call(stock, 0.0)
    _call(stock, 60.0)
    assert set(_refill_sizes(stock, 60.0, 3.0, 10)) == {1}
    assert stock.discarded == 8 and stock.taken == 9


def test_a_credential_serves_only_its_own_payload():
    stock = CredentialStock(1)
    _stocked(stock, P, "MUNGE:p:", 100.0)
    assert stock.take(b"\x01\x13\x91", 100.1) is None
    assert stock.take(P, 100.1) == "MUNGE:p:"


def test_drop_empties_the_stock_and_voids_mints_under_way():
    stock = CredentialStock(2)
    _stocked(stock, P, "MUNGE:ready:", 100.0)
    late = stock.reserve(P)
    stock.drop()
    stock.put(P, late, 100.2, "MUNGE:late:")  # a mint that started before the error
    assert stock.take(P, 100.3) is None


def test_a_failed_mint_drops_the_stock():
    stock = CredentialStock(2)
    _stocked(stock, P, "MUNGE:ready:", 100.0)
    stock.put(P, stock.reserve(P), 100.1, None)
    assert stock.take(P, 100.2) is None


def test_a_forked_child_never_uses_the_parents_credentials():
    stock = CredentialStock(1)
    _stocked(stock, P, "MUNGE:parent:", time.monotonic())
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if nothing of the parent's is handed out, and it is counted
        taken, counts = stock.take(P, time.monotonic()), stock.counts()
        os._exit(0 if taken is None and (counts.thrown_away, counts.in_stock) == (1, 0) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert stock.take(P, time.monotonic()) == "MUNGE:parent:"  # the parent still may


def test_the_fork_check_makes_no_system_call(monkeypatch):
    """The stock learns of a fork from an at-fork hook, not from getpid() on every check."""
    stock = CredentialStock(2)
    monkeypatch.setattr(os, "getpid", lambda: pytest.fail("getpid() called"))
    _stocked(stock, P, "MUNGE:one:", 100.0)
    assert stock.take(P, 100.1) == "MUNGE:one:"


def test_a_mint_that_ends_in_a_forked_child_is_not_stocked_there():
    stock = CredentialStock(1)
    generation = stock.reserve(P)
    pid = os.fork()
    if pid == 0:  # the child: the parent's mint ends here, and must not be handed out
        stock.put(P, generation, time.monotonic(), "MUNGE:parents-mint:")
        os._exit(0 if stock.take(P, time.monotonic()) is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_counts_say_what_was_taken_minted_and_thrown_away():
    stock = CredentialStock(3)
    assert stock.counts() == PremintCounts(3, 0, 0, 0)
    for cred in ("MUNGE:a:", "MUNGE:b:", "MUNGE:c:"):
        _stocked(stock, P, cred, 100.0)
    assert stock.take(P, 100.1) == "MUNGE:a:"
    stock.drop()                                  # a call failed: the two left are never sent
    assert stock.counts() == PremintCounts(depth=3, taken_from_stock=1, minted_ahead=3, thrown_away=2)


def test_other_messages_credentials_grown_old_are_counted_thrown_away():
    """The credentials of a payload no call asks for again (a detection's probes) stayed in the
    stock uncounted: 24 minted, 12 taken and 6 thrown away left 6 unaccounted for."""
    stock = CredentialStock(4)
    _fill(stock, 100.0, b"probe")                 # minted for a message sent once
    _fill(stock, 100.0)
    assert stock.take(P, 100.1) is not None
    assert stock.counts() == PremintCounts(4, 1, 8, 0, in_stock=7)
    assert stock.take(P, 100.2 + PREMINT_MAX_AGE) is None
    assert stock.counts() == PremintCounts(4, 1, 8, 7, in_stock=0)      # P's 3 and the probe's 4


def test_credentials_pushed_out_by_other_messages_are_counted_thrown_away():
    stock = CredentialStock(1)
    for i in range(PREMINT_MAX_PAYLOADS + 3):
        _stocked(stock, bytes([i + 1]) * 3, "MUNGE:x:", 100.0)
    counts = stock.counts()
    assert (counts.minted_ahead, counts.thrown_away, counts.in_stock) == (PREMINT_MAX_PAYLOADS + 3, 3,
                                                                          PREMINT_MAX_PAYLOADS)


def test_minted_is_always_taken_plus_thrown_away_plus_in_stock():
    import random
    rng = random.Random(13)
    stock, now = CredentialStock(6), 0.0
    payloads = [bytes([i]) * 3 for i in range(PREMINT_MAX_PAYLOADS + 4)]
    for _ in range(3000):
        now += rng.choice((0.01, 0.5, 3.0, PREMINT_MAX_AGE + 1))
        payload, action = rng.choice(payloads[:5] + payloads), rng.random()
        if action < 0.5:
            stock.take(payload, now)
        elif action < 0.97:
            _fill(stock, now, payload)
        else:
            stock.drop()
        c = stock.counts()
        assert c.minted_ahead == c.taken_from_stock + c.thrown_away + c.in_stock, c


def test_a_credential_minted_after_the_call_read_its_clock_is_fresh():
    """Another thread's mint may begin after a call read the time: its age is below 0, and it
    was thrown away as too old (and the next refill halved), for this payload and in the sweep."""
    stock = CredentialStock(2)
    _stocked(stock, b"other", "MUNGE:other:", 100.0 + PREMINT_MAX_AGE + 2)
    _stocked(stock, P, "MUNGE:new:", 100.0 + PREMINT_MAX_AGE + 2)
    assert stock.take(P, 100.0 + PREMINT_MAX_AGE + 1) == "MUNGE:new:"
    assert stock.counts() == PremintCounts(2, 1, 2, 0, in_stock=1)


def test_a_client_without_premint_has_no_counts():
    assert Client("127.0.0.1", 6817).premint_counts is None
    assert Client("127.0.0.1", 6817, premint=2).premint_counts == PremintCounts(2, 0, 0, 0)


def test_payloads_remembered_are_bounded_and_the_repr_shows_no_credential():
    stock = CredentialStock(1)
    for i in range(PREMINT_MAX_PAYLOADS + 5):
        _stocked(stock, bytes([i]), f"MUNGE:secret{i}:", 100.0)
    assert len(stock._ready) == PREMINT_MAX_PAYLOADS
    assert "secret" not in repr(stock)


@pytest.mark.parametrize("bad", [-1, PREMINT_MAX_DEPTH + 1, 1.5, True, "1"])
def test_the_premint_argument_is_checked(bad):
    with pytest.raises(InvalidArgumentError, match="premint"):
        Client("127.0.0.1", 6817, premint=bad)


def test_pings_use_credentials_minted_ahead(slurmctld, munged):
    """Against the real 22.05 controller: every ping answered, most on a credential minted ahead
    (slurmctld's munged refuses a credential used twice, so each was used once)."""
    client = Client(slurmctld.host, slurmctld.port, munge_socket=str(munged.socket_path), premint=1)
    threads = set(threading.enumerate())
    assert all(client.ping() for _ in range(30))
    counts = client.premint_counts
    assert counts.depth == 1 and counts.taken_from_stock >= 20 and counts.minted_ahead >= 20, counts
    # the blocking runner mints in the caller's thread, during the call's waits: no thread is made
    assert set(threading.enumerate()) <= threads


def test_a_deeper_stock_mints_in_one_call_of_its_depth(slurmctld, munged):
    """premint=4 against the real controller: a call mints four credentials or none, so three
    calls in four send no request to munged of their own."""
    client = Client(slurmctld.host, slurmctld.port, munge_socket=str(munged.socket_path), premint=4)
    assert client.ping()  # the first call also learns the controller's release (another payload)
    minted_by_call = []
    for _ in range(20):
        before = client.premint_counts.minted_ahead
        assert client.ping()
        minted_by_call.append(client.premint_counts.minted_ahead - before)
    assert set(minted_by_call) <= {0, 4}, minted_by_call
    taken = client.premint_counts.taken_from_stock
    assert minted_by_call.count(4) == 5 and taken >= 20, (minted_by_call, taken)


def test_a_client_that_calls_seldom_stops_minting_ahead(slurmctld, munged, monkeypatch):
    """Against the real controller, a ping every 0.3 s with credentials allowed 0.2 s: the first
    refill grows old unused, and then no more is minted ahead (munged is not asked for
    credentials that would be thrown away); calls at a quick pace again bring the stock back."""
    from pyslurmrpc.auth import premint
    monkeypatch.setattr(premint, "PREMINT_MAX_AGE", 0.2)
    client = Client(slurmctld.host, slurmctld.port, munge_socket=str(munged.socket_path), premint=4)
    assert client.ping()        # the first call also learns the controller's release (another payload)
    time.sleep(0.3)
    assert client.ping()        # what the first call minted ahead has grown old
    first = client.premint_counts
    for _ in range(4):
        time.sleep(0.3)
        assert client.ping()
    slow = client.premint_counts
    assert (slow.minted_ahead, slow.thrown_away, slow.taken_from_stock) == (
        first.minted_ahead, first.thrown_away, first.taken_from_stock), (first, slow)
    assert all(client.ping() for _ in range(30))
    quick = client.premint_counts
    assert quick.taken_from_stock >= first.taken_from_stock + 20 and quick.thrown_away == slow.thrown_away, (
        slow, quick)


def test_async_pings_use_credentials_minted_ahead(slurmctld, munged):
    client = AsyncClient(slurmctld.host, slurmctld.port, munge_socket=str(munged.socket_path), premint=2)

    async def many():
        answers = []
        for _ in range(20):
            answers += await asyncio.gather(client.ping(), client.ping())
        return answers
    assert all(asyncio.run(many()))
    assert client.premint_counts.taken_from_stock >= 20, client.premint_counts


def test_a_failed_call_drops_what_was_minted(munged):
    """Nothing listens at the port: the call fails, and the credential minted meanwhile is never used."""
    client = Client("127.0.0.1", free_port(), munge_socket=str(munged.socket_path), premint=1, timeout=1)
    stock = client._auth.stock
    with pytest.raises(TransportError):
        client.ping(0)
    time.sleep(0.3)  # the background mint has ended (munged answers in milliseconds)
    assert stock.take(next(iter(stock._ready), P), time.monotonic()) is None


def test_a_mint_cut_short_by_the_loop_closing_does_not_stall_the_stock(munged):
    """asyncio.run() cancels a background mint still running when it returns; the stock must
    not wait for it forever (it would never mint for that payload again)."""
    auth = MungeAuth(str(munged.socket_path), premint=1)

    async def one_create():
        await AsyncAuth(auth).create(0x2600, P)   # starts a background mint, returns at once
    for _ in range(3):
        asyncio.run(one_create())
    assert auth.stock.reserve(P) is not None or auth.stock.take(P, time.monotonic()) is not None


def test_a_runner_that_cannot_start_a_mint_still_makes_the_call(munged):
    """A runner without Background (a caller's own, or one shutting down): the credential is
    minted on demand, the stock stays empty, nothing fails."""
    from pyslurmrpc.effects import Background
    from pyslurmrpc.runners import SyncRunner, _sync_handlers

    runner = SyncRunner()
    runner.table = {k: v for k, v in _sync_handlers(runner).items() if k is not Background}
    auth = MungeAuth(str(munged.socket_path), premint=1)
    for _ in range(2):
        envelope = runner.run(auth.create_flow(0x2600, P))
        assert envelope.credential.startswith("MUNGE:")
    assert auth.stock.taken == 0 and auth.stock.reserve(P) is not None


def test_leaving_a_with_block_drops_the_credentials_minted_ahead(slurmctld, munged):
    """Client.close (a with block's end) throws the stock away; the client still works after."""
    with Client(slurmctld.host, slurmctld.port, munge_socket=str(munged.socket_path), premint=4) as client:
        assert all(client.ping() for _ in range(3))
        left = client.premint_counts.minted_ahead - client.premint_counts.taken_from_stock
        assert left > 0 and client.premint_counts.thrown_away == 0
    assert client.premint_counts.thrown_away == left
    assert client.ping()


async def test_leaving_an_async_with_block_drops_the_credentials_minted_ahead(slurmctld, munged):
    async with AsyncClient(slurmctld.host, slurmctld.port, munge_socket=str(munged.socket_path),
                           premint=4) as client:
        assert all([await client.ping() for _ in range(3)])
        left = client.premint_counts.minted_ahead - client.premint_counts.taken_from_stock
    assert left > 0 and client.premint_counts.thrown_away == left
