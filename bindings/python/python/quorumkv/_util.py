"""Key and value coercion shared by the store and the client."""

from __future__ import annotations

from datetime import timedelta
from typing import Optional, Union

BytesLike = Union[bytes, bytearray, memoryview, str]
"""What a key or value may be given as: ``str`` is encoded as UTF-8."""


def to_bytes(value: BytesLike, what: str = "key") -> bytes:
    """``value`` as bytes: bytes-like objects as they are, ``str`` as UTF-8."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"a {what} must be bytes or str, not {type(value).__name__}")


def opt_bytes(value: Optional[BytesLike], what: str) -> Optional[bytes]:
    """``None`` stays ``None``; anything else as :func:`to_bytes`."""
    return None if value is None else to_bytes(value, what)


def ttl_ms(ttl: Union[float, timedelta]) -> int:
    """A time to live (seconds, or a ``timedelta``) in whole milliseconds, at least 1."""
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if not seconds > 0:
        raise ValueError(f"ttl must be positive, not {ttl!r}")
    return max(1, round(seconds * 1000))


def prefix_end(prefix: bytes) -> Optional[bytes]:
    """The first key after every key that starts with ``prefix`` (``None``: no such key)."""
    end = bytearray(prefix)
    while end and end[-1] == 0xFF:
        end.pop()
    if not end:
        return None
    end[-1] += 1
    return bytes(end)


def bounds(
    prefix: Optional[BytesLike], start: Optional[BytesLike], end: Optional[BytesLike]
) -> "tuple[Optional[bytes], Optional[bytes]]":
    """The ``[start, end)`` range of keys that are ``>= start``, ``< end`` and start with
    ``prefix`` (each optional)."""
    lo = opt_bytes(start, "start key")
    hi = opt_bytes(end, "end key")
    if prefix is not None:
        p = to_bytes(prefix, "prefix")
        lo = p if lo is None else max(lo, p)
        p_end = prefix_end(p)
        if p_end is not None:
            hi = p_end if hi is None else min(hi, p_end)
    return lo, hi
