"""EventBridge schedule expressions (``rate(...)``, ``cron(...)``, ``at(...)``) and a local scheduler."""

from __future__ import annotations

import calendar
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger("local")

_MONTHS = {
    name: i
    for i, name in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)
}
_DAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")


class ScheduleError(ValueError):
    """Not a valid EventBridge schedule expression."""


def _aws_dow(day: datetime) -> int:
    """AWS day-of-week numbering: 1 = Sunday ... 7 = Saturday."""
    return (day.isoweekday() % 7) + 1


def _parse_set(field_text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    values: set[int] = set()

    def number(token: str) -> int:
        token = token.upper()
        if names and token in names:
            return names[token]
        if not token.isdigit():
            raise ScheduleError(f"bad value {token!r}")
        value = int(token)
        if not low <= value <= high:
            raise ScheduleError(f"{value} is outside {low}-{high}")
        return value

    for part in field_text.split(","):
        step = 1
        stepped = "/" in part
        if stepped:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(f"bad step {step_text!r}")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-", 1)
            start, end = number(first), number(last)
        else:
            start = number(part)
            end = high if stepped else start
        if start <= end:
            values.update(range(start, end + 1, step))
        else:  # wrap-around ranges such as FRI-MON
            values.update(v for v in list(range(start, high + 1)) + list(range(low, end + 1)))
    return values


@dataclass
class CronExpression:
    """AWS cron: minutes hours day-of-month month day-of-week year (``?``, ``L``, ``W``, ``#``)."""

    minutes: set[int]
    hours: set[int]
    dom: str
    months: set[int]
    dow: str
    years: set[int]
    text: str

    @classmethod
    def parse(cls, fields_text: str) -> CronExpression:
        fields = fields_text.split()
        if len(fields) != 6:
            raise ScheduleError(f"cron needs 6 fields, got {len(fields)}: {fields_text!r}")
        minutes, hours, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
        expr = cls(
            minutes=_parse_set(minutes, 0, 59),
            hours=_parse_set(hours, 0, 23),
            dom=dom.upper(),
            months=_parse_set(month, 1, 12, _MONTHS),
            dow=dow.upper(),
            years=_parse_set(year, 1970, 2199),
            text=fields_text,
        )
        probe = datetime(2024, 1, 1)
        expr._dom_matches(probe)  # validate the day fields now
        expr._dow_matches(probe)
        return expr

    def _dom_matches(self, day: datetime) -> bool:
        spec = self.dom
        if spec == "?":
            return True
        last = calendar.monthrange(day.year, day.month)[1]
        if spec == "L":
            return day.day == last
        if spec.startswith("L-") and spec[2:].isdigit():
            return day.day == last - int(spec[2:])
        if spec == "LW":
            target = last
            while datetime(day.year, day.month, target).weekday() >= 5:
                target -= 1
            return day.day == target
        if spec.endswith("W") and spec[:-1].isdigit():
            wanted = int(spec[:-1])
            if not 1 <= wanted <= 31:
                raise ScheduleError(f"bad day {spec}")
            wanted = min(wanted, last)
            target = datetime(day.year, day.month, wanted)
            if target.weekday() == 5:  # Saturday -> Friday, unless that leaves the month
                target = target - timedelta(days=1) if wanted > 1 else target + timedelta(days=2)
            elif target.weekday() == 6:  # Sunday -> Monday, unless that leaves the month
                target = target + timedelta(days=1) if wanted < last else target - timedelta(days=2)
            return day.day == target.day
        return day.day in _parse_set(spec, 1, 31)

    def _dow_matches(self, day: datetime) -> bool:
        spec = self.dow
        if spec == "?":
            return True
        dow = _aws_dow(day)
        if "#" in spec:
            name, nth = spec.split("#", 1)
            wanted = _parse_set(name, 1, 7, _DAYS)
            if not nth.isdigit() or not 1 <= int(nth) <= 5:
                raise ScheduleError(f"bad day-of-week {spec}")
            return dow in wanted and (day.day - 1) // 7 + 1 == int(nth)
        if spec.endswith("L") and len(spec) > 1:
            wanted = _parse_set(spec[:-1], 1, 7, _DAYS)
            last = calendar.monthrange(day.year, day.month)[1]
            return dow in wanted and day.day + 7 > last
        if spec == "L":
            return dow == 7
        return dow in _parse_set(spec, 1, 7, _DAYS)

    def next_after(self, after: datetime, tz: ZoneInfo | None = None) -> datetime | None:
        """The first fire time strictly after ``after`` (aware), evaluated in ``tz`` (UTC by default)."""
        zone = tz or ZoneInfo("UTC")
        local = after.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=1)
        day = local.replace(hour=0, minute=0)
        for _ in range(366 * 5):
            if day.year > max(self.years):
                return None
            if (
                day.year in self.years
                and day.month in self.months
                and self._dom_matches(day)
                and self._dow_matches(day)
            ):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate < local:
                            continue
                        aware = candidate.replace(tzinfo=zone)
                        # skip wall-clock times that do not exist (spring-forward gap)
                        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != candidate:
                            continue
                        return aware.astimezone(UTC)
            day += timedelta(days=1)
        return None


