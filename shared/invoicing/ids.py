"""Sortable, prefixed ids (ULID-style: 48-bit milliseconds + 80 random bits, Crockford base32).

Sortability gives line and event order for free in a DynamoDB sort key.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


_lock = threading.Lock()
_last = (0, 0)


def new_id(prefix: str) -> str:
    """Strictly increasing within a process: ids made in the same millisecond add one to the random
    part (monotonic ULID), so lines created in one request keep their order."""
    global _last
    millis = time.time_ns() // 1_000_000
    with _lock:
        last_millis, last_rand = _last
        if millis <= last_millis:
            millis, rand = last_millis, last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
        _last = (millis, rand)
    return f"{prefix}_{_b32(millis, 10)}{_b32(rand, 16)}"
