"""Refunds after their credit note has committed (the refund lifecycle, docs/decisions.md "Credit notes").

first_attempt — right after issue_credit_note's commit: a Stripe refund is refunded through the SDK
  (attempt 1) and the answer recorded with an `invoice.refund_updated` event; a manual one stays
  `pending` for finance to pay back by hand.
retry_refund — who: invoices:write. A Stripe refund in `failed` only (409 `refund_not_retryable`).
  Stripe is first asked for the PaymentIntent's refunds carrying our refund id: an earlier attempt
  may have gone through although we saw an error, and one that succeeded or is still in flight is
  recorded instead of refunding twice. Otherwise the next attempt is claimed (attempts + 1,
  conditioned on the refund as read: of two concurrent retries one gets it, the other 409) and Stripe
  is called under that attempt's own idempotency key (Stripe replays a key's first answer, errors
  included, for 24 h). The outcome is recorded with an `invoice.refund_retried` event. If Stripe
  cannot be asked, 503 and nothing is written.
complete_refund — who: invoices:write. A manual refund in `pending` only (409 `refund_not_completable`):
  `succeeded`, with finance's reference, when it was paid back and who recorded it, and an
  `invoice.refund_completed` event; conditioned on it still being pending, so of two concurrent
  completes one wins and the other is 409.
apply_refund_notice — Stripe's `refund.*` webhooks (payments.handle_payment_webhook): the refund named
  in the metadata moves as domain.credit.takes_provider_word allows, with an `invoice.refund_updated`
  event. Unknown refunds and repeated, stale or out-of-order updates are acknowledged and ignored.

Every write is the refund's conditional update and its event in one transaction (store/refunds.py);
a lost race re-reads and decides again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from invoicing import clock
from invoicing.adapters.payments import RefundNotice, RefundRequest
from invoicing.domain.credit import (
    STRIPE,
    Refund,
    RefundNotRetryable,
    RefundStatus,
    attempt_idempotency_key,
    check_refund_reference,
    ensure_completable,
    ensure_retryable,
    pick_provider_refund,
    provider_refund_status,
    takes_provider_word,
)
from invoicing.domain.events import Actor, InvoiceEvent
from invoicing.domain.payments import check_paid_at
from invoicing.errors import ConcurrentModification, InvoicingError, NotFound, ServiceUnavailable
from invoicing.observability import logger, metrics
from invoicing.store.refunds import RefundChanged, RefundStore
from invoicing.use_cases.credit_notes import credit_note_store
from invoicing.use_cases.payments import payment_provider
from invoicing.use_cases.services import Services, new_event

MAX_ATTEMPTS = 5
FAILED_WITHOUT_REASON = "the card payment provider reported the refund as failed"

# (Stripe refund id, our status for it, Stripe's `created`)
ProviderWord = tuple[str, RefundStatus, int | None]


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.2, 0.01 * (2**attempt))))


def refund_store(svc: Services) -> RefundStore:
    store = svc.adapters.get("refund_store")
    if store is None:
        store = svc.adapters.setdefault("refund_store", RefundStore(svc.repo))
    return store


def _find(svc: Services, credit_note_id: str, refund_id: str) -> Refund:
    note = credit_note_store(svc).get(credit_note_id)  # 404 credit_note_not_found
    for refund in note.refunds:
        if refund.id == refund_id:
            return refund
    raise NotFound(f"refund {refund_id} of credit note {credit_note_id} not found", code="refund_not_found")


def _reread(svc: Services, refund: Refund) -> Refund:
    current = refund_store(svc).get(refund.invoice_id, refund.id)
    if current is None:  # refunds are never deleted
        raise NotFound(f"refund {refund.id} not found", code="refund_not_found")
    return current


def _event(type_: str, before: Refund, after: Refund, actor: Actor, at: str, **extra: object) -> InvoiceEvent:
    data: dict[str, object] = {
        "refund_id": after.id,
        "credit_note_id": after.credit_note_id,
        "payment_id": after.payment_id,
        "amount_cents": after.amount_cents,
        "currency": after.currency,
        "provider": after.provider,
        "previous_status": before.status.value,
        "status": after.status.value,
    }
    if after.provider_ref:
        data["provider_ref"] = after.provider_ref
    if after.status is RefundStatus.FAILED and after.failure:
        data["failure"] = after.failure[:500]
    data.update({k: v for k, v in extra.items() if v is not None})
    return new_event(after.invoice_id, type_, actor, at, data=data)


def _with_word(refund: Refund, word: ProviderWord, failure: str | None, at: str) -> Refund:
    provider_ref, status, created = word
    if created is None and provider_ref == refund.provider_ref:
        created = refund.provider_created
    return replace(
        refund,
        status=status,
        provider_ref=provider_ref,
        provider_created=created,
        failure=(failure or FAILED_WITHOUT_REASON) if status is RefundStatus.FAILED else None,
        updated_at=at,
    )


def _record(
    svc: Services,
    read: Refund,
    changed: Refund,
    make_event: Callable[[Refund, Refund], InvoiceEvent],
    word: ProviderWord | None,
    failure: str | None = None,
) -> Refund:
    """Write an outcome decided from `read`. When the refund changed meanwhile (a webhook, another
    request), Stripe's word is weighed again against what is there now; an error outcome (no word)
    yields to whatever was recorded meanwhile, which says at least as much."""
    store = refund_store(svc)
    for attempt in range(MAX_ATTEMPTS):
        try:
            store.record(read, changed, make_event(read, changed))
            return changed
        except RefundChanged:
            _backoff(attempt)
            read = _reread(svc, read)
            if word is None or not takes_provider_word(read, *word):
                return read
            changed = _with_word(read, word, failure, changed.updated_at)
    raise ConcurrentModification(f"refund {read.id} kept changing; read it again")


def _call_provider(svc: Services, actor: Actor, refund: Refund, attempt: int, event_type: str) -> Refund:
    """One call to Stripe for `refund` (already holding attempt number `attempt`), then its outcome."""
    request = RefundRequest(
        refund_id=refund.id,
        payment_reference=refund.payment_reference or "",
        amount_cents=refund.amount_cents,
        currency=refund.currency,
        invoice_id=refund.invoice_id,
        credit_note_id=refund.credit_note_id,
        idempotency_key=attempt_idempotency_key(refund.id, attempt),
    )
    error: InvoicingError | None = None
    try:
        result = payment_provider(svc).refund(request)
    except InvoicingError as exc:
        error, result = exc, None
    now = clock.iso(clock.now())

    def make_event(before: Refund, after: Refund) -> InvoiceEvent:
        return _event(event_type, before, after, actor, now, attempt=attempt, found_existing=False)

    if error is not None:
        logger.warning("provider refund failed", extra={"refund_id": refund.id, "attempt": attempt, "code": error.code})
        metrics.add_metric(name="RefundsFailed", unit="Count", value=1)
        # which Stripe refund this attempt made, if any, is unknown: a webhook or the next retry tells
        failed = replace(refund, status=RefundStatus.FAILED, provider_ref=None, failure=error.message, updated_at=now)
        return _record(svc, refund, failed, make_event, None)
    if result is None:  # the configured provider moves no money: left as it is
        return refund
    status = provider_refund_status(result.status) or RefundStatus.PENDING  # unknown: money may be moving
    word: ProviderWord = (result.provider_ref, status, result.created)
    if status is RefundStatus.FAILED:
        metrics.add_metric(name="RefundsFailed", unit="Count", value=1)
    return _record(svc, refund, _with_word(refund, word, result.failure, now), make_event, word, result.failure)


# ---------------------------------------------------------------- after the credit note's commit
def first_attempt(svc: Services, actor: Actor, refund: Refund) -> Refund:
    """issue_credit_note calls this after its commit: the refund is recorded (pending) before any
    money moves, so a crash here leaves a visible pending refund, never money returned without a
    record. Manual refunds stay pending: finance pays them back by hand and completes them."""
    if refund.provider != STRIPE:
        logger.info("manual refund to make", extra={"refund_id": refund.id, "amount_cents": refund.amount_cents})
        return refund
    return _call_provider(svc, actor, refund, refund.attempts_made, "invoice.refund_updated")


# ---------------------------------------------------------------- retry a failed Stripe refund
def retry_refund(svc: Services, actor: Actor, credit_note_id: str, refund_id: str) -> Refund:
    """See the module docstring."""
    refund = _find(svc, credit_note_id, refund_id)
    ensure_retryable(refund)
    provider = payment_provider(svc)
    if provider.name != STRIPE:
        raise ServiceUnavailable("Stripe is not the configured payment provider; the refund cannot be retried now")
    if not refund.payment_reference:
        raise RefundNotRetryable("the refund names no Stripe payment to refund")
    # an earlier attempt may have gone through although we saw an error: look before refunding again
    found = provider.find_refunds(refund.payment_reference, refund.id)  # ServiceUnavailable: nothing written
    standing = pick_provider_refund(
        [(r.provider_ref, provider_refund_status(r.status) or RefundStatus.PENDING, r.created) for r in found]
    )
    now = clock.iso(clock.now())
    if standing is not None:
        logger.info("earlier refund attempt found at the provider", extra={"refund_id": refund.id})

        def found_event(before: Refund, after: Refund) -> InvoiceEvent:
            return _event(
                "invoice.refund_retried", before, after, actor, now, attempt=before.attempts_made, found_existing=True
            )

        # Stripe's current word about it, just read: recorded as it is
        return _record(svc, refund, _with_word(refund, standing, None, now), found_event, standing)
    attempt = refund.attempts_made + 1
    try:
        refund_store(svc).claim_attempt(refund, attempt, now)
    except RefundChanged:
        current = _reread(svc, refund)
        ensure_retryable(current)  # 409 refund_not_retryable: it succeeded or is in flight now
        raise ConcurrentModification("another retry of this refund is under way; read it again") from None
    metrics.add_metric(name="RefundRetries", unit="Count", value=1)
    claimed = replace(refund, attempts=attempt, updated_at=now)
    return _call_provider(svc, actor, claimed, attempt, "invoice.refund_retried")


# ---------------------------------------------------------------- complete a manual refund
@dataclass(frozen=True)
class CompleteRefund:
    reference: str
    paid_at: datetime | None = None


def complete_refund(svc: Services, actor: Actor, credit_note_id: str, refund_id: str, cmd: CompleteRefund) -> Refund:
    """See the module docstring."""
    reference = check_refund_reference(cmd.reference)
    now_dt = clock.now()
    now = clock.iso(now_dt)
    paid_at = clock.iso(check_paid_at(cmd.paid_at, now_dt)) if cmd.paid_at is not None else now
    refund = _find(svc, credit_note_id, refund_id)
    for attempt in range(MAX_ATTEMPTS):
        ensure_completable(refund)
        done = replace(
            refund,
            status=RefundStatus.SUCCEEDED,
            reference=reference,
            paid_at=paid_at,
            completed_by=actor.principal,
            updated_at=now,
        )
        event = _event("invoice.refund_completed", refund, done, actor, now, reference=reference, paid_at=paid_at)
        try:
            refund_store(svc).record(refund, done, event)
        except RefundChanged:
            _backoff(attempt)
            refund = _reread(svc, refund)  # completed meanwhile: ensure_completable says 409
            continue
        logger.info("manual refund completed", extra={"refund_id": refund.id, "amount_cents": refund.amount_cents})
        metrics.add_metric(name="RefundsCompleted", unit="Count", value=1)
        return done
    raise ConcurrentModification(f"refund {refund_id} kept changing; read it again")


# ---------------------------------------------------------------- Stripe's refund webhooks
def apply_refund_notice(
    svc: Services, actor: Actor, notice: RefundNotice
) -> Literal["refund_updated", "duplicate", "ignored"]:
    """See the module docstring."""
    refund = refund_store(svc).get(notice.invoice_id, notice.refund_id)
    status = provider_refund_status(notice.status)
    if refund is None or refund.provider != STRIPE or status is None:
        logger.info("refund webhook for no refund of ours ignored")
        return "ignored"
    if (
        notice.payment_reference != refund.payment_reference
        or notice.amount_cents != refund.amount_cents
        or notice.currency != refund.currency
    ):
        logger.warning("refund webhook does not match the refund it names; ignored", extra={"refund_id": refund.id})
        return "ignored"
    word: ProviderWord = (notice.provider_ref, status, notice.created)
    now = clock.iso(clock.now())

    def make_event(before: Refund, after: Refund) -> InvoiceEvent:
        return _event("invoice.refund_updated", before, after, actor, now, provider_event_id=notice.event_id)

    for attempt in range(MAX_ATTEMPTS):
        if not takes_provider_word(refund, *word):
            if refund.provider_ref == notice.provider_ref and refund.status is status:
                return "duplicate"
            if status is RefundStatus.SUCCEEDED and refund.provider_ref != notice.provider_ref:
                # money went back on a Stripe refund that is not the attempt we count: a double refund?
                logger.error(
                    "a provider refund of ours succeeded that is not the recorded attempt",
                    extra={"refund_id": refund.id, "provider_ref": notice.provider_ref},
                )
                metrics.add_metric(name="RefundsUnrecordedAtProvider", unit="Count", value=1)
            return "ignored"
        changed = _with_word(refund, word, notice.failure, now)
        try:
            refund_store(svc).record(refund, changed, make_event(refund, changed))
        except RefundChanged:
            _backoff(attempt)
            refund = _reread(svc, refund)
            continue
        logger.info("refund updated by the provider", extra={"refund_id": refund.id, "status": status.value})
        return "refund_updated"
    raise ConcurrentModification("the refund kept changing; the provider will deliver the event again")
