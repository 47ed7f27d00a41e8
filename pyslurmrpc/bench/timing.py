"""Timing helpers for the benchmarks: best-of-rounds per-call time and percentiles."""

from __future__ import annotations

import time

ROUNDS = 3
WARMUP = 200


def per_call_us(fn, n: int, rounds: int = ROUNDS) -> float:
    """Microseconds per call: the best of ``rounds`` runs of ``n`` calls (least disturbed by noise)."""
    for _ in range(min(WARMUP, n)):
        fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def percentiles(samples: list[float], points=(50, 90, 99)) -> dict[str, float]:
    ordered = sorted(samples)
    return {f"p{p}": ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] for p in points}
