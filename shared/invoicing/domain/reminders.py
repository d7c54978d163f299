"""Reminders and dunning: the pure rules. No I/O, no AWS.

Steps. A policy is an ordered list of steps `kind:offset` (days relative to the due date), e.g.
`upcoming:-7,due:0,overdue:+3,final:+14`. A step falls due on `due_date + offset` in the CUSTOMER's
time zone: "today" for an invoice is the calendar date of its customer's zone at the moment the
daily run happens.

Which step is sent. On a run, an invoice gets at most one reminder: the LATEST step whose day has
come (`step day <= today`). Earlier steps that were missed (the schedule did not run for a few days)
are superseded, never sent late in a burst. The latest step is sent only while it is fresh:
`step day >= today - lookback_days`; older than that it is dropped. A step dated on or before the
day the invoice was issued is never sent: the invoice itself is that day's notice.

Exactly once per invoice and kind is the store's job (a conditional ledger write); this module only
decides what is due.

Dunning. `dunning day = due_date + offset of the last step + grace days`. From that day on (customer's
zone) an invoice still open is written off (`uncollectible`) by the `system:dunning` actor, unless the
dunning day was on or before the issue day (a back-dated invoice is not written off the day it is
issued). Dunning is bookkeeping, not mail: it applies whether or not the customer accepts reminders.

Where a run finds an invoice. The due index holds each open invoice under ONE instant: the start, in
its customer's zone, of its next action day (a step's day or the dunning day, `next_action_at`).
Finalization puts it there; a run reads the entries whose instant has come (`query_days`: the UTC
dates since the previous run, each up to now), decides each, and moves it to the next action after
the day it decided on (`after_decision`; a dunned invoice to the next day, until the write-off took
it off the index). So a run reads only invoices with something due, in any zone, at the price of one
index write per invoice decided. An entry is read once per action day; a customer who changes zone
is looked at on the old zone's instant and moved (a step can then go out up to a day late).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_STEPS = "upcoming:-7,due:0,overdue:+3"
MANUAL_KIND = "manual"
MAX_OFFSET_DAYS = 365
MAX_STEPS = 10
# dunning has no lookback: after an outage it catches up on this many days at most (one query per day)
MAX_DUNNING_CATCH_UP_DAYS = 400

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_STEP = re.compile(r"^\s*([A-Za-z0-9_]+)\s*:\s*([+-]?\d{1,4})\s*$")


class ReminderPolicyError(ValueError):
    """The REMINDER_STEPS text is not a valid list of steps."""


@dataclass(frozen=True)
class ReminderStep:
    kind: str
    offset_days: int

    @property
    def category(self) -> str:
        """Which template family: `upcoming` before the due day, `due` on it, `overdue` after it."""
        if self.offset_days < 0:
            return "upcoming"
        return "due" if self.offset_days == 0 else "overdue"

    def day(self, due_date: date) -> date:
        return due_date + timedelta(days=self.offset_days)


def parse_steps(text: str) -> tuple[ReminderStep, ...]:
    """`"upcoming:-7,due:0,overdue:+3"` -> steps sorted by offset. Kinds are lower-case identifiers,
    unique, not `manual`; offsets are unique whole days within a year of the due date."""
    parts = [p for p in (text or "").split(",") if p.strip()]
    if not parts:
        raise ReminderPolicyError("at least one reminder step is needed, e.g. 'due:0'")
    if len(parts) > MAX_STEPS:
        raise ReminderPolicyError(f"at most {MAX_STEPS} reminder steps")
    steps: list[ReminderStep] = []
    for part in parts:
        match = _STEP.match(part)
        if not match:
            raise ReminderPolicyError(f"reminder step {part.strip()!r} is not 'kind:offset_days', e.g. 'overdue:+3'")
        kind, offset = match.group(1), int(match.group(2))
        if not _KIND.match(kind) or kind == MANUAL_KIND:
            raise ReminderPolicyError(f"reminder kind {kind!r} must be a lower-case name (not 'manual')")
        if abs(offset) > MAX_OFFSET_DAYS:
            raise ReminderPolicyError(f"reminder offset {offset} is more than {MAX_OFFSET_DAYS} days from the due date")
        steps.append(ReminderStep(kind, offset))
    if len({s.kind for s in steps}) != len(steps):
        raise ReminderPolicyError("reminder kinds must be unique")
    if len({s.offset_days for s in steps}) != len(steps):
        raise ReminderPolicyError("two reminder steps fall on the same day")
    return tuple(sorted(steps, key=lambda s: s.offset_days))


@dataclass(frozen=True)
class ReminderPolicy:
    steps: tuple[ReminderStep, ...]
    lookback_days: int = 7
    dunning_enabled: bool = True
    dunning_grace_days: int = 7

    def __post_init__(self) -> None:
        if not self.steps:
            raise ReminderPolicyError("at least one reminder step is needed")
        if self.lookback_days < 0 or self.dunning_grace_days < 1:
            raise ReminderPolicyError("lookback must be >= 0 days and the dunning grace >= 1 day")

    @classmethod
    def from_text(cls, steps: str, **kwargs: object) -> ReminderPolicy:
        return cls(steps=parse_steps(steps), **kwargs)  # type: ignore[arg-type]

    @property
    def last_offset(self) -> int:
        return self.steps[-1].offset_days

    @property
    def dunning_offset(self) -> int:
        """Days after the due date on which an unpaid invoice is written off."""
        return self.last_offset + self.dunning_grace_days

    def step(self, kind: str) -> ReminderStep | None:
        return next((s for s in self.steps if s.kind == kind), None)

    def dunning_day(self, due_date: date) -> date:
        return due_date + timedelta(days=self.dunning_offset)


# ---------------------------------------------------------------- dates in a customer's zone
@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone; an unknown or empty name is UTC (customers are validated on write, old data may not be)."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_date(at: datetime, timezone: str) -> date:
    """The calendar date at instant `at` (aware) in `timezone`."""
    return at.astimezone(zone(timezone)).date()


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# ---------------------------------------------------------------- what is due for one invoice
def latest_due_step(
    policy: ReminderPolicy, due_date: date, today: date, issued_on: date | None = None
) -> ReminderStep | None:
    """The one step to send today, or None. See the module docstring (catch-up, lookback, issue day)."""
    oldest = today - timedelta(days=policy.lookback_days)
    for step in reversed(policy.steps):
        day = step.day(due_date)
        if day > today:
            continue
        # the latest step whose day has come; earlier ones are superseded, never sent late
        if day < oldest or (issued_on is not None and day <= issued_on):
            return None
        return step
    return None


@dataclass(frozen=True)
class Decision:
    """What a run does for one invoice: nothing, send `step`, or write the invoice off (`dun`)."""

    step: ReminderStep | None = None
    dun: bool = False
    today: date | None = None
    reason: str = ""

    @property
    def nothing(self) -> bool:
        return self.step is None and not self.dun


def decide(
    policy: ReminderPolicy,
    *,
    due_date: date,
    issued_at: datetime | None,
    now: datetime,
    timezone: str,
    reminders_enabled: bool,
    previous_run: datetime | None = None,
) -> Decision:
    """The decision for one open invoice on a run at instant `now`.

    `previous_run`: the instant of the last completed run. A step whose day had already come for this
    customer at that run was decided then (sent, or failed into the retry list), so it is not decided
    again, unless the invoice did not exist yet at that run.
    """
    today = local_date(now, timezone)
    issued_on = local_date(issued_at, timezone) if issued_at is not None else None
    dunning_day = policy.dunning_day(due_date)
    if policy.dunning_enabled and today >= dunning_day and (issued_on is None or dunning_day > issued_on):
        return Decision(dun=True, today=today, reason="dunning")
    if not reminders_enabled:
        return Decision(today=today, reason="reminders_disabled")
    step = latest_due_step(policy, due_date, today, issued_on)
    if step is None:
        return Decision(today=today, reason="nothing_due")
    if (
        previous_run is not None
        and previous_run <= now
        and issued_at is not None
        and issued_at < previous_run
        and step.day(due_date) <= local_date(previous_run, timezone)
    ):
        return Decision(today=today, reason="decided_by_previous_run")
    return Decision(step=step, today=today, reason="due")


# ---------------------------------------------------------------- when an invoice is next looked at
def start_of_day(day: date, timezone: str) -> datetime:
    """The first instant (UTC) at which the calendar date in `timezone` is `day`. A midnight that a
    DST change skips is the change itself (zoneinfo maps the missing wall time forward)."""
    tz = zone(timezone)
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def action_days(policy: ReminderPolicy, due_date: date) -> list[date]:
    """The days something may happen to an open invoice: each step's, then the dunning day."""
    out = [step.day(due_date) for step in policy.steps]
    if policy.dunning_enabled:
        out.append(policy.dunning_day(due_date))
    return sorted(set(out))


