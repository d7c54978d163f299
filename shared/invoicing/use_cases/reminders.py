"""Payment reminders and dunning.

run_reminder_schedule — the daily run (EventBridge Scheduler at ReminderHour in ReminderTimezone).
  Reads the run cursor, queries the sparse due index for the entries whose instant has come (each
  open invoice sits under the start of its next action day in its customer's zone; one Query per
  shard of each UTC date since the previous run, domain.reminders.query_days; never a Scan),
  batch-reads the customers of the invoices found (zone, preference, address), decides per invoice
  (domain.reminders.decide) and puts one job per invoice on the reminder queue: one reminder kind, or
  dunning. Then it moves each entry it decided on to the invoice's next action
  (domain.reminders.after_decision; conditioned on the entry it read and on the invoice being open).
  It also re-enqueues claims whose lease ran out (a send that crashed, or kept failing). The cursor is
  written at the very end: a run that failed half-way is done again by the next one (the entries it
  did not move are read again), and the ledger drops the duplicates.
deliver_reminder (invoicing/reminder_delivery.py) — one reminder: claim, link, render, send, record;
  shared by the worker and a manual send.
apply_dunning — the worker: on its dunning day, an invoice still open is marked uncollectible
  (lifecycle.mark_uncollectible, actor `system:dunning`, audit event with the rule). DUNNING_ENABLED
  switches it off.
send_manual_reminder — POST /invoices/{id}/reminders. Who: invoices:write. Open or uncollectible
  invoices only (409 otherwise). Kind `manual`, any number of times (each has its own ledger key),
  sent now, always with a fresh payment link, also when the customer turned scheduled reminders off
  (a person decided to send it). SES down: 503 and the entry is `failed`; nothing is sent behind the
  caller's back later.
list_reminders — GET /invoices/{id}/reminders. Who: invoices:read.

"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from invoicing import clock
from invoicing.adapters.queue import BatchJobQueue
from invoicing.domain.customer import Customer
from invoicing.domain.events import Actor
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.domain.invoice import mark_uncollectible as uncollectible
from invoicing.domain.reminders import (
    MANUAL_KIND,
    Decision,
    ReminderPolicy,
    ReminderRecord,
    after_decision,
    decide,
    local_date,
    query_days,
)
from invoicing.errors import Conflict, InvalidTransition, InvoiceNotOpen, NotFound
from invoicing.ids import new_id
from invoicing.observability import logger, metrics
from invoicing.reminder_delivery import (
    JOB_DUNNING,
    JOB_REMINDER,
    REMINDER_ACTOR,
    MailContext,
    ReminderRequest,
    category_of,
    deliver_reminder,
    dunning_job,
    reminder_job,
    reminder_queue,
    reminder_store,
    retry_job,
)
from invoicing.reminder_policy import reminder_policy
from invoicing.services import Services
from invoicing.store.uow import Skipped

DUNNING_ACTOR = Actor.system("dunning")
SCHEDULED_STATUSES = frozenset({InvoiceStatus.OPEN})
MANUAL_STATUSES = frozenset({InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE})


# ---------------------------------------------------------------- the daily run
@dataclass
class RunSummary:
    run_id: str
    ran_at: str
    first_day: str
    last_day: str
    due_dates_queried: int
    invoices_seen: int = 0
    reminders_enqueued: int = 0
    dunning_enqueued: int = 0
    retries_enqueued: int = 0
    rescheduled: int = 0
    decisions: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Move:
    invoice_id: str
    read_sk: str
    at: datetime | None


def run_reminder_schedule(svc: Services) -> RunSummary:
    """See the module docstring."""
    now_dt = clock.now()
    now = clock.iso(now_dt)
    policy = reminder_policy(svc.settings)
    store = reminder_store(svc)
    queue = reminder_queue(svc)
    previous = store.get_run_cursor()
    first_run = previous is None or previous > now_dt  # a cursor from the future (a clock gone wrong) counts as none
    dates = query_days(now_dt, previous, store.oldest_open_created_at() if first_run else None)
    summary = RunSummary(
        run_id=new_id("rrun"),
        ran_at=now,
        first_day=dates[0].isoformat(),
        last_day=dates[-1].isoformat(),
        due_dates_queried=len(dates),
    )
    logger.append_keys(reminder_run_id=summary.run_id)
    customers: dict[str, Customer] = {}
    unknown: set[str] = set()
    decisions: Counter[str] = Counter()
    jobs: list[dict[str, Any]] = []
    moves: list[_Move] = []
    for day in dates:
        found = list(store.open_invoices_due(day, now))
        wanted = {inv.customer_id for inv, _ in found} - customers.keys() - unknown
        if wanted:
            got = store.get_customers(wanted)
            customers.update(got)
            unknown |= wanted - got.keys()
        for invoice, entry in found:
            if invoice.due_date is None:  # finalized invoices always have one
                continue
            summary.invoices_seen += 1
            customer = customers.get(invoice.customer_id)
            zone = customer.timezone if customer else "UTC"
            issued_at = clock.parse_iso(invoice.finalized_at) if invoice.finalized_at else None
            decision = decide(
                policy,
                due_date=invoice.due_date,
                issued_at=issued_at,
                now=now_dt,
                timezone=zone,
                reminders_enabled=bool(customer and customer.reminders_enabled),
            )
            if decision.today is not None and decision.today < local_date(entry.at, zone):
                # read in the hour a DST change repeats the day before: its day has not come after all
                decision = Decision(today=decision.today, reason="not_yet")
            if decision.dun:
                jobs.append(dunning_job(invoice, policy.dunning_day(invoice.due_date)))
                summary.dunning_enqueued += 1
            elif decision.step is not None and customer is not None:
                jobs.append(reminder_job(invoice, customer, decision.step))
                summary.reminders_enqueued += 1
            decisions[decision.reason if customer else "customer_missing"] += 1
            issued_on = local_date(issued_at, zone) if issued_at else None
            moves.append(
                _Move(invoice.id, entry.sk, after_decision(policy, decision, invoice.due_date, issued_on, zone))
            )
        if len(jobs) >= 100 or len(moves) >= 100:
            _flush(svc, queue, jobs, moves, summary)
    for record in store.expired_claims(now):
        jobs.append(retry_job(record))
        summary.retries_enqueued += 1
    _flush(svc, queue, jobs, moves, summary)
    store.save_run_cursor(now, summary.run_id)
    summary.decisions = dict(decisions)
    metrics.add_metric(name="RemindersEnqueued", unit="Count", value=summary.reminders_enqueued)
    metrics.add_metric(name="DunningEnqueued", unit="Count", value=summary.dunning_enqueued)
    metrics.add_metric(name="ReminderRetriesEnqueued", unit="Count", value=summary.retries_enqueued)
    logger.info("reminder run done", extra={k: v for k, v in summary.as_dict().items() if k != "decisions"})
    return summary


def _flush(
    svc: Services, queue: BatchJobQueue, jobs: list[dict[str, Any]], moves: list[_Move], summary: RunSummary
) -> None:
    """The jobs first, then the moves: a run that stops between the two leaves the entries where they
    were, so the next run reads them again (and the ledger drops the repeated reminders)."""
    queue.send_batch(jobs)
    jobs.clear()
    for move in moves:
        try:
            with svc.uow() as tx:
                tx.reschedule_reminders(move.invoice_id, move.read_sk, move.at)
            summary.rescheduled += 1
        except Skipped:
            pass  # paid, voided or written off meanwhile (off the index), or moved by another run
    moves.clear()


# ---------------------------------------------------------------- dunning
def apply_dunning(svc: Services, invoice_id: str, dunning_day: str) -> str:
    """See the module docstring. Returns marked_uncollectible | skipped_closed | skipped_missing | disabled."""
    if not svc.settings.dunning_enabled:
        return "disabled"
    policy = reminder_policy(svc.settings)
    try:
        invoice = svc.repo.get_invoice(invoice_id)
        after, event = uncollectible(
            invoice,
            DUNNING_ACTOR,
            clock.iso(clock.now()),
            data={
                "reason": "dunning",
                "dunning_day": dunning_day,
                "rule": f"last reminder step +{policy.last_offset} days, then {policy.dunning_grace_days} days grace",
            },
        )
        with svc.uow() as tx:
            tx.transition(invoice, after)
            tx.add_events(event)
    except NotFound:
        return "skipped_missing"
    except (InvalidTransition, InvoiceNotOpen):
        return "skipped_closed"  # paid, voided or written off meanwhile
    metrics.add_metric(name="InvoicesDunned", unit="Count", value=1)
    logger.info("invoice marked uncollectible by dunning", extra={"invoice_id": invoice_id})
    return "marked_uncollectible"


# ---------------------------------------------------------------- the worker's entry point
def process_reminder_job(svc: Services, job: dict[str, Any]) -> str:
    """One queue message. Returns the outcome; raises to have the message retried."""
    kind = job.get("job")
    invoice_id = str(job["invoice_id"])
    if kind == JOB_DUNNING:
        return apply_dunning(svc, invoice_id, str(job.get("dunning_day", "")))
    if kind != JOB_REMINDER:
        raise ValueError(f"unknown reminder job {kind!r}")
    reminder_kind = str(job["kind"])
    manual = job.get("trigger") == "manual"
    request = ReminderRequest(
        invoice_id=invoice_id,
        key=str(job.get("key") or reminder_kind),
        kind=reminder_kind,
        category=category_of(reminder_kind, reminder_policy(svc.settings)),
        trigger="manual" if manual else "schedule",
        actor=Actor(principal=str(job["actor"])) if job.get("actor") else REMINDER_ACTOR,
        allowed=MANUAL_STATUSES if manual else SCHEDULED_STATUSES,
        step_date=job.get("step_date"),
    )
    context = MailContext(**job["context"]) if job.get("context") else None
    return deliver_reminder(svc, request, context).outcome


# ---------------------------------------------------------------- the API
def send_manual_reminder(svc: Services, actor: Actor, invoice_id: str) -> ReminderRecord:
    """See the module docstring."""
    invoice = svc.repo.get_invoice_header(invoice_id)
    if invoice.status not in MANUAL_STATUSES:
        raise _not_remindable(invoice)
    context = MailContext.of(invoice, svc.repo.get_customer(invoice.customer_id))
    request = ReminderRequest(
        invoice_id=invoice_id,
        key=f"{MANUAL_KIND}#{new_id('rem')}",
        kind=MANUAL_KIND,
        category="manual",
        trigger="manual",
        actor=actor,
        allowed=MANUAL_STATUSES,
    )
    delivery = deliver_reminder(svc, request, context)
    if delivery.outcome != "sent" or delivery.record is None:
        raise _not_remindable(svc.repo.get_invoice_header(invoice_id))
    return delivery.record


def _not_remindable(invoice: Invoice) -> Conflict:
    return Conflict(
        f"invoice {invoice.id} is {invoice.status.value}; only open and uncollectible invoices get reminders",
        code="invoice_not_remindable",
    )


def list_reminders(svc: Services, invoice_id: str) -> list[ReminderRecord]:
    svc.repo.get_invoice_header(invoice_id)  # 404 for an unknown invoice
    return reminder_store(svc).list_for_invoice(invoice_id)


def reminder_dates(policy: ReminderPolicy, due_date: date) -> dict[str, date]:
    """The day of each step and of dunning for a due date (for docs, tests and support)."""
    out = {step.kind: step.day(due_date) for step in policy.steps}
    if policy.dunning_enabled:
        out["dunning"] = policy.dunning_day(due_date)
    return out
