"""One retry helper for optimistic writes: read, decide, write conditionally; on a lost race, wait a
little (full jitter) and do it all again.

Every use case that writes under a condition had its own loop and its own `_backoff`; they differed
only in which errors they retried, how often, and the ceiling of the wait. Those are the arguments.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Full jitter: a random wait in [0, min(cap, base * 2**attempt)] seconds."""

    base: float = 0.01
    cap: float = 0.4

    def wait(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * (2**attempt)))


SHORT = Backoff(cap=0.2)
LONG = Backoff(cap=0.4)
# a lost number means the winner has committed: a little jitter keeps the losers from colliding again
NUMBER = Backoff(base=0.002, cap=0.05)


def retry(
    attempt: Callable[[], T],
    *,
    on: tuple[type[BaseException], ...],
    attempts: int,
    exhausted: Callable[[], BaseException],
    backoff: Backoff = LONG,
    on_retry: Callable[[int, BaseException], None] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """`attempt()` until it returns; an exception in `on` means "re-read and decide again" (after a
    jittered wait, then `on_retry`), anything else propagates. After `attempts` lost races, raise
    `exhausted()`."""
    for n in range(attempts):
        try:
            return attempt()
        except on as exc:
            (sleep or time.sleep)(backoff.wait(n))
            if on_retry is not None:
                on_retry(n, exc)  # e.g. re-read what moved; it may raise to stop early
    raise exhausted()
