"""The pure reminder rules: steps, the one step due on a day, catch-up, dunning, and the query window
of a run (it never misses what the per-invoice decision would send, and nothing is decided twice)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from invoicing.domain.reminders import (
    ReminderPolicy,
    ReminderPolicyError,
    ReminderStep,
    dates_in_use,
    decide,
    latest_due_step,
    local_date,
    parse_steps,
    plan_queries,
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

    @given(instants, st.sampled_from(ZONES))
    def test_every_zone_is_inside_the_dates_in_use(self, at, tz):
        first, last = dates_in_use(at)
        assert first <= local_date(at, tz) <= last
        assert 1 <= (last - first).days + 1 <= 3


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


# ---------------------------------------------------------------- the window of a run
def simulate(policy, due, issued_at, tz, run_times, previous):
    """Runs at `run_times` with their query plans. Returns {kind: [local days it was decided on]} and
    the local day of the first dunning decision (the invoice leaves the index then)."""
    decided: dict[str, list[date]] = {}
    dunned = None
    for now in run_times:
        plan = plan_queries(policy, now, previous)
        if due in plan.due_dates:
            d = decide(
                policy,
                due_date=due,
                issued_at=issued_at,
                now=now,
                timezone=tz,
                reminders_enabled=True,
                previous_run=previous,
            )
            if d.dun:
                dunned = local_date(now, tz)
                break
            if d.step is not None:
                decided.setdefault(d.step.kind, []).append(local_date(now, tz))
        else:
            # whatever the plan leaves out, the decision would not have sent either
            d = decide(
                policy,
                due_date=due,
                issued_at=issued_at,
                now=now,
                timezone=tz,
                reminders_enabled=True,
                previous_run=previous,
            )
            assert d.nothing, (now, plan, d)
        previous = now
    return decided, dunned


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
        decided, dunned = simulate(policy, due, issued_at, tz, run_times, previous)
        issued_on = local_date(issued_at, tz)
        expected = {s.kind: [s.day(due)] for s in policy.steps if s.day(due) > issued_on}
        assert decided == expected
        if policy.dunning_enabled and policy.dunning_day(due) > issued_on:
            assert dunned == policy.dunning_day(due)
        else:
            assert dunned is None

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
        decided, _ = simulate(policy, due, issued_at, tz, run_times, issued_at - timedelta(hours=1))
        assert all(len(days) == 1 for days in decided.values())
        offsets = [policy.step(k).offset_days for k, _ in sorted(decided.items(), key=lambda kv: kv[1][0])]
        assert offsets == sorted(offsets)
        for kind, (day,) in decided.items():
            step_day = policy.step(kind).day(due)
            assert step_day <= day <= step_day + timedelta(days=policy.lookback_days)

    def test_steady_state_queries_two_days_per_step(self):
        previous = datetime(2026, 3, 19, 8, 0, tzinfo=UTC)
        plan = plan_queries(DEFAULT, previous + timedelta(days=1), previous)
        assert (plan.first_day, plan.last_day) == (date(2026, 3, 19), date(2026, 3, 20))
        assert len(plan.due_dates) == 2 * (len(DEFAULT.steps) + 1)  # + the dunning day

    def test_first_run_looks_back(self):
        plan = plan_queries(DEFAULT, datetime(2026, 3, 20, 8, 0, tzinfo=UTC))
        assert plan.first_day == date(2026, 3, 19) - timedelta(days=7)

    def test_a_cursor_in_the_future_is_ignored(self):
        now = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
        assert plan_queries(DEFAULT, now, now + timedelta(days=3)) == plan_queries(DEFAULT, now)
