"""One reminder, delivered: shared by the reminder worker's jobs and a manual send (use_cases/reminders),
so that no use case imports another. Not a use case itself.

deliver_reminder — the unit of work of the worker and of a manual send. Claims the ledger entry
  (store: exactly once per invoice and kind, checked against the invoice's status and version in
  the same transaction), gets a payment link per the link policy below, renders the mail, sends it
  with SES, then records `sent` with SES's message id together with the audit event
  `invoice.reminder_sent`, which publishes `reminder.sent` carrying the reminder (not the invoice,
  which a reminder does not change: its version stays, and the worker reads neither it nor its
  lines). A failure after the claim leaves `sending` with the error; it is retried
  once the lease ran out (the queue redelivers; the next run re-enqueues what is left), at most
  `reminder_max_attempts` times, and never once the invoice is paid, void or uncollectible
  (scheduled kinds need `open`; a retry that finds it closed cancels the entry).

Also here: the wiring the reminder code is given (store, queue, mailer, policy; tests may replace
them through `svc.adapters`) and the shapes of the jobs on the reminder queue.

Payment links. Only a hash of a link's token is stored, so a mail can carry a link only if the link
is issued for it. Overdue-category steps and manual reminders always issue a fresh link, which
revokes the older ones (invoicing.payment_links, audited `invoice.payment_link_issued`): the
overdue notice must carry one. Upcoming and due reminders issue one only when the invoice has no
active link (expired, used or revoked); otherwise they refer to the link sent with the invoice. Which
link is active is read from the header the job carries (Invoice.links_tracked; the claim checks that
it is still the header's link), without a Query of the links; a link is issued from that header too
(payment_links.replace_links with `read`), re-read only if it moved meanwhile. A
token is in the mail only: never in a queue message, a ledger entry, an event or a log line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from invoicing import clock, payment_links
from invoicing.adapters.email import (
    EmailDeliveryFailed,
    EmailNotConfigured,
    EmailSender,
    OutgoingEmail,
    SesEmailSender,
)
from invoicing.adapters.queue import BatchJobQueue
from invoicing.domain.customer import Customer
from invoicing.domain.events import Actor, new_event
from invoicing.domain.invoice import Invoice, InvoiceStatus, LinkState
from invoicing.domain.payments import IssuedLink
from invoicing.domain.reminders import (
    MANUAL_KIND,
    ReminderPolicy,
    ReminderRecord,
    ReminderStep,
    SentReminder,
    local_date,
)
from invoicing.errors import ConcurrentModification, InvalidTransition, InvoiceNotOpen, NotFound
from invoicing.ids import new_id
from invoicing.observability import logger, metrics
from invoicing.services import Services
from invoicing.store.reminders import ReminderStore
from invoicing.store.uow import Skipped
from invoicing.store.writes.reminders import ClaimRequest, InvoiceChanged, ReminderTaken

REMINDER_ACTOR = Actor.system("reminders")
CLAIM_ATTEMPTS = 3
JOB_REMINDER = "reminder"
JOB_DUNNING = "dunning"


# ---------------------------------------------------------------- wiring (tests may replace these)
def reminder_store(svc: Services) -> ReminderStore:
    store = svc.adapters.get("reminder_store")
    if store is None:
        store = svc.adapters.setdefault("reminder_store", ReminderStore(svc.repo))
    return store


def reminder_queue(svc: Services) -> BatchJobQueue:
    queue = svc.adapters.get("reminder_queue")
    if queue is None:
        queue = svc.adapters.setdefault(
            "reminder_queue", BatchJobQueue(svc.settings.reminder_queue_url, svc.settings.region)
        )
    return queue


def mailer(svc: Services) -> EmailSender:
    sender = svc.adapters.get("mailer")
    if sender is None:
        s = svc.settings
        sender = svc.adapters.setdefault(
            "mailer", SesEmailSender(s.reminder_from_email or s.seller_email, s.region, s.reminder_reply_to)
        )
    return sender


def category_of(kind: str, policy: ReminderPolicy) -> str:
    if kind == MANUAL_KIND:
        return "manual"
    step = policy.step(kind)
    return step.category if step else "overdue"  # a kind removed from the policy since it was claimed


# ---------------------------------------------------------------- jobs on the queue
@dataclass(frozen=True)
class MailContext:
    """What a reminder mail shows, read by the run (or re-read by the worker). `version` ties it to
    the invoice: the claim fails if the invoice changed since, and the worker reads it again."""

    invoice_id: str
    customer_id: str
    version: int
    status: str
    number: str
    currency: str
    amount_due_cents: int
    due_date: str
    pdf_s3_key: str | None
    email: str
    name: str
    locale: str
    timezone: str
    # the invoice's payment link as its header names it (Invoice.links_tracked); jobs queued before
    # these were kept carry none: the worker reads the links then
    links_tracked: bool = False
    link_id: str | None = None
    link_expires_at: str | None = None

    @classmethod
    def of(cls, invoice: Invoice, customer: Customer) -> MailContext:
        return cls(
            invoice_id=invoice.id,
            customer_id=invoice.customer_id,
            version=invoice.version,
            status=invoice.status.value,
            number=invoice.invoice_number or invoice.id,
            currency=invoice.currency,
            amount_due_cents=invoice.amount_remaining_cents,
            due_date=invoice.due_date.isoformat() if invoice.due_date else "",
            pdf_s3_key=invoice.pdf_s3_key,
            email=customer.email,
            name=customer.name,
            locale=customer.locale,
            timezone=customer.timezone,
            links_tracked=invoice.links_tracked,
            link_id=invoice.active_link_id,
            link_expires_at=invoice.active_link_expires_at,
        )

    def link_state(self) -> LinkState:
        """The header's payment link as read with this context."""
        return LinkState(
            invoice_id=self.invoice_id,
            status=InvoiceStatus(self.status),
            due_date=date.fromisoformat(self.due_date) if self.due_date else None,
            links_tracked=self.links_tracked,
            link_id=self.link_id,
            link_expires_at=self.link_expires_at,
        )


