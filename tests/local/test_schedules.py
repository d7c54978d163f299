"""EventBridge schedule expressions: rate, cron (AWS flavour), at; time zones; the scheduler loop."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from local.schedules import ScheduledTarget, ScheduleError, Scheduler, parse_schedule


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def nexts(expression: str, start: datetime, count: int = 3, tz: str | None = None) -> list[datetime]:
    parsed = parse_schedule(expression, tz)
    out, when = [], start
    for _ in range(count):
        when = parsed.next_after(when)  # type: ignore[assignment]
        out.append(when)
    return out


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600), ("rate(2 days)", 172800)],
)
def test_rate(expression: str, seconds: int) -> None:
    parsed = parse_schedule(expression)
    assert parsed.kind == "rate" and parsed.period == timedelta(seconds=seconds)
    anchor = utc(2030, 1, 1, 12, 0, 0)
    assert parsed.next_after(anchor, anchor=anchor) == anchor + timedelta(seconds=seconds)
    later = anchor + timedelta(seconds=seconds * 2.5)
    assert parsed.next_after(later, anchor=anchor) == anchor + timedelta(seconds=seconds * 3)
    assert parsed.next_after(anchor, anchor=anchor, speedup=60) == anchor + timedelta(seconds=seconds / 60)


@pytest.mark.parametrize(
    "bad",
    [
        "rate(1 minutes)",
        "rate(2 minute)",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "cron(0 9 * * *)",
        "cron(0 9 * * 1 *)",
        "cron(0 9 ? * ? *)",
        "cron(61 9 * * ? *)",
        "cron(0 9 * * ? 1900)",
        "every day",
        "cron(0 9 * FOO ? *)",
    ],
)
def test_invalid_expressions(bad: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(bad)


def test_unknown_time_zone() -> None:
    with pytest.raises(ScheduleError):
        parse_schedule("cron(0 9 * * ? *)", "Mars/Olympus")


def test_cron_daily_in_utc() -> None:
    assert nexts("cron(0 9 * * ? *)", utc(2030, 1, 1, 8, 59)) == [
        utc(2030, 1, 1, 9, 0),
        utc(2030, 1, 2, 9, 0),
        utc(2030, 1, 3, 9, 0),
    ]
    # strictly after: exactly 09:00 gives the next day
    assert nexts("cron(0 9 * * ? *)", utc(2030, 1, 1, 9, 0), 1) == [utc(2030, 1, 2, 9, 0)]


def test_cron_lists_ranges_steps_and_names() -> None:
    assert nexts("cron(0/15 10-11 * * ? *)", utc(2030, 1, 1, 11, 20), 3) == [
        utc(2030, 1, 1, 11, 30),
        utc(2030, 1, 1, 11, 45),
        utc(2030, 1, 2, 10, 0),
    ]
    # 2030-01-01 is a Tuesday; MON-FRI at 08:30, via names
    assert nexts("cron(30 8 ? * MON-FRI *)", utc(2030, 1, 4, 9, 0), 2) == [
        utc(2030, 1, 7, 8, 30),
        utc(2030, 1, 8, 8, 30),
    ]
    # numbers: 1 = Sunday
    assert nexts("cron(0 0 ? * 1 *)", utc(2030, 1, 1), 1) == [utc(2030, 1, 6)]
    assert nexts("cron(0 12 1,15 JAN,MAR ? *)", utc(2030, 1, 10), 3) == [
        utc(2030, 1, 15, 12),
        utc(2030, 3, 1, 12),
        utc(2030, 3, 15, 12),
    ]


def test_cron_special_day_fields() -> None:
    assert nexts("cron(0 0 L * ? *)", utc(2030, 2, 1), 2) == [utc(2030, 2, 28), utc(2030, 3, 31)]
    assert nexts("cron(0 0 L * ? *)", utc(2028, 2, 1), 1) == [utc(2028, 2, 29)]  # leap year
    # nearest weekday to the 15th: 2030-06-15 is a Saturday -> Friday 14th
    assert nexts("cron(0 0 15W * ? *)", utc(2030, 6, 1), 1) == [utc(2030, 6, 14)]
    # second Tuesday (3#2) of each month
    assert nexts("cron(0 0 ? * 3#2 *)", utc(2030, 1, 1), 2) == [utc(2030, 1, 8), utc(2030, 2, 12)]
    # last Friday (6L)
    assert nexts("cron(0 0 ? * 6L *)", utc(2030, 1, 1), 1) == [utc(2030, 1, 25)]
    # a year field ends the schedule
    assert parse_schedule("cron(0 0 1 1 ? 2030)").next_after(utc(2030, 6, 1)) is None


def test_cron_with_time_zone_and_daylight_saving() -> None:
    paris = nexts("cron(0 9 * * ? *)", utc(2030, 3, 30, 12), 2, tz="Europe/Paris")
    # Paris is UTC+1 before the switch on 2030-03-31 and UTC+2 after it
    assert paris == [utc(2030, 3, 31, 7), utc(2030, 4, 1, 7)]
    assert nexts("cron(0 9 * * ? *)", utc(2030, 1, 10, 12), 1, tz="Europe/Paris") == [utc(2030, 1, 11, 8)]
    # 02:30 does not exist in Paris on the day of the switch: skipped
    gap = nexts("cron(30 2 * * ? *)", utc(2030, 3, 30, 12), 1, tz="Europe/Paris")
    assert gap == [datetime(2030, 4, 1, 2, 30, tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)]


def test_at_expression() -> None:
    parsed = parse_schedule("at(2030-05-01T10:00:00)", "America/New_York")
    assert parsed.next_after(utc(2030, 1, 1)) == utc(2030, 5, 1, 14)
    assert parsed.next_after(utc(2031, 1, 1)) is None


def test_scheduled_event_payload_and_input() -> None:
    target = ScheduledTarget("Fn", "Daily", "Schedule", parse_schedule("rate(1 day)"), name="rule-1")
    event = target.payload(utc(2030, 1, 1, 9), "us-east-1", "123456789012")
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2030-01-01T09:00:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/rule-1"]
    assert event["detail"] == {} and event["version"] == "0" and event["id"]
    with_input = ScheduledTarget("Fn", "D", "ScheduleV2", parse_schedule("rate(1 day)"), name="s", input='{"a": 1}')
    assert with_input.payload(utc(2030, 1, 1), "us-east-1", "123456789012") == {"a": 1}


def test_scheduler_fires_due_targets() -> None:
    fired: list[str] = []
    done = threading.Event()
    now = [utc(2030, 1, 1, 0, 0, 0)]

    def fire(target: ScheduledTarget, when: datetime) -> None:
        fired.append(target.id)
        done.set()

    target = ScheduledTarget("Fn", "Tick", "Schedule", parse_schedule("rate(1 minute)"), name="t")
    scheduler = Scheduler([target], fire, clock=lambda: now[0])
    scheduler.start()
    try:
        assert target.next_fire == utc(2030, 1, 1, 0, 1)
        now[0] = utc(2030, 1, 1, 0, 1, 30)  # the clock moves past the fire time
        assert done.wait(10)
    finally:
        scheduler.stop()
    assert fired[0] == "Fn.Tick"
    assert target.next_fire == utc(2030, 1, 1, 0, 2)
