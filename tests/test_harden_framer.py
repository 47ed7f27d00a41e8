"""The framer's exact size limit (issue 14: tested before only by the random fuzzer).

slurm_protocol_socket.c (19.05) refuses ``msglen > MAX_MSG_SIZE`` with MAX_MSG_SIZE 1 GiB: a
prefix of exactly 1 GiB is allowed, one byte more is refused as soon as the 4 prefix bytes are in.
"""

from __future__ import annotations

import pytest

from pyslurmrpc.errors import FrameTooLargeError, TruncatedError
from pyslurmrpc.wire.codec import check_prefix
from pyslurmrpc.wire.constants import MAX_MSG_SIZE
from pyslurmrpc.wire.framer import Framer


def prefix(n: int) -> bytes:
    return n.to_bytes(4, "big")


def test_max_msg_size_is_one_gib():
    assert MAX_MSG_SIZE == 1 << 30


def test_default_framer_accepts_exactly_the_limit():
    framer = Framer()
    assert framer.feed(prefix(MAX_MSG_SIZE)) == []  # waits for the body, no error
    assert framer.pending == 4


def test_default_framer_refuses_one_byte_more_on_the_prefix_alone():
    framer = Framer()
    with pytest.raises(FrameTooLargeError) as exc:
        framer.feed(prefix(MAX_MSG_SIZE + 1))
    assert exc.value.field == "length" and str(MAX_MSG_SIZE + 1) in str(exc.value)


@pytest.mark.parametrize("chunk", [1, 2, 3, 4])
def test_refused_however_the_prefix_is_split(chunk):
    framer = Framer()
    data = prefix(MAX_MSG_SIZE + 1)
    with pytest.raises(FrameTooLargeError):
        for i in range(0, 4, chunk):
            framer.feed(data[i:i + chunk])


def test_small_limit_boundary_both_sides():
    ok = Framer(max_size=10)
    assert ok.feed(prefix(10) + b"x" * 10) == [prefix(10) + b"x" * 10]
    with pytest.raises(FrameTooLargeError):
        Framer(max_size=10).feed(prefix(11))


def test_frames_before_an_oversized_prefix_are_kept():
    framer = Framer(max_size=10)
    good = prefix(2) + b"ab"
    assert framer.feed(good + prefix(11)) == [good]
    with pytest.raises(FrameTooLargeError):
        framer.feed(b"")


def test_check_prefix_boundary():
    with pytest.raises(TruncatedError):          # allowed size, body missing
        check_prefix(prefix(MAX_MSG_SIZE))
    with pytest.raises(FrameTooLargeError):      # one more: too large, whatever follows
        check_prefix(prefix(MAX_MSG_SIZE + 1))


@pytest.mark.parametrize("value", [12, "abc", None, [0, 0, 0, 4]])
@pytest.mark.parametrize("decoder", ["decode_message", "decode_reply_frame", "decode_frame"])
def test_every_frame_decoder_takes_bytes_only(value, decoder):
    """decode_message(12) decoded twelve NUL bytes (bytes(12)) and reported trailing bytes;
    decode_reply_frame did the same, and the decoder's decode_frame ended in a TypeError of len()."""
    from pyslurmrpc.decode import decode_frame
    from pyslurmrpc.wire import decode_message
    from pyslurmrpc.wire.repeats import decode_reply_frame

    fn = {"decode_message": decode_message, "decode_reply_frame": decode_reply_frame, "decode_frame": decode_frame}
    with pytest.raises(TypeError, match=f"a frame is bytes, a bytearray or a memoryview, not {type(value).__name__}"):
        fn[decoder](value)


@pytest.mark.parametrize("data", ["text", None, 5, [0, 0, 0, 0]])
def test_feeding_what_is_not_bytes_names_the_type(data):
    """A str gave Python's own "string argument without an encoding"; None was taken as nothing."""
    with pytest.raises(TypeError, match=f"Framer.feed takes the bytes read from the connection, not {type(data).__name__}"):
        Framer().feed(data)


@pytest.mark.parametrize("data", [bytearray(b"\0\0\0\0"), memoryview(b"\0\0\0\0")])
def test_bytes_like_input_is_taken(data):
    assert Framer().feed(data) == [b"\0\0\0\0"]


def test_a_memoryview_of_wider_items_is_counted_in_bytes():
    """len() of a memoryview of 4-byte items counts items: one whole 8-byte frame was held as 2."""
    import array
    frame = (4).to_bytes(4, "big") + b"abcd"
    framer = Framer()
    assert framer.feed(memoryview(array.array("I", frame))) == [frame] and framer.pending == 0


def test_a_stream_ending_inside_a_frame_says_what_the_frame_declared():
    """The decoder's "stream ended inside a frame (100 bytes buffered)" left out the length
    the library's own error gives."""
    framer = Framer()
    framer.feed((174).to_bytes(4, "big") + bytes(96))
    with pytest.raises(TruncatedError, match=r"\(100 bytes buffered: it declares 174 bytes after its length prefix\)"):
        framer.close()
    short = Framer()
    short.feed(b"\0\0")
    with pytest.raises(TruncatedError, match=r"\(2 bytes buffered\) \(field length, offset 0\)$"):
        short.close()
