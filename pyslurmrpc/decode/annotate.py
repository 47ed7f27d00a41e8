"""What a decoded value means: names for numbers, dates for times, NO_VAL markers.

One table maps a field's name (the last part of its dotted path) to a
function giving the meaning of its value; fields not in the table only get the
generic "no value" markers of their width.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from ..slurm_errno import REFERENCE_RELEASE, from_wire, name_of, text_of
from ..wire.constants import (
    INFINITE, NO_VAL, NO_VAL16, SLURM_BATCH_SCRIPT, SLURM_EXTERN_CONT, SLURM_GLOBAL_AUTH_KEY,
    SLURM_NO_AUTH_CRED, SLURM_PACK_ADDRS, SLURMDBD_CONNECTION, AuthPluginId, CheckOp, MsgType,
)
from ..wire.info_bodies import HEADER_FLAG_NAMES, SHOW_FLAG_NAMES, STEP_ID_NAMES, in_span
from ..wire.msg_types_by_release import msg_type_name
from ..wire.versions import RELEASES, VERSIONS, release_of
from .fields import Field

#: release names in order, for "first - last release" ranges of the tables
_RELEASE_ORDER = [r.name for r in RELEASES]

#: header.flags bit -> name (src/common/slurm_protocol_defs.h)
FLAG_NAMES = {
    SLURM_GLOBAL_AUTH_KEY: "SLURM_GLOBAL_AUTH_KEY",
    SLURMDBD_CONNECTION: "SLURMDBD_CONNECTION",
    SLURM_NO_AUTH_CRED: "SLURM_NO_AUTH_CRED",
    SLURM_PACK_ADDRS: "SLURM_PACK_ADDRS",
}

#: (raw width in bytes, value) -> marker, for unsigned fields with no better meaning
WIDTH_MARKERS = {
    (2, NO_VAL16): "NO_VAL16",
    (2, 0xFFFF): "INFINITE16",
    (4, NO_VAL): "NO_VAL",
    (4, INFINITE): "INFINITE",
}

#: step ids have their own names for the special values (slurm/slurm.h.in, 19.05)
STEP_MARKERS = {
    SLURM_BATCH_SCRIPT: "NO_VAL / SLURM_BATCH_SCRIPT (batch step)",
    SLURM_EXTERN_CONT: "INFINITE / SLURM_EXTERN_CONT (extern step)",
}


def _enum_name(enum_cls) -> Callable[[Field], Optional[str]]:
    def name(field: Field) -> Optional[str]:
        try:
            return enum_cls(field.value).name
        except ValueError:
            return f"unknown {enum_cls.__name__}"
    return name


def _version(field: Field) -> Optional[str]:
    spec = VERSIONS.get(field.value)
    return f"0x{field.value:04x}, Slurm {spec.name}" if spec else f"0x{field.value:04x}, unsupported"


def _flags(field: Field, version: Optional[int] = None) -> Optional[str]:
    known = FLAG_NAMES
    if version is not None and release_of(version) is not None:
        known = {bit: name for bit, (name, first, last) in HEADER_FLAG_NAMES.items()
                 if in_span(version, first, last)}
    names = [name for bit, name in known.items() if field.value & bit]
    unknown = field.value & ~sum(known)
    if unknown:
        names.append(f"0x{unknown:04x}")
    return " | ".join(names) if names else None


def _release(version: Optional[int]) -> str:
    """The release name whose errno table applies (the reference release when unknown)."""
    row = release_of(version) if version is not None else None
    return row.name if row is not None else REFERENCE_RELEASE


def _errno(field: Field, version: Optional[int] = None) -> Optional[str]:
    code = from_wire(field.value)
    release = _release(version)
    name = name_of(code, release)
    text = text_of(code, release)
    prefix = f"{code} " if code != field.value else ""
    return f"{prefix}{name}: {text}" if name else f"{prefix}{text}"


def iso_time(seconds: int) -> str:
    """UNIX seconds as an ISO 8601 UTC date (``2026-11-23T17:27:38Z``)."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(field: Field) -> Optional[str]:
    if field.value == 0:
        return "not set"
    try:
        return iso_time(field.value)
    except (OverflowError, OSError, ValueError):
        return "out of range for a date"


def _step(field: Field, version: Optional[int] = None) -> Optional[str]:
    if version is None or release_of(version) is None:
        return STEP_MARKERS.get(field.value)
    names = next(n for first, last, n in STEP_ID_NAMES if in_span(version, first, last))
    return names.get(field.value)


def _addr(field: Field) -> Optional[str]:
    if isinstance(field.value, (bytes, bytearray)):
        return str(ipaddress.IPv6Address(bytes(field.value)))
    return str(ipaddress.IPv4Address(field.value)) if isinstance(field.value, int) else None


def _family(field: Field) -> Optional[str]:
    return {0: "AF_UNSPEC", 2: "AF_INET", 10: "AF_INET6"}.get(field.value)


def _msg_type(field: Field, version: Optional[int] = None) -> Optional[str]:
    name = msg_type_name(version, field.value)
    if name is None and version is None:
        return _enum_name(MsgType)(field)
    return name or "not a message type of this release"


def _in_release(first: str, last: str, release: str) -> bool:
    return _RELEASE_ORDER.index(first) <= _RELEASE_ORDER.index(release) <= _RELEASE_ORDER.index(last)


def _show_flags(field: Field, version: Optional[int] = None) -> Optional[str]:
    release = _release(version)
    known = {bit: name for bit, (name, first, last) in SHOW_FLAG_NAMES.items() if _in_release(first, last, release)}
    names = [name for bit, name in known.items() if field.value & bit]
    unknown = field.value & ~sum(known)
    if unknown:
        names.append(f"0x{unknown:04x}")
    return " | ".join(names) if names else "none"


def _list_count(field: Field) -> Optional[str]:
    return "NO_VAL: no list (every job)" if field.value == NO_VAL else None


#: meanings that depend on the frame's release: field name -> f(field, header version)
RELEASE_MEANINGS: dict[str, Callable[[Field, Optional[int]], Optional[str]]] = {
    "msg_type": _msg_type,
    "flags": _flags,
    "return_code": _errno,
    "error_code": _errno,
    "err": _errno,
    "show_flags": _show_flags,
    "step_id": _step,
    "job_step_id": _step,
}

#: field name -> meaning of its value
MEANINGS: dict[str, Callable[[Field], Optional[str]]] = {
    "version": _version,
    "last_update": _time,
    "job_id_count": _list_count,
    "op": _enum_name(CheckOp),
    "plugin_id": _enum_name(AuthPluginId),
    "begin_time": _time,
    "event_time": _time,
    "timestamp": _time,
    "addr": _addr,
    "family": _family,
}


def meaning(field: Field, version: Optional[int] = None) -> Optional[str]:
    """A short text saying what ``field``'s value means, or None when the number says it all.

    ``version`` (the frame's header version) picks the release whose tables name
    message types, errnos and flags; without it the reference tables are used.
    """
    by_release = RELEASE_MEANINGS.get(field.name)
    special = MEANINGS.get(field.name)
    if by_release is not None:
        text = by_release(field, version)
    else:
        text = special(field) if special else None
    if text is None and isinstance(field.value, int):
        text = WIDTH_MARKERS.get((len(field.raw), field.value))
    return text


def show_value(value: Any) -> str:
    """A value as it is printed: numbers as is, strings quoted, NULL strings as ``NULL``."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes kept by surrogateescape: escape them
            return json.dumps(value)
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return str(value)


def json_value(value: Any) -> Any:
    """A value as JSON can carry it (bytes become hex text)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return value
