"""finalize_invoice — draft -> open, with the next number INV-{YYYY}-{NNNNN}.

Who: invoices:write. Which states: drafts only (409 `invoice_not_draft`), with at least one line and
a total not below zero (409 `invoice_has_no_lines` / `invoice_total_below_zero`). For a customer who
receives e-invoices (`einvoice_format` ubl, cii or xrechnung), the issued invoice must be a valid
e-invoice in that format: else 422 `einvoice_terms_missing`, details = every missing business term.
Failures before the transaction (tax service down, no exchange rate, negative total, e-invoice terms)
change nothing.

Load, in two calls: the draft with its lines (a Query), then one strongly consistent BatchGetItem of
the customer, its counter, the tax rates and the USD rate (locked for good). Tax for every line is
computed from those rates (frozen from then on; an external tax service is asked instead). Decide (domain/finalization.py): totals, the number, the balance to
apply, settled at once when nothing is due, whether a payment link is needed. Write, as ONE
TransactWriteItems (store/uow.py):

    claim_number   SEQ#INV#{yyyy} = :n -> n + 1   (or created, for the first number of the year)
    finalize       the header, conditioned on status = draft AND version = :v; an open invoice goes
                   on the due index under its first reminder action (its customer's zone)
    add_events     invoice.finalized [, invoice.customer_balance_applied] [, invoice.paid]
    change_balance the customer's balance = :old -> new, and its ledger entry   (balance applied)
    add_link       the first payment link                                      (something is due)
    use_rates      each rate's first use: used = true, conditioned on its terms (an edit meanwhile
                   cancels the transaction and finalize reads again)

A lost race on the number alone reads the counter again and commits at once (nothing else is stale);
anything else that moved (a draft edit, the balance, a transaction conflict) starts again from the
reads with jittered backoff, at most `finalize_max_attempts` times. After the commit the PDF job is
queued (a failure there is repaired by the scheduled job); the response is the invoice as committed,
built in memory. The link's URL, holding the token, is
returned once and never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from invoicing import clock
from invoicing.adapters.public_url import pay_url
from invoicing.adapters.render_jobs import enqueue_invoice_render
from invoicing.adapters.tax import TaxRateService, taxes_from_rates
from invoicing.domain import money
from invoicing.domain.customer import Customer
from invoicing.domain.einvoicing import finalize_problems
from invoicing.domain.events import Actor
from invoicing.domain.finalization import FinalizePlan, UsdValue, freeze, plan
from invoicing.domain.invoice import Invoice, LineTax, compute_totals, ensure_finalizable
from invoicing.domain.payments import IssuedLink, new_link
from invoicing.domain.reminders import local_date, next_action_at
from invoicing.einvoice.inputs import einvoice_format, einvoice_inputs, terms_missing
from invoicing.errors import ConcurrentModification, Conflict, NumberTaken, SequenceConflict
from invoicing.observability import logger, metrics
from invoicing.reminder_policy import reminder_policy
from invoicing.services import Services
from invoicing.store.retry import LONG, NUMBER, retry
from invoicing.store.tax_rates import ExchangeRate, TaxRate
from invoicing.store.uow import TRANSACTION_LIMIT
from invoicing.store.writes.rates import RatesMoved

# numbers taken by other finalizations of the same customer before one attempt goes back to the
# reads; each one means another invoice got its number, so progress is never lost
NUMBER_ATTEMPTS = 25
# rates marked used inside the finalization itself; its other items are at most 11 (number, header,
# 3 events and their 3 outbox records, balance and its ledger entry, link)
FIRST_USES_IN_FINALIZE = 40


@dataclass(frozen=True)
class Finalized:
    invoice: Invoice
    link: IssuedLink | None  # None when nothing is due


def finalize_invoice(svc: Services, actor: Actor, invoice_id: str) -> Finalized:
    """See the module docstring."""
    attempts = svc.settings.finalize_max_attempts

    def exhausted() -> Exception:
        return ConcurrentModification(f"could not finalize invoice {invoice_id} after {attempts} attempts; retry")

    def on_retry(attempt: int, exc: BaseException) -> None:
        if not isinstance(exc, RatesMoved):
            metrics.add_metric(name="FinalizeRetries", unit="Count", value=1)
            logger.info("finalize retry", extra={"invoice_id": invoice_id, "attempt": attempt + 1})

    invoice, link = retry(
        lambda: _attempt(svc, actor, invoice_id),
        on=(SequenceConflict, ConcurrentModification, RatesMoved),
        attempts=attempts,
        exhausted=exhausted,
        backoff=LONG,
        on_retry=on_retry,
    )
    logger.info(
        "invoice finalized",
        extra={"invoice_id": invoice.id, "customer_id": invoice.customer_id, "invoice_number": invoice.invoice_number},
    )
    metrics.add_metric(name="InvoicesFinalized", unit="Count", value=1)
    enqueue_invoice_render(svc.render_queue, invoice)  # after the commit; a failure is repaired later
    return Finalized(invoice, link)


def _attempt(svc: Services, actor: Actor, invoice_id: str) -> tuple[Invoice, IssuedLink | None]:
    """One pass from the reads: the draft (a Query), then everything else it needs (one consistent
    BatchGetItem), then one TransactWriteItems. Everything but the number is decided once here."""
    draft = svc.repo.get_invoice(invoice_id)
    draft.require_draft()
    now = clock.now()
    lines = list(draft.lines)
    by_rates = isinstance(svc.tax, TaxRateService)  # our own rate records: read in the same batch
    inputs = svc.repo.finalize_inputs(
        draft.customer_id,
        now.year,
        [line.tax_rate_id for line in lines if line.tax_rate_id] if by_rates else [],
        None if draft.currency == "USD" else draft.currency,
    )
    customer = inputs.customer
    if not lines:
        taxes: dict[str, LineTax] = {}
    elif by_rates:
        taxes = taxes_from_rates(lines, inputs.tax_rates)
    else:
        taxes = svc.tax.calculate(draft, lines, customer)
    totals = compute_totals(lines, taxes)
    ensure_finalizable(draft, totals)
    usd = _usd_value(draft.currency, totals.total_cents, inputs.exchange_rate)
    frozen = freeze(draft, customer, taxes, totals, usd, now, clock.iso(now))
    assert frozen.due_date is not None
    # where the reminder run first looks at it: its first step (or dunning) after the issue day
    remind_at = next_action_at(
        reminder_policy(svc.settings),
        frozen.due_date,
        after=local_date(now, customer.timezone),
        timezone=customer.timezone,
    )
    _check_einvoice(svc, actor, draft, frozen, customer, now.year, inputs.tax_rates if by_rates else {})
    used = (
        [inputs.tax_rates[i] for i in sorted({t.tax_rate_id for t in taxes.values() if t.tax_rate_id})]
        if by_rates
        else []
    )
    if sum(not r.used for r in used) > FIRST_USES_IN_FINALIZE:
        # rare (dozens of rates never used before): frozen first, in transactions of their own, so the
        # finalization stays within DynamoDB's 100 items; a rate frozen early by a finalization that
        # then fails is only frozen early, as a used rate must be anyway
        fresh = [r for r in used if not r.used]
        for start in range(0, len(fresh), TRANSACTION_LIMIT):
            with svc.uow() as tx:
                tx.use_rates(fresh[start : start + TRANSACTION_LIMIT])
        used = []
    next_number = [inputs.next_number]

    def number_and_commit() -> tuple[Invoice, IssuedLink | None]:
        return _commit(svc, actor, plan(draft, frozen, customer, now.year, next_number[0], actor), used, remind_at)

    def on_number_taken(attempt: int, exc: BaseException) -> None:
        metrics.add_metric(name="FinalizeNumberRetries", unit="Count", value=1)
        next_number[0] = svc.repo.get_sequence(draft.customer_id, "INV", now.year)

    return retry(
        number_and_commit,
        on=(NumberTaken,),
        attempts=NUMBER_ATTEMPTS,
        exhausted=lambda: SequenceConflict(draft.customer_id),
        backoff=NUMBER,
        on_retry=on_number_taken,
    )


def _commit(
    svc: Services, actor: Actor, p: FinalizePlan, used: list[TaxRate], remind_at: datetime | None
) -> tuple[Invoice, IssuedLink | None]:
    """The plan's one transaction; returns the invoice as committed (the plan's own, exactly what the
    transaction wrote), so the response needs no read after the write."""
    issued = None
    invoice = p.invoice
    if p.needs_link:
        link, token = new_link(
            invoice.id, invoice.due_date, actor.principal, svc.settings.payment_link_ttl_days_after_due, clock.now()
        )
        issued = IssuedLink(link, pay_url(svc.settings.public_base_url, svc.settings.public_base_url_param, token))
        invoice = replace(invoice, active_link_id=link.id, active_link_expires_at=link.expires_at)
    with svc.uow() as tx:
        tx.claim_number(p.claim)
        tx.finalize(p.draft, invoice, remind_at)
        tx.use_rates(used)
        tx.add_events(*p.events)
        if p.balance_change is not None:
            tx.change_balance(p.balance_change)
        if issued is not None:
            tx.add_link(issued.link)
    return invoice, issued


def _check_einvoice(
    svc: Services,
    actor: Actor,
    draft: Invoice,
    frozen: Invoice,
    customer: Customer,
    year: int,
    rates: dict[str, TaxRate],
) -> None:
    """For a customer who receives e-invoices, the invoice as it would be issued must be a valid
    e-invoice in its format (domain/einvoicing.py), or finalize refuses with 422 and every missing
    term. Before any write (the rates' `used` flag included): a refusal changes nothing. The number
    is not claimed yet, so the check sees a placeholder of the same shape; no rule reads its value."""
    syntax = einvoice_format(customer)
    if syntax is None:
        return
    preview = plan(draft, frozen, customer, year, 1, actor).invoice  # balance applied: BT-113
    problems = finalize_problems(preview, einvoice_inputs(preview, customer, svc.settings, rates, syntax))
    if problems:
        raise terms_missing(syntax, problems)


def _usd_value(currency: str, total_cents: int, rate: ExchangeRate | None) -> UsdValue:
    if currency == "USD":
        return UsdValue(total_cents, Decimal("1"), "identity", clock.iso(clock.now()))
    if rate is None:
        raise Conflict(
            f"no exchange rate to USD for {currency}; PUT /exchange-rates/{currency} first",
            code="exchange_rate_missing",
        )
    return UsdValue(
        money.to_usd_cents(total_cents, currency, rate.rate_to_usd), rate.rate_to_usd, rate.source, rate.as_of
    )
