"""Refunds after their credit note has committed (the refund lifecycle, docs/decisions.md "Credit notes").

(The first attempt, right after issue_credit_note's commit, is invoicing.refund_attempts.first_attempt:
  a Stripe refund is refunded through the SDK and the answer recorded with `invoice.refund_updated`;
  a manual one stays `pending` for finance to pay back by hand.)
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
apply_refund_notice — Stripe's `refund.*` webhooks (dispatched by the pay function's webhook handler): the refund named
  in the metadata moves as domain.refunds.takes_provider_word allows, with an `invoice.refund_updated`
  event. Unknown refunds and repeated, stale or out-of-order updates are acknowledged and ignored.

Every write is the refund's conditional update and its event in one transaction (store/refunds.py);
a lost race re-reads and decides again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from invoicing import clock
from invoicing.adapters.payments import RefundNotice
from invoicing.domain.events import Actor, InvoiceEvent
from invoicing.domain.payments import check_paid_at
from invoicing.domain.refunds import (
    STRIPE,
    Refund,
    RefundNotRetryable,
    RefundStatus,
    check_refund_reference,
    ensure_completable,
    ensure_retryable,
    pick_provider_refund,
    provider_refund_status,
    takes_provider_word,
)
from invoicing.errors import ConcurrentModification, NotFound, ServiceUnavailable
from invoicing.observability import logger, metrics
from invoicing.refund_attempts import ProviderWord, call_provider, record_outcome, refund_event, reread, with_word
from invoicing.services import Services
from invoicing.store.retry import SHORT, retry
from invoicing.store.writes.credit import RefundChanged

MAX_ATTEMPTS = 5


def _find(svc: Services, credit_note_id: str, refund_id: str) -> Refund:
    note = svc.credit_note_store.get(credit_note_id)  # 404 credit_note_not_found
    for refund in note.refunds:
        if refund.id == refund_id:
            return refund
    raise NotFound(f"refund {refund_id} of credit note {credit_note_id} not found", code="refund_not_found")


# ---------------------------------------------------------------- retry a failed Stripe refund
def retry_refund(svc: Services, actor: Actor, credit_note_id: str, refund_id: str) -> Refund:
    """See the module docstring."""
    refund = _find(svc, credit_note_id, refund_id)
    ensure_retryable(refund, clock.now())
    provider = svc.payment_provider()
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
            return refund_event(
                "invoice.refund_retried", before, after, actor, now, attempt=before.attempts_made, found_existing=True
            )

        # Stripe's current word about it, just read: recorded as it is
        return record_outcome(svc, refund, with_word(refund, standing, None, now), found_event, standing)
    attempt = refund.attempts_made + 1
    try:
        with svc.uow() as tx:
            tx.claim_refund_attempt(refund, attempt, now)
    except RefundChanged:
        current = reread(svc, refund)
        ensure_retryable(current)  # 409 refund_not_retryable: it succeeded or is in flight now
        raise ConcurrentModification("another retry of this refund is under way; read it again") from None
    metrics.add_metric(name="RefundRetries", unit="Count", value=1)
    # as the claim wrote it
    claimed = replace(refund, attempts=attempt, updated_at=now, claimed_at=now, version=refund.version + 1)
    return call_provider(svc, actor, claimed, attempt, "invoice.refund_retried")


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
    current = [_find(svc, credit_note_id, refund_id)]

    def attempt() -> Refund:
        refund = current[0]
        ensure_completable(refund)  # completed meanwhile: 409
        done = replace(
            refund,
            status=RefundStatus.SUCCEEDED,
            reference=reference,
            paid_at=paid_at,
            completed_by=actor.principal,
            updated_at=now,
        )
        event = refund_event("invoice.refund_completed", refund, done, actor, now, reference=reference, paid_at=paid_at)
        with svc.uow() as tx:
            tx.change_refund(refund, done)
            tx.add_events(event)
        return done

    def read_again(n: int, exc: BaseException) -> None:
        current[0] = reread(svc, current[0])

    done = retry(
        attempt,
        on=(RefundChanged,),
        attempts=MAX_ATTEMPTS,
        exhausted=lambda: ConcurrentModification(f"refund {refund_id} kept changing; read it again"),
        backoff=SHORT,
        on_retry=read_again,
    )
    logger.info("manual refund completed", extra={"refund_id": done.id, "amount_cents": done.amount_cents})
    metrics.add_metric(name="RefundsCompleted", unit="Count", value=1)
    return done


# ---------------------------------------------------------------- Stripe's refund webhooks
def apply_refund_notice(
    svc: Services, actor: Actor, notice: RefundNotice
) -> Literal["refund_updated", "duplicate", "ignored"]:
    """See the module docstring."""
    refund = svc.refund_store.get(notice.invoice_id, notice.refund_id)
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
        return refund_event("invoice.refund_updated", before, after, actor, now, provider_event_id=notice.event_id)

    current = [refund]

    def attempt() -> Literal["refund_updated", "duplicate", "ignored"]:
        read = current[0]
        if not takes_provider_word(read, *word):
            if read.provider_ref == notice.provider_ref and read.status is status:
                return "duplicate"
            if status is RefundStatus.SUCCEEDED and read.provider_ref != notice.provider_ref:
                # money went back on a Stripe refund that is not the attempt we count: a double refund?
                logger.error(
                    "a provider refund of ours succeeded that is not the recorded attempt",
                    extra={"refund_id": read.id, "provider_ref": notice.provider_ref},
                )
                metrics.add_metric(name="RefundsUnrecordedAtProvider", unit="Count", value=1)
            return "ignored"
        changed = with_word(read, word, notice.failure, now)
        with svc.uow() as tx:
            tx.change_refund(read, changed)
            tx.add_events(make_event(read, changed))
        logger.info("refund updated by the provider", extra={"refund_id": read.id, "status": status.value})
        return "refund_updated"

    def read_again(n: int, exc: BaseException) -> None:
        current[0] = reread(svc, current[0])

    return retry(
        attempt,
        on=(RefundChanged,),
        attempts=MAX_ATTEMPTS,
        exhausted=lambda: ConcurrentModification("the refund kept changing; the provider will deliver the event again"),
        backoff=SHORT,
        on_retry=read_again,
    )
