"""Refunds: their record and lifecycle, the pure rules. No I/O, no AWS.

A refund is `pending` when its credit note commits, before any money moves. Then:
- stripe: the provider's answer (and later its webhooks) make it `succeeded` or `failed`; a failed
  one can be retried, each attempt under an idempotency key of its own;
- manual: finance pays it back by hand and completes it with a reference: `succeeded`.
A failed Stripe refund leaves `failed` only through a retry (which first looks for an earlier
attempt that went through after all) or the webhook of an attempt whose answer we missed; its amount
stays reserved on the payment meanwhile (the money is still owed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from invoicing import clock
from invoicing.errors import ConcurrentModification, Conflict, ValidationFailed

MAX_REFUND_REFERENCE = 200


class RefundExceedsPaid(Conflict):
    code = "refund_exceeds_paid"


class RefundStatus(StrEnum):
    PENDING = "pending"  # manual: to be paid back by hand; stripe: not confirmed yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"


STRIPE = "stripe"  # refunded through Stripe on the payment's PaymentIntent
MANUAL = "manual"  # paid back by hand (bank transfer ...), then recorded with its reference


@dataclass(frozen=True)
class Refund:
    id: str
    invoice_id: str
    payment_id: str
    credit_note_id: str
    amount_cents: int
    currency: str
    provider: str  # MANUAL or STRIPE
    status: RefundStatus
    created_at: str
    updated_at: str
    provider_ref: str | None = None  # Stripe: the refund (re_...) of the latest attempt we know of
    payment_reference: str | None = None
    failure: str | None = None
    attempts: int = 0  # Stripe: calls made (each under its own idempotency key); absent on old items
    provider_created: int | None = None  # Stripe's `created` of provider_ref: orders the attempts
    reference: str | None = None  # manual: finance's reference of the money paid back
    paid_at: str | None = None  # manual: when it was paid back
    completed_by: str | None = None  # manual: who recorded it
    # Stripe: when the latest attempt was claimed, until its outcome is recorded (ATTEMPT_LEASE)
    claimed_at: str | None = None
    # every write of the refund sets version + 1, conditioned on the version read (0: absent on old
    # items); it orders the refund's public events (`sequence`)
    version: int = 0

    @property
    def attempts_made(self) -> int:
        """Stripe refunds written before attempts were counted had their one call (attempt 1)."""
        return max(self.attempts, 1) if self.provider == STRIPE else self.attempts


# ---------------------------------------------------------------- refund lifecycle
# A refund is `pending` when the credit note commits, before any money moves. Then:
# - stripe: the provider's answer (and later its webhooks) make it `succeeded` or `failed`; a failed
#   one can be retried, each attempt under an idempotency key of its own;
# - manual: finance pays it back by hand and completes it with a reference: `succeeded`.
# A failed Stripe refund leaves `failed` only through a retry (which first looks for an earlier
# attempt that went through after all) or the webhook of an attempt whose answer we missed; its amount
# stays reserved on the payment meanwhile (the money is still owed).
class RefundNotRetryable(Conflict):
    code = "refund_not_retryable"


class RefundNotCompletable(Conflict):
    code = "refund_not_completable"


# Stripe's refund statuses in ours: requires_action is still in flight, canceled never moved money
PROVIDER_REFUND_STATUSES: dict[str, RefundStatus] = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
}
# One Stripe refund only moves forward: pending -> succeeded -> failed (a card refund can still fail
# after it succeeded, e.g. a closed card account); failed and canceled are final. Webhooks are not
# delivered in order, so an update that would move backwards is an older one and is dropped.
_PROGRESS = {RefundStatus.PENDING: 0, RefundStatus.SUCCEEDED: 1, RefundStatus.FAILED: 2}


def provider_refund_status(raw: str | None) -> RefundStatus | None:
    """Our status for a Stripe refund status; None for one we do not know (a newer API)."""
    return PROVIDER_REFUND_STATUSES.get(raw or "")


# An attempt claimed less than this ago may still be talking to Stripe (its call times out well within
# it); after it, the attempt is taken to have died, and the next retry first looks at Stripe.
ATTEMPT_LEASE = timedelta(minutes=2)


def ensure_retryable(refund: Refund, now: datetime | None = None) -> None:
    """Only a Stripe refund that failed can be tried again (manual ones are completed by hand), and
    not while another retry's attempt is under way: it stays `failed` until its outcome is recorded,
    and Stripe may not show its refund yet, so a second retry would refund again under a new
    idempotency key (409 concurrent_modification until the attempt's lease ran out)."""
    if refund.provider != STRIPE:
        raise RefundNotRetryable("a manual refund is paid back by hand; complete it with its reference instead")
    if refund.status is not RefundStatus.FAILED:
        raise RefundNotRetryable(f"the refund is {refund.status.value}; only a failed refund can be retried")
    if now is not None and refund.claimed_at is not None and now - clock.parse_iso(refund.claimed_at) < ATTEMPT_LEASE:
        raise ConcurrentModification("another retry of this refund is under way; read it again")


def ensure_completable(refund: Refund) -> None:
    """Only a manual refund still pending can be recorded as paid back."""
    if refund.provider == STRIPE:
        raise RefundNotCompletable("a Stripe refund is settled by Stripe; retry it if it failed")
    if refund.status is not RefundStatus.PENDING:
        raise RefundNotCompletable(f"the refund is already {refund.status.value}")


def check_refund_reference(reference: str) -> str:
    """What finance paid back with (a bank transfer's reference ...): required, at most 200 characters."""
    text = (reference or "").strip()
    if not text:
        raise ValidationFailed("reference must not be blank", details={"field": "reference"})
    if len(text) > MAX_REFUND_REFERENCE:
        raise ValidationFailed(
            f"reference must be at most {MAX_REFUND_REFERENCE} characters", details={"field": "reference"}
        )
    return text


def attempt_idempotency_key(refund_id: str, attempt: int) -> str:
    """Stripe keeps the first answer to a key, errors included, for 24 h: a retry needs a new key, and
    the same attempt (a replayed or concurrent request) the same one. Attempt 1 keeps the key the
    refunds issued before attempts were counted used."""
    return f"refund-{refund_id}" if attempt <= 1 else f"refund-{refund_id}-attempt-{attempt}"


def takes_provider_word(current: Refund, provider_ref: str, status: RefundStatus, created: int | None) -> bool:
    """Whether Stripe's word about its refund `provider_ref` (one carrying our refund id in its
    metadata) changes our refund `current`: False for a redelivery, an update that arrived out of
    order, or a refund of an earlier attempt.

    The same Stripe refund only moves forward (see _PROGRESS). Another one is a later attempt whose
    answer we missed (the call errored, or the process stopped after it) only while the attempt we
    know of is over (failed) or unknown, and only if Stripe created it after that one.
    """
    if current.provider != STRIPE:
        return False
    if provider_ref == current.provider_ref:
        return _PROGRESS[status] > _PROGRESS[current.status]
    if current.provider_ref is not None and current.status is not RefundStatus.FAILED:
        return False  # the known attempt is in flight or succeeded: that one is an earlier attempt's
    # otherwise only one created after the attempt we know (else an earlier attempt's, late)
    return current.provider_created is None or (created is not None and created > current.provider_created)


def pick_provider_refund(
    found: list[tuple[str, RefundStatus, int | None]],
) -> tuple[str, RefundStatus, int | None] | None:
    """Among Stripe's refunds carrying our refund id, the one that stands (succeeded first, then the
    latest still in flight); None when every one of them failed, so a new attempt may be made."""
    alive = [f for f in found if f[1] is not RefundStatus.FAILED]
    if not alive:
        return None
    return max(alive, key=lambda f: (f[1] is RefundStatus.SUCCEEDED, f[2] or 0))


def allocate_refund(refundable: list[tuple[str, int]], amount_cents: int) -> list[tuple[str, int]]:
    """Spread a refund over payments (id, refundable amount), newest first: [(payment id, amount)]."""
    out: list[tuple[str, int]] = []
    left = amount_cents
    for payment_id, available in reversed(refundable):
        if left <= 0:
            break
        take = min(available, left)
        if take > 0:
            out.append((payment_id, take))
            left -= take
    if left > 0:
        raise RefundExceedsPaid(f"the payments hold {amount_cents - left} that can still be refunded")
    return out
