"""One place that reads the time, so tests can freeze it (time-machine patches datetime.now)."""

from __future__ import annotations

from datetime import UTC, date, datetime


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return now().date()


def iso(dt: datetime) -> str:
    """UTC timestamp with milliseconds, e.g. 2026-11-24T10:00:00.123Z; sorts as text."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