def next_action_at(policy: ReminderPolicy, due_date: date, *, after: date, timezone: str) -> datetime | None:
    """When a run should next look at an open invoice: the start, in its customer's zone, of the first
    step day or dunning day later than `after` (the issue day at finalization, the day a run decided
    on). None when nothing is left (the last step passed and dunning is off). The due index holds the
    invoice under this instant, so a run reads only invoices with something due (module docstring)."""
    day = next((d for d in action_days(policy, due_date) if d > after), None)
    return start_of_day(day, timezone) if day is not None else None


def after_decision(
    policy: ReminderPolicy, decision: Decision, due_date: date, issued_on: date | None, timezone: str
) -> datetime | None:
    """Where a run puts an invoice it decided on: dunning, the start of the next local day (the write-off
    is tried again until the invoice leaves the index: a dunned invoice is no longer open); otherwise
    the next action after today (and after the issue day)."""
    today = decision.today
    assert today is not None
    if decision.dun:
        return start_of_day(today + timedelta(days=1), timezone)
    after = max(today, issued_on) if issued_on is not None else today
    return next_action_at(policy, due_date, after=after, timezone=timezone)


def query_days(now: datetime, previous_run: datetime | None = None, since: datetime | None = None) -> list[date]:
    """The UTC dates of the due index a run at `now` reads (each up to `now`): from the UTC date of the
    previous run (which moved everything it read to a later instant) to today's. A first run has no
    previous run: it starts at `since`, the creation of the oldest open invoice (no entry is older
    than its invoice), or today when there is none. At most MAX_DUNNING_CATCH_UP_DAYS."""
    today = now.astimezone(UTC).date()
    first = today
    if previous_run is not None and previous_run <= now:
        first = previous_run.astimezone(UTC).date()
    elif since is not None:
        first = min(since.astimezone(UTC).date(), today)
    return days(max(first, today - timedelta(days=MAX_DUNNING_CATCH_UP_DAYS)), today)


