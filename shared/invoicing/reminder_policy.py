"""The reminder policy of this deployment (REMINDER_STEPS, lookback, dunning), parsed once per settings:
read by finalization (where an invoice first goes on the due index) and by the reminder code."""

from __future__ import annotations

from functools import lru_cache

from invoicing.domain.reminders import ReminderPolicy
from invoicing.settings import Settings

__all__ = ["reminder_policy"]


@lru_cache(maxsize=8)
def _policy(steps: str, lookback: int, dunning: bool, grace: int) -> ReminderPolicy:
    return ReminderPolicy.from_text(steps, lookback_days=lookback, dunning_enabled=dunning, dunning_grace_days=grace)


def reminder_policy(settings: Settings) -> ReminderPolicy:
    return _policy(
        settings.reminder_steps,
        settings.reminder_lookback_days,
        settings.dunning_enabled,
        settings.dunning_grace_days,
    )
