"""Document numbers: INV-{YYYY}-{NNNNN} and CN-{YYYY}-{NNNNN}, per customer and calendar year."""

from __future__ import annotations

import re
from dataclasses import dataclass

INVOICE_PREFIX = "INV"
CREDIT_NOTE_PREFIX = "CN"
_PATTERN = re.compile(r"^(INV|CN)-(\d{4})-(\d{5,})$")


def format_number(prefix: str, year: int, sequence: int) -> str:
    if sequence < 1:
        raise ValueError("sequence numbers start at 1")
    if not 1000 <= year <= 9999:
        raise ValueError("year must have four digits")
    return f"{prefix}-{year:04d}-{sequence:05d}"


def invoice_number(year: int, sequence: int) -> str:
    return format_number(INVOICE_PREFIX, year, sequence)


def credit_note_number(year: int, sequence: int) -> str:
    return format_number(CREDIT_NOTE_PREFIX, year, sequence)


def parse_number(number: str) -> tuple[str, int, int]:
    """'INV-2026-00042' -> ('INV', 2026, 42)."""
    match = _PATTERN.match(number)
    if not match:
        raise ValueError(f"not a document number: {number!r}")
    return match.group(1), int(match.group(2)), int(match.group(3))


@dataclass(frozen=True)
class NumberClaim:
    """Take number `next_value` of a customer's counter (`kind` INV or CN) for `year`: the write is
    conditioned on the counter still holding it, so a number is given once and none is skipped."""

    customer_id: str
    kind: str
    year: int
    next_value: int

    @property
    def number(self) -> str:
        return format_number(self.kind, self.year, self.next_value)