# ---------------------------------------------------------------- the ledger
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class ReminderRecord:
    """One ledger entry: a reminder of one kind for one invoice (manual ones: one per request).

    `sending` while claimed (until `lease_until`); `sent` once SES accepted it (`message_id`);
    `failed` after too many attempts (or a failed manual send); `cancelled` when a retry found the
    invoice paid, void or written off.
    """

    invoice_id: str
    key: str  # the kind, or `manual#<id>`
    kind: str
    status: str
    trigger: str  # schedule | manual
    actor: str
    attempts: int
    claimed_at: str
    lease_until: str | None = None
    step_date: str | None = None
    recipient: str | None = None
    sent_at: str | None = None
    message_id: str | None = None
    payment_link_id: str | None = None
    last_error: str | None = None

    @property
    def id(self) -> str:
        return reminder_id(self.invoice_id, self.key)


@dataclass(frozen=True)
class SentReminder:
    """A reminder as it is once SES accepted it: what its public event (`reminder.sent`) carries. The
    sender builds it from what it did, without reading the ledger back, so it has no attempt count
    (the ledger's `attempts`, listed by the API)."""

    invoice_id: str
    key: str
    kind: str
    trigger: str
    actor: str
    claimed_at: str
    sent_at: str
    recipient: str
    message_id: str
    step_date: str | None = None
    payment_link_id: str | None = None
    status: str = SENT

    @property
    def id(self) -> str:
        return reminder_id(self.invoice_id, self.key)


def reminder_id(invoice_id: str, key: str) -> str:
    """A reminder's public id: derived from its invoice and ledger key (one reminder per invoice and
    kind, manual ones one per request), so every writer names it the same without a read."""
    digest = hashlib.sha256(f"{invoice_id}#{key}".encode()).hexdigest()[:24]
    return f"rem_{digest}"