def reminder_job(invoice: Invoice, customer: Customer, step: ReminderStep) -> dict[str, Any]:
    assert invoice.due_date is not None
    return {
        "job": JOB_REMINDER,
        "invoice_id": invoice.id,
        "key": step.kind,
        "kind": step.kind,
        "trigger": "schedule",
        "step_date": step.day(invoice.due_date).isoformat(),
        "context": asdict(MailContext.of(invoice, customer)),
    }


def retry_job(record: ReminderRecord) -> dict[str, Any]:
    """No context: the worker reads the invoice and the customer as they are now."""
    return {
        "job": JOB_REMINDER,
        "invoice_id": record.invoice_id,
        "key": record.key,
        "kind": record.kind,
        "trigger": record.trigger,
        "actor": record.actor,
        "step_date": record.step_date,
    }


def dunning_job(invoice: Invoice, dunning_day: date) -> dict[str, Any]:
    return {"job": JOB_DUNNING, "invoice_id": invoice.id, "dunning_day": dunning_day.isoformat()}


# ---------------------------------------------------------------- one reminder
@dataclass(frozen=True)
class ReminderRequest:
    invoice_id: str
    key: str
    kind: str
    category: str
    trigger: str  # schedule | manual
    actor: Actor
    allowed: frozenset[InvoiceStatus]
    step_date: str | None = None


@dataclass(frozen=True)
class Delivery:
    outcome: str  # sent | already_handled | skipped_closed | skipped_missing
    record: ReminderRecord | None = None


def _read_context(svc: Services, invoice_id: str) -> MailContext:
    invoice = svc.repo.get_invoice_header(invoice_id)
    return MailContext.of(invoice, svc.repo.get_customer(invoice.customer_id))


def _has_active_link(svc: Services, context: MailContext, now: str) -> bool:
    """From the header the context was read from (the claim checked it is still the header's link);
    an invoice that does not track its links has them read."""
    active = context.link_state().link_active(now)
    if active is not None:
        return active
    return any(link.is_active(now) for link in svc.payment_store.list_links(context.invoice_id))


def _payment_link(svc: Services, req: ReminderRequest, context: MailContext) -> tuple[IssuedLink | None, bool]:
    """(the link to put in the mail, whether it replaces earlier links). See the module docstring.
    The first attempt to issue one works from the header the context carries (the claim checked it)."""
    actor = req.actor if req.trigger == "manual" else REMINDER_ACTOR
    read = context.link_state()
    if req.category in ("overdue", "manual"):
        return payment_links.replace_links(svc, actor, req.invoice_id, issue=True, read=read)[0], True
    if _has_active_link(svc, context, clock.iso(clock.now())):
        return None, False
    return payment_links.replace_links(svc, actor, req.invoice_id, issue=True, read=read)[0], False


def _cancel(svc: Services, invoice_id: str, key: str, now: str, claim_id: str | None = None) -> None:
    try:
        with svc.uow() as tx:
            tx.reminder_cancelled(invoice_id, key, now, claim_id=claim_id)
    except Skipped:
        pass  # nothing of ours (or expired) to drop


