"""One attempt at a refund through the payment provider, and recording what came of it.

Shared by the credit note (the first attempt, right after its commit) and the refund use cases
(a retry, Stripe's webhooks, a manual completion): not a use case itself, so that no use case
imports another. Every write is the refund's conditional update and its event in one transaction
(store/refunds.py); a lost race re-reads and weighs Stripe's word again (domain/refunds.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from invoicing import clock
from invoicing.adapters.payments import RefundRequest
from invoicing.domain.events import Actor, InvoiceEvent, new_event
from invoicing.domain.refunds import (
    STRIPE,
    Refund,
    RefundStatus,
    attempt_idempotency_key,
    provider_refund_status,
    takes_provider_word,
)
from invoicing.errors import ConcurrentModification, InvoicingError, NotFound
from invoicing.observability import logger, metrics
from invoicing.services import Services
from invoicing.store.retry import SHORT, retry
from invoicing.store.writes.credit import RefundChanged

MAX_ATTEMPTS = 5
FAILED_WITHOUT_REASON = "the card payment provider reported the refund as failed"

# (Stripe refund id, our status for it, Stripe's `created`)
ProviderWord = tuple[str, RefundStatus, int | None]


def reread(svc: Services, refund: Refund) -> Refund:
    current = svc.refund_store.get(refund.invoice_id, refund.id)
    if current is None:  # refunds are never deleted
        raise NotFound(f"refund {refund.id} not found", code="refund_not_found")
    return current


def refund_event(type_: str, before: Refund, after: Refund, actor: Actor, at: str, **extra: object) -> InvoiceEvent:
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


def with_word(refund: Refund, word: ProviderWord, failure: str | None, at: str) -> Refund:
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


def record_outcome(
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
    current = [read, changed]

    def attempt() -> Refund:
        before, after = current
        with svc.uow() as tx:
            tx.change_refund(before, after)
            tx.add_events(make_event(before, after))
        return after

    def read_again(n: int, exc: BaseException) -> None:
        now = reread(svc, current[0])
        if word is None or not takes_provider_word(now, *word):
            raise _Yield(now)
        current[:] = [now, with_word(now, word, failure, current[1].updated_at)]

    try:
        return retry(
            attempt,
            on=(RefundChanged,),
            attempts=MAX_ATTEMPTS,
            exhausted=lambda: ConcurrentModification(f"refund {read.id} kept changing; read it again"),
            backoff=SHORT,
            on_retry=read_again,
        )
    except _Yield as recorded:
        return recorded.refund


class _Yield(Exception):
    """What was recorded meanwhile says at least as much as our outcome: it stands."""

    def __init__(self, refund: Refund) -> None:
        super().__init__(refund.id)
        self.refund = refund


def call_provider(svc: Services, actor: Actor, refund: Refund, attempt: int, event_type: str) -> Refund:
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
        result = svc.payment_provider().refund(request)
    except InvoicingError as exc:
        error, result = exc, None
    now = clock.iso(clock.now())

    def make_event(before: Refund, after: Refund) -> InvoiceEvent:
        return refund_event(event_type, before, after, actor, now, attempt=attempt, found_existing=False)

    if error is not None:
        logger.warning("provider refund failed", extra={"refund_id": refund.id, "attempt": attempt, "code": error.code})
        metrics.add_metric(name="RefundsFailed", unit="Count", value=1)
        # which Stripe refund this attempt made, if any, is unknown: a webhook or the next retry tells
        failed = replace(refund, status=RefundStatus.FAILED, provider_ref=None, failure=error.message, updated_at=now)
        return record_outcome(svc, refund, failed, make_event, None)
    if result is None:  # the configured provider moves no money: left as it is
        return refund
    status = provider_refund_status(result.status) or RefundStatus.PENDING  # unknown: money may be moving
    word: ProviderWord = (result.provider_ref, status, result.created)
    if status is RefundStatus.FAILED:
        metrics.add_metric(name="RefundsFailed", unit="Count", value=1)
    return record_outcome(svc, refund, with_word(refund, word, result.failure, now), make_event, word, result.failure)


# ---------------------------------------------------------------- after the credit note's commit
def first_attempt(svc: Services, actor: Actor, refund: Refund) -> Refund:
    """issue_credit_note calls this after its commit: the refund is recorded (pending) before any
    money moves, so a crash here leaves a visible pending refund, never money returned without a
    record. Manual refunds stay pending: finance pays them back by hand and completes them."""
    if refund.provider != STRIPE:
        logger.info("manual refund to make", extra={"refund_id": refund.id, "amount_cents": refund.amount_cents})
        return refund
    return call_provider(svc, actor, refund, refund.attempts_made, "invoice.refund_updated")
