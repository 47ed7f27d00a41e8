"""The Framer copies a frame at most once (issue 14 item 2): memory for a large reply stays near 2x its size."""

from __future__ import annotations

import tracemalloc

from pyslurmrpc.wire import Framer

SIZE = 32 * 1024 * 1024
CHUNK = 64 * 1024


def _frame(size: int) -> bytes:
    return (size - 4).to_bytes(4, "big") + bytes(size - 4)


def test_a_frame_in_one_chunk_is_returned_without_a_copy():
    frame = _frame(1000)
    assert Framer().feed(frame)[0] is frame


def test_a_frame_in_many_chunks_is_copied_once():
    frame = _frame(SIZE)
    chunks = [frame[i:i + CHUNK] for i in range(0, SIZE, CHUNK)]
    del frame
    framer = Framer()
    tracemalloc.start()
    try:
        out = []
        for chunk in chunks:
            out += framer.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(out) == 1 and len(out[0]) == SIZE and framer.pending == 0
    # the chunks are held by the caller here; the framer may add one joined copy, nothing more
    assert peak < 1.25 * SIZE, f"peak {peak / SIZE:.2f}x the frame"


def test_frames_split_anywhere_come_out_whole_and_in_order():
    frames = [_frame(n) for n in (4, 5, 17, 300, 4)]
    data = b"".join(frames)
    for step in (1, 3, 7, 64, len(data)):
        framer, out = Framer(), []
        for i in range(0, len(data), step):
            out += framer.feed(data[i:i + step])
        assert out == frames and framer.pending == 0