@dataclass
class ScheduleExpression:
    kind: str  # rate | cron | at
    text: str
    period: timedelta | None = None
    cron: CronExpression | None = None
    at: datetime | None = None
    tz: ZoneInfo | None = None

    def next_after(self, after: datetime, *, anchor: datetime | None = None, speedup: float = 1.0) -> datetime | None:
        if self.kind == "rate":
            assert self.period is not None
            period = self.period / max(speedup, 1e-9)
            start = anchor or after
            if after < start:
                return start + period
            elapsed = after - start
            count = int(elapsed / period) + 1
            return start + period * count
        if self.kind == "cron":
            assert self.cron is not None
            return self.cron.next_after(after, self.tz)
        assert self.at is not None
        return self.at if self.at > after else None


def parse_schedule(expression: str, timezone: str | None = None) -> ScheduleExpression:
    """Parse ``rate(5 minutes)``, ``cron(0 9 * * ? *)`` or ``at(2030-01-01T09:00:00)``."""
    text = expression.strip()
    try:
        tz = ZoneInfo(timezone) if timezone else None
    except Exception as exc:
        raise ScheduleError(f"unknown time zone {timezone!r}") from exc
    match = _RATE.match(text)
    if match:
        value, unit = int(match.group(1)), match.group(2)
        if value < 1:
            raise ScheduleError("rate value must be positive")
        if (value == 1) != (not unit.endswith("s")):
            raise ScheduleError(f"use '{'minute' if value == 1 else 'minutes'}'-style units: {text!r}")
        seconds = {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]
        return ScheduleExpression("rate", text, period=timedelta(seconds=value * seconds), tz=tz)
    match = _CRON.match(text)
    if match:
        return ScheduleExpression("cron", text, cron=CronExpression.parse(match.group(1)), tz=tz)
    match = _AT.match(text)
    if match:
        zone = tz or ZoneInfo("UTC")
        at = datetime.fromisoformat(match.group(1)).replace(tzinfo=zone).astimezone(UTC)
        return ScheduleExpression("at", text, at=at, tz=tz)
    raise ScheduleError(f"not a schedule expression: {expression!r}")


# ---------------------------------------------------------------------------------------- scheduler


@dataclass
class ScheduledTarget:
    function_id: str
    event_id: str
    event_type: str  # Schedule | ScheduleV2
    expression: ScheduleExpression
    name: str
    input: Any = None
    enabled: bool = True
    next_fire: datetime | None = None
    anchor: datetime | None = None
    fired: int = 0
    last_result: Any = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return f"{self.function_id}.{self.event_id}"

    def payload(self, when: datetime, region: str, account_id: str) -> Any:
        if self.input is not None:
            return json.loads(self.input) if isinstance(self.input, str) else self.input
        if self.event_type == "ScheduleV2":
            resource = f"arn:aws:scheduler:{region}:{account_id}:schedule/default/{self.name}"
        else:
            resource = f"arn:aws:events:{region}:{account_id}:rule/{self.name}"
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler" if self.event_type == "ScheduleV2" else "aws.events",
            "account": account_id,
            "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [resource],
            "detail": {},
        }

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "function": self.function_id,
            "event": self.event_id,
            "type": self.event_type,
            "expression": self.expression.text,
            "timezone": str(self.expression.tz) if self.expression.tz else "UTC",
            "enabled": self.enabled,
            "next_fire": self.next_fire.isoformat().replace("+00:00", "Z") if self.next_fire else None,
            "fired": self.fired,
        }


class Scheduler:
    """Fires every enabled schedule at its time, each firing on its own thread."""

    def __init__(
        self,
        targets: list[ScheduledTarget],
        fire: Callable[[ScheduledTarget, datetime], Any],
        *,
        speedup: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.targets = targets
        self._fire = fire
        self.speedup = speedup
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        now = self.clock()
        for target in self.targets:
            target.anchor = now
            target.next_fire = target.expression.next_after(now, anchor=now, speedup=self.speedup)
        self._thread = threading.Thread(target=self._run, name="local-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.clock()
            upcoming = [t.next_fire for t in self.targets if t.enabled and t.next_fire is not None]
            for target in self.targets:
                if target.enabled and target.next_fire is not None and target.next_fire <= now:
                    when = target.next_fire
                    target.next_fire = target.expression.next_after(now, anchor=target.anchor, speedup=self.speedup)
                    threading.Thread(
                        target=self._safe_fire, args=(target, when), name=f"schedule-{target.id}", daemon=True
                    ).start()
            wait = 1.0
            if upcoming:
                wait = max(0.01, min(wait, (min(upcoming) - now).total_seconds()))
            self._stop.wait(wait)

    def _safe_fire(self, target: ScheduledTarget, when: datetime) -> None:
        try:
            self._fire(target, when)
        except Exception as exc:  # a failing schedule must not stop the others
            log.warning("schedule %s failed: %s", target.id, exc)
