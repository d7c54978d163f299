"""The pure reminder rules: steps, the one step due on a day, catch-up, dunning, and where the due
index holds an invoice (the run reads it on each action day in its customer's zone, never misses what
the per-invoice decision would send, and decides nothing twice)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from invoicing.domain.reminders import (
    Decision,
    ReminderPolicy,
    ReminderPolicyError,
    ReminderStep,
    after_decision,
    decide,
    latest_due_step,
    local_date,
    next_action_at,
    parse_steps,
    query_days,
    start_of_day,
)

ZONES = [
    "UTC",
    "Pacific/Honolulu",  # UTC-10
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Pago_Pago",  # UTC-11
    "Europe/Berlin",  # DST
    "America/New_York",  # DST
    "Asia/Kolkata",  # +05:30
    "Australia/Lord_Howe",  # half-hour DST
    "Pacific/Auckland",  # DST, southern hemisphere
]

DEFAULT = ReminderPolicy.from_text("upcoming:-7,due:0,overdue:+3")
WITH_FINAL = ReminderPolicy.from_text("upcoming:-7,due:0,overdue:+3,final:+14")


@st.composite
def policies(draw: st.DrawFn) -> ReminderPolicy:
    offsets = draw(st.lists(st.integers(-30, 60), min_size=1, max_size=5, unique=True))
    kinds = [f"step{i}" for i in range(len(offsets))]
    return ReminderPolicy(
        steps=parse_steps(",".join(f"{k}:{o:+d}" for k, o in zip(kinds, offsets, strict=True))),
        lookback_days=draw(st.integers(0, 10)),
        dunning_enabled=draw(st.booleans()),
        dunning_grace_days=draw(st.integers(1, 10)),
    )


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


# ---------------------------------------------------------------- steps
class TestParseSteps:
    def test_default_and_sorted(self):
        assert parse_steps("overdue:+3, upcoming:-7,due:0") == (
            ReminderStep("upcoming", -7),
            ReminderStep("due", 0),
            ReminderStep("overdue", 3),
        )

    def test_categories(self):
        assert [s.category for s in WITH_FINAL.steps] == ["upcoming", "due", "overdue", "overdue"]

    @pytest.mark.parametrize(
        "text",
        ["", " , ", "due", "due:x", "due:0,due:3", "a:1,b:1", "manual:0", "Due:0", "due:+400", "1st:0"],
    )
    def test_invalid(self, text):
        with pytest.raises(ReminderPolicyError):
            parse_steps(text)

    @given(st.lists(st.integers(-365, 365), min_size=1, max_size=10, unique=True))
    def test_round_trip(self, offsets):
        text = ",".join(f"k{i}:{o:+d}" for i, o in enumerate(offsets))
        steps = parse_steps(text)
        assert [s.offset_days for s in steps] == sorted(offsets)
        assert parse_steps(",".join(f"{s.kind}:{s.offset_days}" for s in steps)) == steps

    def test_settings_refuse_bad_steps(self):
        from pydantic import ValidationError

        from invoicing.settings import Settings

        with pytest.raises(ValidationError, match="reminder"):
            Settings(reminder_steps="due:0,due:1")
        assert Settings(reminder_steps="due:0,final:+14").reminder_steps == "due:0,final:+14"


# ---------------------------------------------------------------- the step of a day
class TestLatestDueStep:
    def test_each_step_on_its_day(self):
        due = date(2026, 3, 20)
        issued = date(2026, 2, 1)
        got = {d: latest_due_step(DEFAULT, due, d, issued) for d in (due - timedelta(days=7), due, due + timedelta(3))}
        assert [s.kind for s in got.values() if s] == ["upcoming", "due", "overdue"]

    def test_nothing_before_the_first_step(self):
        assert latest_due_step(DEFAULT, date(2026, 3, 20), date(2026, 3, 12)) is None

    def test_catch_up_sends_only_the_latest(self):
        # the schedule did not run from the 13th to the 23rd: the next run sends only `overdue`
        step = latest_due_step(DEFAULT, date(2026, 3, 20), date(2026, 3, 24), date(2026, 2, 1))
        assert step == ReminderStep("overdue", 3)

    def test_too_old_is_dropped(self):
        # overdue was on the 23rd; eight days later it is older than the 7-day lookback
        assert latest_due_step(DEFAULT, date(2026, 3, 20), date(2026, 3, 31)) is None

    def test_not_on_or_before_the_issue_day(self):
        # issued 3 days before the due date: no `upcoming` (its day was before the invoice existed)
        assert latest_due_step(DEFAULT, date(2026, 3, 20), date(2026, 3, 17), date(2026, 3, 17)) is None
        assert latest_due_step(DEFAULT, date(2026, 3, 20), date(2026, 3, 20), date(2026, 3, 17)).kind == "due"

    @given(policies(), st.dates(date(2025, 1, 1), date(2027, 1, 1)), st.integers(-40, 80), st.integers(-60, 5))
    def test_the_result_is_the_latest_fresh_step(self, policy, due, today_offset, issued_offset):
        today = due + timedelta(days=today_offset)
        issued = today + timedelta(days=issued_offset)
        step = latest_due_step(policy, due, today, issued)
        came = [s for s in policy.steps if s.day(due) <= today]
        if step is None:
            assert (
                not came
                or came[-1].day(due) < today - timedelta(days=policy.lookback_days)
                or (came[-1].day(due) <= issued)
            )
        else:
            assert step == came[-1]
            assert today - timedelta(days=policy.lookback_days) <= step.day(due) <= today
            assert step.day(due) > issued

    @given(policies(), st.dates(date(2025, 1, 1), date(2027, 1, 1)), st.integers(1, 60), st.data())
    def test_runs_on_any_days_send_each_step_at_most_once_in_order(self, policy, due, issued_before, data):
        """Runs on arbitrary days (gaps of missed runs) with a ledger: each kind at most once, in step
        order, never more than `lookback` days late; with a run every day, each step on its own day."""
        issued = due - timedelta(days=issued_before)
        every_day = data.draw(st.booleans())
        horizon = policy.steps[-1].day(due) + timedelta(days=policy.lookback_days + 2)
        run_days = [issued + timedelta(days=i) for i in range((horizon - issued).days + 1)]
        assume(run_days)
        if not every_day:
            run_days = sorted(data.draw(st.sets(st.sampled_from(run_days), max_size=len(run_days))))
        sent: dict[str, date] = {}
        order: list[int] = []
        for day in run_days:
            step = latest_due_step(policy, due, day, issued)
            if step is not None and step.kind not in sent:
                sent[step.kind] = day
                order.append(step.offset_days)
        assert order == sorted(order)
        for kind, day in sent.items():
            step_day = policy.step(kind).day(due)
            assert step_day <= day <= step_day + timedelta(days=policy.lookback_days)
        if every_day:
            expected = {s.kind: s.day(due) for s in policy.steps if s.day(due) > issued}
            assert sent == expected


# ---------------------------------------------------------------- zones
class TestLocalDates:
    def test_same_instant_different_days(self):
        at = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
        assert local_date(at, "Europe/Berlin") == date(2026, 3, 20)
        assert local_date(at, "Pacific/Honolulu") == date(2026, 3, 19)
        assert local_date(at, "Pacific/Kiritimati") == date(2026, 3, 20)
        assert local_date(datetime(2026, 3, 20, 11, 0, tzinfo=UTC), "Pacific/Kiritimati") == date(2026, 3, 21)

    def test_unknown_zone_is_utc(self):
        at = datetime(2026, 3, 20, 23, 0, tzinfo=UTC)
        assert local_date(at, "Mars/Olympus_Mons") == date(2026, 3, 20)
        assert local_date(at, "") == date(2026, 3, 20)


# ---------------------------------------------------------------- dunning
class TestDunning:
    def test_dunning_day(self):
        assert WITH_FINAL.dunning_day(date(2026, 3, 20)) == date(2026, 4, 10)  # +14 +7

    def test_decide_dun_from_the_dunning_day_in_the_customers_zone(self):
        due = date(2026, 3, 20)
        issued = datetime(2026, 2, 1, tzinfo=UTC)
        run = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # 2026-03-30 in Berlin, 03-29 in Honolulu
        berlin = decide(
            DEFAULT, due_date=due, issued_at=issued, now=run, timezone="Europe/Berlin", reminders_enabled=True
        )
        honolulu = decide(
            DEFAULT, due_date=due, issued_at=issued, now=run, timezone="Pacific/Honolulu", reminders_enabled=True
        )
        assert berlin.dun and not honolulu.dun

    def test_dunning_also_when_reminders_are_off_and_not_when_disabled(self):
        kwargs = {
            "due_date": date(2026, 3, 20),
            "issued_at": datetime(2026, 2, 1, tzinfo=UTC),
            "now": datetime(2026, 4, 20, tzinfo=UTC),
            "timezone": "UTC",
        }
        assert decide(DEFAULT, reminders_enabled=False, **kwargs).dun
        off = ReminderPolicy(steps=DEFAULT.steps, dunning_enabled=False)
        assert decide(off, reminders_enabled=True, **kwargs).nothing

    def test_reminders_off(self):
        decision = decide(
            DEFAULT,
            due_date=date(2026, 3, 20),
            issued_at=datetime(2026, 2, 1, tzinfo=UTC),
            now=datetime(2026, 3, 20, 12, tzinfo=UTC),
            timezone="UTC",
            reminders_enabled=False,
        )
        assert decision.nothing and decision.reason == "reminders_disabled"


# ---------------------------------------------------------------- the due index's entry, and the runs
def simulate(policy, due, issued_at, tz, run_times, previous=None):
    """Runs at `run_times` over one invoice's due-index entry, as run_reminder_schedule does: the entry
    is read when its instant has come and its UTC date is one the run queries; the run decides and
    moves it. Returns {kind: [local days it was decided on]}, the local day of the first dunning
    decision (the invoice leaves the index then) and how often the entry was read."""
    issued_on = local_date(issued_at, tz)
    at = next_action_at(policy, due, after=issued_on, timezone=tz)
    decided: dict[str, list[date]] = {}
    dunned = None
    reads = 0
    for now in run_times:
        if at is not None and at <= now and at.astimezone(UTC).date() in query_days(now, previous, issued_at):
            reads += 1
            d = decide(policy, due_date=due, issued_at=issued_at, now=now, timezone=tz, reminders_enabled=True)
            if d.today is not None and d.today < local_date(at, tz):
                d = Decision(today=d.today, reason="not_yet")
            if d.dun:
                dunned = local_date(now, tz)
                break
            if d.step is not None:
                decided.setdefault(d.step.kind, []).append(local_date(now, tz))
            moved = after_decision(policy, d, due, issued_on, tz)
            assert moved is None or moved > now, (now, moved)  # always forward: read once per action
            at = moved
        previous = now
    return decided, dunned, reads


class TestQueryWindow:
    @settings(max_examples=150, deadline=None)
    @given(
        policies(),
        instants,
        st.integers(0, 40),
        st.sampled_from(ZONES),
        st.lists(st.integers(60, 23 * 60), min_size=1, max_size=30),
        st.integers(1, 23 * 60),
    )
    def test_runs_at_most_23h_apart_decide_each_step_once_on_its_local_day(
        self, policy, issued_at, days_to_due, tz, gaps_min, before_min
    ):
        due = local_date(issued_at, tz) + timedelta(days=days_to_due)
        previous = issued_at - timedelta(minutes=before_min)  # the last run before the invoice existed
        horizon_day = max(policy.dunning_day(due), policy.steps[-1].day(due)) + timedelta(days=2)
        run_times = []
        t = issued_at
        while local_date(t, tz) <= horizon_day:
            t += timedelta(minutes=gaps_min[len(run_times) % len(gaps_min)])
            run_times.append(t)
        decided, dunned, reads = simulate(policy, due, issued_at, tz, run_times, previous)
        issued_on = local_date(issued_at, tz)
        expected = {s.kind: [s.day(due)] for s in policy.steps if s.day(due) > issued_on}
        assert decided == expected
        if policy.dunning_enabled and policy.dunning_day(due) > issued_on:
            assert dunned == policy.dunning_day(due)
        else:
            assert dunned is None
        # and the entry was read only when something was due: once per step sent, once to dun
        assert reads == len(expected) + (dunned is not None)

    @settings(max_examples=150, deadline=None)
    @given(
        policies(),
        instants,
        st.integers(0, 40),
        st.sampled_from(ZONES),
        st.lists(st.integers(60, 9 * 24 * 60), min_size=5, max_size=40),
    )
    def test_missed_runs_never_send_twice_nor_out_of_order(self, policy, issued_at, days_to_due, tz, gaps_min):
        due = local_date(issued_at, tz) + timedelta(days=days_to_due)
        run_times = []
        t = issued_at
        for gap in gaps_min:
            t += timedelta(minutes=gap)
            run_times.append(t)
        decided, _, _ = simulate(policy, due, issued_at, tz, run_times, issued_at - timedelta(hours=1))
        assert all(len(days) == 1 for days in decided.values())
        offsets = [policy.step(k).offset_days for k, _ in sorted(decided.items(), key=lambda kv: kv[1][0])]
        assert offsets == sorted(offsets)
        for kind, (day,) in decided.items():
            step_day = policy.step(kind).day(due)
            assert step_day <= day <= step_day + timedelta(days=policy.lookback_days)

    def test_steady_state_queries_the_previous_runs_utc_date_and_todays(self):
        previous = datetime(2026, 3, 19, 8, 0, tzinfo=UTC)
        assert query_days(previous + timedelta(days=1), previous) == [date(2026, 3, 19), date(2026, 3, 20)]

    def test_a_first_run_reads_from_the_oldest_open_invoice(self):
        now = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
        days = query_days(now, None, datetime(2026, 1, 10, 23, 0, tzinfo=UTC))
        assert days[0] == date(2026, 1, 10) and days[-1] == date(2026, 3, 20)
        assert query_days(now) == [date(2026, 3, 20)]  # no open invoice: only today's entries can exist

    def test_a_long_gap_is_caught_up_within_the_bound(self):
        days = query_days(datetime(2028, 3, 20, 8, 0, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC))
        assert len(days) == 401

    def test_a_cursor_in_the_future_is_ignored(self):
        now = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
        assert query_days(now, now + timedelta(days=3)) == query_days(now)


class TestNextAction:
    @settings(max_examples=300, deadline=None)
    @given(st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31)), st.sampled_from(ZONES))
    def test_start_of_day_is_the_first_instant_of_that_local_day(self, day, tz):
        at = start_of_day(day, tz)
        assert local_date(at, tz) == day
        assert local_date(at - timedelta(microseconds=1), tz) < day

    @settings(max_examples=200, deadline=None)
    @given(policies(), st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31)), st.integers(-400, 400))
    def test_the_first_action_day_after_a_day(self, policy, due, shift):
        after = due + timedelta(days=shift)
        at = next_action_at(policy, due, after=after, timezone="Asia/Tokyo")
        days = [s.day(due) for s in policy.steps] + ([policy.dunning_day(due)] if policy.dunning_enabled else [])
        later = sorted(d for d in days if d > after)
        assert (local_date(at, "Asia/Tokyo") if at else None) == (later[0] if later else None)

    def test_after_the_last_step_without_dunning_the_invoice_leaves_the_index(self):
        off = ReminderPolicy(steps=DEFAULT.steps, dunning_enabled=False)
        due = date(2026, 3, 20)
        assert next_action_at(off, due, after=due + timedelta(days=3), timezone="UTC") is None
        assert next_action_at(DEFAULT, due, after=due + timedelta(days=3), timezone="UTC") == datetime(
            2026, 3, 30, tzinfo=UTC
        )  # the dunning day: + 3 + 7 grace

    def test_a_dunned_invoice_is_looked_at_again_the_next_day_until_it_is_written_off(self):
        decision = Decision(dun=True, today=date(2026, 4, 1), reason="dunning")
        at = after_decision(DEFAULT, decision, date(2026, 3, 20), date(2026, 2, 1), "Europe/Berlin")
        assert at == datetime(2026, 4, 1, 22, 0, tzinfo=UTC)  # 2 April begins in Berlin (CEST)
