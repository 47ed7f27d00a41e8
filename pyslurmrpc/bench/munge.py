"""MUNGE figures: pure-Python encode/decode against munged, and libmunge's C calls side by side."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time

from ..auth.munge import AsyncMungeClient, MungeClient, decode_offline
from . import floor
from .timing import ROUNDS, WARMUP, per_call_us, taking_turns

MUNGE_OPT_SOCKET = 8  # munge.h: munge_ctx_set option for the socket path
#: the rows of the hand-written floor (floor.py): the least Python of a munged transaction
FLOOR_ENCODE, FLOOR_DECODE = "floor encode (floor.py)", "floor decode (floor.py)"


def libmunge(socket_path: str):
    """(encode, decode) callables through libmunge.so.2 via ctypes, or None when it is absent."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("munge") or "libmunge.so.2")
    except OSError:
        return None
    libc = ctypes.CDLL(None)
    lib.munge_ctx_create.restype = ctypes.c_void_p
    lib.munge_ctx_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    lib.munge_encode.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.munge_decode.argtypes = [ctypes.c_char_p, ctypes.c_void_p] + [ctypes.c_void_p] * 4
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


def _async_us(path: str, n: int, in_flight: int) -> float:
    client = AsyncMungeClient(path)

    async def run() -> float:
        per_task = max(n // in_flight, 1)

        async def worker():
            for _ in range(per_task):
                await client.encode()
        await asyncio.gather(*(worker() for _ in range(min(in_flight, 4))))
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return (time.perf_counter() - start) / (per_task * in_flight) * 1e6

    return asyncio.run(run())


def run(socket_path: str, key_file: str | None = None, n: int = 3000) -> list[dict]:
    """Rows of (label, µs per credential), pure Python and libmunge side by side (taking turns)."""
    client = MungeClient(socket_path)
    fns = {"pure-Python encode": client.encode, FLOOR_ENCODE: floor.munge_encode(socket_path)}
    c_funcs = libmunge(socket_path)
    if c_funcs:
        fns["libmunge munge_encode (C)"] = c_funcs[0]
    timed = taking_turns(fns, n)
    # every decode needs a fresh credential (munged refuses a replay): minted before the clock runs
    decodes = n * (ROUNDS + 1) + WARMUP
    creds = iter([client.encode() for _ in range(decodes)])
    floor_creds = iter([client.encode() for _ in range(decodes)])
    floor_decode = floor.munge_decode(socket_path)
    dec = {"pure-Python decode": lambda: client.decode(next(creds)),
           FLOOR_DECODE: lambda: floor_decode(next(floor_creds))}
    if c_funcs:
        c_encode, c_decode = c_funcs
        c_creds = iter([c_encode() for _ in range(decodes)])
        dec["libmunge munge_decode (C)"] = lambda: c_decode(next(c_creds))
    timed.update(taking_turns(dec, n))
    order = ["pure-Python encode", "pure-Python decode", "libmunge munge_encode (C)", "libmunge munge_decode (C)",
             FLOOR_ENCODE, FLOOR_DECODE]
    rows = [{"label": label, "us": timed[label]} for label in order if label in timed]
    if key_file:
        one = client.encode()
        rows.append({"label": "decode_offline (key file)",
                     "us": per_call_us(lambda: decode_offline(one, key_file, ignore_expiry=True), n)})
    rows.append({"label": "AsyncMungeClient encode, 32 in flight", "us": _async_us(socket_path, n, 32)})
    return rows


def ratios(rows: list[dict]) -> dict[str, float]:
    """pure-Python / libmunge, per operation both were measured for (``--json`` keeps them)."""
    by = {r["label"]: r["us"] for r in rows}
    return {op: round(by[f"pure-Python {op}"] / by[f"libmunge munge_{op} (C)"], 3)
            for op in ("encode", "decode")
            if by.get(f"libmunge munge_{op} (C)") and f"pure-Python {op}" in by}
