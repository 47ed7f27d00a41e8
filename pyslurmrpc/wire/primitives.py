"""Slurm's packing primitives as construct classes (src/common/pack.c, pack.h).

Integers are big-endian.  Strings are ``packstr``: a uint32 length that counts
the trailing NUL, then the bytes and the NUL; length 0 means a NULL pointer.
The classes here remember where a field started so that a decode error can
name the offset of the field that failed, not where the stream ran dry.
"""

from __future__ import annotations

import struct

from construct import Construct, ExplicitError, FormatField, SizeofError, stream_write

from .constants import MAX_PACK_MEM_LEN


class FieldError(ExplicitError):
    """Base of the decode errors raised inside schemas; carries the field's start offset."""

    def __init__(self, message: str, path: str, offset: int):
        super().__init__(message, path=path)
        self.offset = offset


class TruncatedField(FieldError):
    """The stream ended inside the field."""


class OversizedField(FieldError):
    """A length inside the frame is above the allowed maximum."""


class BadField(FieldError):
    """A value the format does not allow."""


class UnknownType(FieldError):
    """A message type or auth plugin with no schema."""


class Int(FormatField):
    """A big-endian integer that reports the offset where it started on truncation.

    ``maximum``: the largest value a subclass accepts (None: any the width holds).
    """

    maximum: int | None = None

    def _parse(self, stream, context, path):
        start = stream.tell()
        data = stream.read(self.length)
        if len(data) != self.length:
            raise TruncatedField(
                f"needs {self.length} bytes, {len(data)} left", path, start)
        return struct.unpack(self.fmtstr, data)[0]


u16 = Int(">", "H")
u32 = Int(">", "L")
#: pack_time (src/common/pack.c): time_t sent as a signed 64-bit integer
time_t = Int(">", "q")

_U32 = struct.Struct(">I")


class SlurmString(Construct):
    """``packstr`` / ``unpackstr_xmalloc``: uint32 size (NUL included) then bytes; None for size 0.

    Text is decoded as UTF-8 with surrogateescape, so arbitrary bytes round-trip
    exactly.  A size over ``limit`` or past the end of the frame is refused before
    anything is read, so a hostile size never causes a large allocation.
    """

    def __init__(self, limit: int = MAX_PACK_MEM_LEN):
        super().__init__()
        self.limit = limit

    def _parse(self, stream, context, path):
        start = stream.tell()
        head = stream.read(4)
        if len(head) != 4:
            raise TruncatedField(f"string size needs 4 bytes, {len(head)} left", path, start)
        size = _U32.unpack(head)[0]
        if size == 0:
            return None
        if size > self.limit:
            raise OversizedField(f"string size {size} over the limit {self.limit}", path, start)
        data = stream.read(size)
        if len(data) != size:
            raise TruncatedField(
                f"string of {size} bytes runs past the end ({len(data)} left)", path, start)
        if data[-1] != 0 or 0 in data[:-1]:
            raise BadField("string is not a single NUL-terminated C string", path, start)
        return data[:-1].decode("utf-8", "surrogateescape")

    def _build(self, obj, stream, context, path):
        try:
            data = pack_string(obj, self.limit)
        except StringTooLong as exc:
            raise OversizedField(str(exc), path, 0) from None
        except ValueError as exc:
            raise BadField(str(exc), path, 0) from None
        stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context, path):
        raise SizeofError("packstr has a variable size", path=path)


class StringTooLong(ValueError):
    """A string :func:`pack_string` refuses for its size."""


def pack_string(text: str | bytes | None, limit: int = MAX_PACK_MEM_LEN) -> bytes:
    """``packstr`` of ``text`` (None: a NULL string, size 0); ValueError for a NUL inside,
    :class:`StringTooLong` past ``limit`` bytes with the NUL."""
    if text is None:
        return b"\0\0\0\0"
    if isinstance(text, str):
        raw = text.encode("utf-8", "surrogateescape")
    elif isinstance(text, (bytes, bytearray, memoryview)):
        raw = bytes(text)
    else:   # bytes(5) would be five NULs: name the type instead
        raise ValueError(f"a Slurm string must be str, bytes or None, not {type(text).__name__}")
    if 0 in raw:
        raise ValueError("a Slurm string cannot contain NUL")
    if len(raw) + 1 > limit:
        raise StringTooLong(f"string of {len(raw)} bytes over the limit")
    return _U32.pack(len(raw) + 1) + raw + b"\0"


class FixedMem(Construct):
    """``packmem`` of an exact size (the IPv6 address of ``slurm_pack_addr``): uint32 size, bytes."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def _parse(self, stream, context, path):
        start = stream.tell()
        head = stream.read(4)
        if len(head) != 4:
            raise TruncatedField("memory size needs 4 bytes", path, start)
        size = _U32.unpack(head)[0]
        if size != self.size:
            raise BadField(f"memory block of {size} bytes, expected {self.size}", path, start)
        data = stream.read(size)
        if len(data) != size:
            raise TruncatedField("memory block runs past the end", path, start)
        return data

    def _build(self, obj, stream, context, path):
        if len(obj) != self.size:
            raise BadField(f"memory block of {len(obj)} bytes, expected {self.size}", path, 0)
        stream_write(stream, _U32.pack(self.size) + bytes(obj), 4 + self.size, path)
        return obj

    def _sizeof(self, context, path):
        return 4 + self.size


class Unknown(Construct):
    """Stands where a table has no schema; decoding it is an error naming ``what``."""

    def __init__(self, what: str, key):
        super().__init__()
        self.what = what
        self.key = key

    def _parse(self, stream, context, path):
        raise UnknownType(f"unknown {self.what} {self.key(context)!r}", path, stream.tell())

    def _build(self, obj, stream, context, path):
        raise UnknownType(f"unknown {self.what} {self.key(context)!r}", path, 0)

    def _sizeof(self, context, path):
        raise SizeofError("unknown", path=path)
