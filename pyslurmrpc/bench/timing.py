"""Timing helpers for the benchmarks: best-of-rounds per-call time and percentiles."""

from __future__ import annotations

import time

ROUNDS = 3
WARMUP = 200


def per_call_us(fn, n: int, rounds: int = ROUNDS) -> float:
    """Microseconds per call: the best of ``rounds`` runs of ``n`` calls (least disturbed by noise)."""
    return taking_turns({"": fn}, n, rounds)[""]


def rotated(turns: list, round_: int) -> list:
    """``turns`` in the order of round ``round_``: each starts a round in turn, so none always runs
    first or just after the same other (a place in the order can cost a side: see versus.py)."""
    shift = round_ % len(turns)
    return turns[shift:] + turns[:shift]


def balanced_orders(n: int) -> list[list[int]]:
    """Orders of ``n`` sides (a Williams design) in which each takes each place equally often
    and comes right after each other side equally often: n orders for an even n, 2n for an odd
    one.  A side measured right after another can pay for it (versus.py): each pays alike."""
    first, low, high = [0], 1, n - 1
    while len(first) < n:              # 0, 1, n-1, 2, n-2, ...
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    rows = [[(side + shift) % n for side in first] for shift in range(n)]
    return rows if n % 2 == 0 else rows + [row[::-1] for row in rows]


def taking_turns(fns: dict, n: int, rounds: int = ROUNDS) -> dict:
    """µs per call of each of ``fns`` (label -> callable): the best of ``rounds`` runs of ``n``
    calls, the callables taking turns round by round so that the machine's drift falls on all,
    in an order that rotates each round so that none always runs first or just after another."""
    for fn in fns.values():
        for _ in range(min(WARMUP, n)):
            fn()
    best = dict.fromkeys(fns, float("inf"))
    turns = list(fns.items())
    for round_ in range(rounds):
        for label, fn in rotated(turns, round_):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best[label] = min(best[label], (time.perf_counter() - start) / n * 1e6)
    return best


def percentiles(samples: list[float], points=(50, 90, 99)) -> dict[str, float]:
    ordered = sorted(samples)
    return {f"p{p}": ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] for p in points}