def deliver_reminder(svc: Services, req: ReminderRequest, context: MailContext | None = None) -> Delivery:
    """See the module docstring. Raises on a failed send (the caller retries or reports it)."""
    store = reminder_store(svc)
    settings = svc.settings
    now_dt = clock.now()
    now = clock.iso(now_dt)
    claim_id = new_id("rclaim")
    claim = None
    for _ in range(CLAIM_ATTEMPTS):
        if context is None:
            try:
                context = _read_context(svc, req.invoice_id)
            except NotFound:
                return Delivery("skipped_missing")
        if InvoiceStatus(context.status) not in req.allowed:
            _cancel(svc, req.invoice_id, req.key, now)  # an expired claim of a closed invoice leaves the retry list
            return Delivery("skipped_closed")
        try:
            with svc.uow() as tx:
                claim = tx.claim_reminder(
                    ClaimRequest(
                        invoice_id=req.invoice_id,
                        key=req.key,
                        kind=req.kind,
                        allowed=req.allowed,
                        expected_version=context.version,
                        expected_link=(context.link_id or "") if context.links_tracked else None,
                        claim_id=claim_id,
                        now=now,
                        lease_until=clock.iso(now_dt + timedelta(seconds=settings.reminder_lease_seconds)),
                        trigger=req.trigger,
                        actor=req.actor.principal,
                        step_date=req.step_date,
                    )
                )
        except InvoiceChanged:
            context = None  # paid, voided or changed meanwhile: read it again and decide again
            continue
        except ReminderTaken:
            return Delivery("already_handled")
        break
    if claim is None or context is None:
        raise ConcurrentModification(f"invoice {req.invoice_id} kept changing; the reminder is retried")
    try:
        link, replaces = _payment_link(svc, req, context)
    except (InvalidTransition, InvoiceNotOpen):
        _cancel(svc, req.invoice_id, req.key, now, claim_id=claim.claim_id)
        return Delivery("skipped_closed")
    pdf_url, pdf_url_days = None, 0
    if context.pdf_s3_key and link is not None:
        # behind the mail's own pay link: it lives as long as that link, also once the invoice is paid
        pdf_url = payment_links.pdf_url_for_link(link.url)
    elif context.pdf_s3_key:
        # no new link in this mail (the customer's earlier one is still active): a pre-signed URL,
        # which dies with the signing role's session even if its expiry is later, hence "up to"
        pdf_url = svc.documents.presigned_get(context.pdf_s3_key, settings.reminder_pdf_url_ttl_seconds)
        pdf_url_days = max(1, settings.reminder_pdf_url_ttl_seconds // 86400)
    from invoicing.emails import ReminderMail, render_reminder  # Jinja2 + Babel: not on the API's import path

    rendered = render_reminder(
        ReminderMail(
            kind=req.kind,
            category=req.category,
            locale=context.locale,
            customer_name=context.name,
            invoice_number=context.number,
            currency=context.currency,
            amount_due_cents=context.amount_due_cents,
            due_date=date.fromisoformat(context.due_date),
            today=local_date(now_dt, context.timezone),
            seller_name=settings.seller_name,
            seller_email=settings.seller_email,
            seller_locale=settings.seller_locale,
            payment_url=link.url if link else None,
            payment_link_replaces_earlier=replaces,
            pdf_url=pdf_url,
            pdf_url_days=pdf_url_days,
        )
    )
    try:
        message_id = mailer(svc).send(
            OutgoingEmail(to=context.email, subject=rendered.subject, text=rendered.text, html=rendered.html)
        )
    except (EmailDeliveryFailed, EmailNotConfigured) as exc:
        reason = exc.reason if isinstance(exc, EmailDeliveryFailed) else exc.code
        current = store.get(req.invoice_id, req.key)
        attempts = current.attempts if current else 1
        terminal = req.trigger == "manual" or attempts >= settings.reminder_max_attempts
        try:
            with svc.uow() as tx:
                tx.reminder_failed(claim, error=reason, terminal=terminal)
        except Skipped:
            pass  # the lease ran out and another attempt holds it now: its outcome counts
        metrics.add_metric(name="ReminderSendFailures", unit="Count", value=1)
        logger.warning(
            "reminder not sent",
            extra={
                "invoice_id": req.invoice_id,
                "reminder_kind": req.kind,
                "reason": reason,
                "attempts": attempts,
                "given_up": terminal,
            },
        )
        raise
    sent = SentReminder(
        invoice_id=req.invoice_id,
        key=req.key,
        kind=req.kind,
        trigger=req.trigger,
        actor=req.actor.principal,
        claimed_at=now,
        sent_at=clock.iso(clock.now()),
        recipient=context.email,
        message_id=message_id,
        step_date=req.step_date,
        payment_link_id=link.link.id if link else None,
    )
    event = new_event(
        req.invoice_id,
        "invoice.reminder_sent",
        req.actor,
        sent.sent_at,
        data={
            "kind": req.kind,
            "reminder_key": req.key,
            "reminder_id": sent.id,
            "trigger": req.trigger,
            "message_id": message_id,
            **({"payment_link_id": link.link.id} if link else {}),
        },
    )
    try:
        with svc.uow() as tx:  # the ledger and the audit event; `reminder.sent` carries `sent`
            tx.reminder_sent(claim, sent)
            tx.add_events(event)
    except Skipped:
        # the lease ran out during this attempt and another one took over: it may send again
        metrics.add_metric(name="ReminderLeaseOverruns", unit="Count", value=1)
        logger.warning("reminder sent after its lease ran out", extra={"invoice_id": req.invoice_id})
    metrics.add_metric(name="RemindersSent", unit="Count", value=1)
    logger.info(
        "reminder sent",
        extra={
            "invoice_id": req.invoice_id,
            "reminder_kind": req.kind,
            "trigger": req.trigger,
            "message_id": message_id,
            "payment_link_issued": bool(link),
        },
    )
    return Delivery("sent", store.get(req.invoice_id, req.key) if req.trigger == "manual" else None)
