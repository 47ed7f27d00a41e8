"""Pure-Python MUNGE encode/decode vs libmunge's C client, against a private munged.

Run: python benchmarks/bench_munge.py [iterations]
Prints milliseconds per credential; asserts nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import sys
import time

from pyslurmrpc.auth.munge import AsyncMungeClient, MungeClient, decode_offline
from pyslurmrpc.testing.munged import MungedHarness

MUNGE_OPT_SOCKET = 8  # munge.h


def _per_call_ms(fn, n: int) -> float:
    for _ in range(min(200, n)):      # warm up (munged threads, caches)
        fn()
    best = float("inf")
    for _ in range(3):                # best of three rounds: least noise
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1000


def _libmunge(socket_path: str):
    """(encode, decode) callables through libmunge.so.2, or None when absent."""
    name = ctypes.util.find_library("munge") or "libmunge.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    libc = ctypes.CDLL(None)
    lib.munge_ctx_create.restype = ctypes.c_void_p
    lib.munge_ctx_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    lib.munge_encode.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.munge_decode.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_void_p]
    libc.free.argtypes = [ctypes.c_void_p]
    ctx = lib.munge_ctx_create()
    lib.munge_ctx_set(ctx, MUNGE_OPT_SOCKET, socket_path.encode())
    out = ctypes.c_void_p()

    def encode() -> bytes:
        if lib.munge_encode(ctypes.byref(out), ctx, None, 0) != 0:
            raise RuntimeError("munge_encode failed")
        text = ctypes.string_at(out)
        libc.free(out)
        return text

    def decode(text: bytes) -> None:
        if lib.munge_decode(text, ctx, None, None, None, None) != 0:
            raise RuntimeError("munge_decode failed")

    return encode, decode


def main(n: int = 5000) -> None:
    with MungedHarness(extra_args=["--benchmark"]) as munged:
        client = MungeClient(munged.socket_path)
        rows = [("pure-Python encode (MungeClient)", _per_call_ms(client.encode, n))]
        creds = iter([client.encode() for _ in range(n * 3 + 200)])
        rows.append(("pure-Python decode (MungeClient)", _per_call_ms(lambda: client.decode(next(creds)), n)))
        c_funcs = _libmunge(munged.socket_path)
        if c_funcs:
            c_encode, c_decode = c_funcs
            rows.append(("libmunge munge_encode via ctypes", _per_call_ms(c_encode, n)))
            c_creds = iter([c_encode() for _ in range(n * 3 + 200)])
            rows.append(("libmunge munge_decode via ctypes", _per_call_ms(lambda: c_decode(next(c_creds)), n)))
        one = client.encode()
        rows.append(("decode_offline (key file, no munged)",
                     _per_call_ms(lambda: decode_offline(one, munged.key_file, ignore_expiry=True), n)))
        rows.append(("AsyncMungeClient encode, 1 in flight", _async_ms(munged.socket_path, n, 1)))
        rows.append(("AsyncMungeClient encode, 32 in flight", _async_ms(munged.socket_path, n, 32)))
    width = max(len(r[0]) for r in rows)
    print(f"munged 0.5.15 --benchmark, {n} calls per round, best of 3")
    for label, ms in rows:
        print(f"  {label:<{width}}  {ms:7.4f} ms/credential")
    if c_funcs:
        print(f"  ratio pure-Python / libmunge encode: {rows[0][1] / rows[2][1]:.2f}x")


def _async_ms(path: str, n: int, concurrency: int) -> float:
    client = AsyncMungeClient(path)

    async def run() -> float:
        async def worker(k):
            for _ in range(k):
                await client.encode()
        await asyncio.gather(*(worker(50) for _ in range(4)))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
        return (time.perf_counter() - t0) / (n // concurrency * concurrency) * 1000

    return asyncio.run(run())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
