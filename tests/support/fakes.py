"""In-memory fakes for use-case tests without moto: a table in a dict, a unit of work that checks the
same conditions as the real one and records what it committed, and the adapters a use case calls.

    svc = fake_services()
    svc.memory.put_customer(customer); svc.memory.put_invoice(draft)
    finalize_invoice(svc, actor, draft.id)
    svc.memory.commits[-1]   # [("claim_number", NumberClaim(...)), ("finalize", ...), ...]

`svc.memory.lose_next(error)` makes the next commit fail with `error` before it writes anything, as
a race lost to another writer would.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any

from invoicing.domain.balance import BalanceChange
from invoicing.domain.credit import CreditNote, CreditSplit
from invoicing.domain.customer import Customer
from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice, InvoiceLine, InvoiceStatus, LineTax, sources_of
from invoicing.domain.numbering import NumberClaim
from invoicing.domain.payments import (
    PAYABLE_STATUSES,
    Payment,
    PaymentAlreadyRecorded,
    PaymentApplication,
    PaymentLink,
)
from invoicing.errors import InvoiceNotDraft, NotFound, NumberTaken, StaleBalance, StaleInvoice
from invoicing.services import Services
from invoicing.settings import Settings
from invoicing.store.repository import FinalizeInputs
from invoicing.store.writes.credit import CreditNoteRace
from invoicing.store.writes.payments import InvoiceNotPayableNow

Write = tuple[str, Any]


@dataclass
class Memory:
    """The table: what is stored, and every unit of work committed so far."""

    invoices: dict[str, Invoice] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    sequences: dict[tuple[str, str, int], int] = field(default_factory=dict)
    events: list[InvoiceEvent] = field(default_factory=list)
    billing_run_keys: dict[str, str] = field(default_factory=dict)  # billing-run key -> invoice id
    links: list[PaymentLink] = field(default_factory=list)
    balance_changes: list[BalanceChange] = field(default_factory=list)
    payments: dict[str, Payment] = field(default_factory=dict)
    notes: dict[str, CreditNote] = field(default_factory=dict)
    billing_runs: dict[str, Any] = field(default_factory=dict)  # run id -> BillingRun
    commits: list[list[Write]] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    remind_at: dict[str, datetime | None] = field(default_factory=dict)  # the due index: invoice id -> instant
    _losses: list[Exception] = field(default_factory=list)

    def put_customer(self, customer: Customer) -> Customer:
        self.customers[customer.id] = customer
        return customer

    def put_invoice(self, invoice: Invoice) -> Invoice:
        self.invoices[invoice.id] = invoice
        return invoice

    def lose_next(self, *errors: Exception) -> None:
        self._losses.extend(errors)

    def events_of(self, invoice_id: str) -> list[str]:
        return [e.type for e in self.events if e.invoice_id == invoice_id]


class FakeRepository:
    """The reads the use cases make, from memory."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    def get_invoice(self, invoice_id: str, *, consistent: bool = True) -> Invoice:
        self.memory.reads.append(f"invoice {invoice_id}")
        try:
            return self.memory.invoices[invoice_id]
        except KeyError:
            raise NotFound(f"invoice {invoice_id} not found", code="invoice_not_found") from None

    get_invoice_header = get_invoice

    def get_customer(self, customer_id: str) -> Customer:
        self.memory.reads.append(f"customer {customer_id}")
        try:
            return self.memory.customers[customer_id]
        except KeyError:
            raise NotFound(f"customer {customer_id} not found", code="customer_not_found") from None

    def finalize_inputs(
        self, customer_id: str, year: int, tax_rate_ids: list[str], currency: str | None
    ) -> FinalizeInputs:
        self.memory.reads.append(f"finalize inputs {customer_id}")
        try:
            customer = self.memory.customers[customer_id]
        except KeyError:
            raise NotFound(f"customer {customer_id} not found", code="customer_not_found") from None
        return FinalizeInputs(customer, self.memory.sequences.get((customer_id, "INV", year), 1), {}, None)

    def get_sequence(self, customer_id: str, kind: str, year: int) -> int:
        self.memory.reads.append(f"sequence {customer_id}")
        return self.memory.sequences.get((customer_id, kind, year), 1)

    def get_billing_run_invoice_id(self, key: str) -> str | None:
        return self.memory.billing_run_keys.get(key)

    def list_events(self, invoice_id: str) -> list[InvoiceEvent]:
        return [e for e in self.memory.events if e.invoice_id == invoice_id]

    def draft_conflict(self, invoice_id: str) -> Exception:
        current = self.get_invoice(invoice_id)
        if not current.is_draft:
            return InvoiceNotDraft(f"invoice {invoice_id} is {current.status.value}; only drafts can be changed")
        return StaleInvoice(f"invoice {invoice_id} changed meanwhile; retry")

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.memory, self)


class FakeUnitOfWork:
    """The typed writes of store/uow.py, checked against memory and applied all together or not at
    all, with the same domain errors for the same failed conditions."""

    def __init__(self, memory: Memory, repo: FakeRepository) -> None:
        self.memory = memory
        self.repo = repo
        self.writes: list[Write] = []
        self.done = False

    def __enter__(self) -> FakeUnitOfWork:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None and not self.done:
            self.commit()

    # -- the typed writes the use cases under test make
    def claim_number(self, claim: NumberClaim, error: type[Exception] | None = None) -> None:
        self.writes.append(("claim_number", (claim, error)))

    def finalize(self, draft: Invoice, finalized: Invoice, remind_at: datetime | None = None) -> None:
        self.writes.append(("finalize", (draft, finalized, remind_at)))

    def transition(self, before: Invoice, after: Invoice) -> None:
        self.writes.append(("transition", (before, after)))

    def use_rates(self, rates: list[Any]) -> None:
        if rates:
            self.writes.append(("use_rates", tuple(rates)))

    def add_draft(self, draft: Invoice) -> None:
        self.writes.append(("add_draft", draft))

    def create_draft(self, draft: Invoice, billing_run_pk: str | None = None) -> None:
        self.writes.append(("add_draft", draft))
        if billing_run_pk:
            self.writes.append(("billing_run_key", (billing_run_pk, draft.id)))

    def add_events(self, *events: InvoiceEvent) -> None:
        self.writes.extend(("add_event", e) for e in events)

    # -- bulk billing runs (recorded, not applied: the use-case tests read the commits)
    def create_billing_run(self, run: Any) -> None:
        self.writes.append(("create_billing_run", run))

    def begin_billing_run_start(self, run_id: str, started_at: str) -> None:
        self.writes.append(("begin_billing_run_start", (run_id, started_at)))

    def undo_billing_run_start(self, run_id: str) -> None:
        self.writes.append(("undo_billing_run_start", run_id))

    def advance_billing_run_start(
        self, run_id: str, *, from_line: int, to_line: int, queued: int, failed: list[Any], done: bool
    ) -> None:
        """Applied to memory.billing_runs (when the test put the run there), on the real condition:
        the run is being read and its checkpoint is still `from_line`."""
        self.writes.append(("advance_billing_run_start", (run_id, from_line, to_line, queued, list(failed), done)))

    def record_billing_run_results(self, run_id: str, results: list[Any]) -> None:
        self.writes.append(("record_billing_run_results", (run_id, results)))

    def change_balance(self, change: BalanceChange, error: type[Exception] = StaleBalance) -> None:
        self.writes.append(("change_balance", (change, error)))

    def add_link(self, link: PaymentLink) -> None:
        self.writes.append(("add_link", link))

    def record_payment(
        self, invoice: Invoice, payment: Payment, application: PaymentApplication, link: Any = None
    ) -> None:
        self.writes.append(("record_payment", (invoice, payment, application)))

    def issue_credit_note(
        self,
        invoice: Invoice,
        note: CreditNote,
        split: CreditSplit,
        *,
        claim: NumberClaim,
        balance: BalanceChange | None = None,
        refunds: tuple[Any, ...] = (),
    ) -> None:
        self.writes.append(("issue_credit_note", (invoice, note, split)))
        self.claim_number(claim, error=CreditNoteRace)
        if balance is not None:
            self.change_balance(balance, error=CreditNoteRace)

    # -- commit
    def commit(self) -> None:
        self.done = True
        if self.memory._losses:
            raise self.memory._losses.pop(0)
        self._check()
        self._apply()
        self.memory.commits.append(list(self.writes))

    def _check(self) -> None:
        """The conditions, in the order the real commit reports them: the invoice (and the payment),
        the balance, the number."""
        for kind, value in self.writes:
            if kind == "finalize":
                draft, *_ = value
                current = self.memory.invoices.get(draft.id)
                if current is None or not current.is_draft or current.version != draft.version:
                    raise self.repo.draft_conflict(draft.id)
            elif kind == "transition":
                before, after = value
                current = self.memory.invoices[before.id]
                if current.status not in sources_of(after.status) or current.version != before.version:
                    raise StaleInvoice(f"invoice {before.id} changed meanwhile; retry")
            elif kind == "record_payment":
                invoice, payment, application = value
                if payment.id in self.memory.payments:
                    raise PaymentAlreadyRecorded(f"payment {payment.id} is already recorded")
                current = self.memory.invoices[invoice.id]
                amount = application.amount_cents
                remaining_ok = (
                    current.amount_remaining_cents == amount
                    if application.becomes_paid
                    else current.amount_remaining_cents > amount
                )
                if current.status not in PAYABLE_STATUSES or not remaining_ok:
                    raise InvoiceNotPayableNow(f"invoice {invoice.id} changed meanwhile")
            elif kind == "issue_credit_note":
                invoice, _, _ = value
                current = self.memory.invoices[invoice.id]
                if current.version != invoice.version or current.credited_cents != invoice.credited_cents:
                    raise CreditNoteRace("the invoice changed meanwhile; retry")
        for kind, value in self.writes:
            if kind == "change_balance":
                change, error = value
                txn = change.txn
                if self.memory.customers[txn.customer_id].balances.get(txn.currency, 0) != change.old_cents:
                    raise error(f"the balance of {txn.customer_id} moved; retry")
        for kind, value in self.writes:
            if kind == "claim_number":
                claim, error = value
                key = (claim.customer_id, claim.kind, claim.year)
                if self.memory.sequences.get(key, 1) != claim.next_value:
                    raise (error or NumberTaken)(claim.customer_id)

    def _apply(self) -> None:
        from invoicing.domain.billing_runs import counts_of
        from invoicing.store.writes.billing_runs import BillingRunReadAhead

        for kind, value in self.writes:
            if kind == "advance_billing_run_start" and value[0] in self.memory.billing_runs:
                run_id, from_line, to_line, queued, failed, done = value
                run = self.memory.billing_runs[run_id]
                if not run.reading or run.next_line != from_line:
                    raise BillingRunReadAhead(f"billing run {run_id} was read past line {from_line}")
                added = counts_of(failed).as_dict()
                counts = type(run.counts)(**{k: v + added[k] for k, v in run.counts.as_dict().items()})
                self.memory.billing_runs[run_id] = replace(
                    run,
                    next_line=to_line,
                    total=run.total + to_line - from_line,
                    queued=run.queued + queued,
                    counts=counts,
                    reading=not done,
                )
        for kind, value in self.writes:
            if kind == "claim_number":
                claim, _ = value
                self.memory.sequences[(claim.customer_id, claim.kind, claim.year)] = claim.next_value + 1
            elif kind == "finalize":
                _, finalized, remind_at = value
                self.memory.invoices[finalized.id] = finalized
                self.memory.remind_at[finalized.id] = remind_at
            elif kind == "transition":
                _, after = value
                self.memory.invoices[after.id] = after
            elif kind == "add_draft":
                self.memory.invoices[value.id] = value
            elif kind == "billing_run_key":
                self.memory.billing_run_keys[value[0]] = value[1]
            elif kind == "add_event":
                self.memory.events.append(value)
            elif kind == "change_balance":
                change, _ = value
                customer = self.memory.customers[change.txn.customer_id]
                balances = {**customer.balances, change.txn.currency: change.new_cents}
                self.memory.customers[customer.id] = replace(customer, balances=balances)
                self.memory.balance_changes.append(change)
            elif kind == "add_link":
                self.memory.links.append(value)
            elif kind == "record_payment":
                invoice, payment, application = value
                self.memory.invoices[invoice.id] = application.applied_to(self.memory.invoices[invoice.id], payment)
                self.memory.payments[payment.id] = payment
            elif kind == "issue_credit_note":
                invoice, note, split = value
                current = self.memory.invoices[invoice.id]
                self.memory.invoices[invoice.id] = split.applied_to(current, note.total_cents, note.created_at)
                self.memory.notes[note.id] = note


class FakePaymentStore:
    """store/payments.PaymentStore's reads, from memory."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    def list_payments(self, invoice_id: str) -> list[Payment]:
        return [p for p in self.memory.payments.values() if p.invoice_id == invoice_id]

    def list_links(self, invoice_id: str) -> list[PaymentLink]:
        return [link for link in self.memory.links if link.invoice_id == invoice_id]


class FakeCreditNoteStore:
    """store/credit_notes.CreditNoteStore's reads, from memory."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    def get(self, credit_note_id: str) -> CreditNote:
        return self.memory.notes[credit_note_id]

    def payment_refunds(self, invoice_id: str) -> dict[str, tuple[int, int, str | None, str]]:
        return {}


class NoTax:
    """Every line untaxed: totals are the line amounts."""

    def calculate(self, invoice: Invoice, lines: list[InvoiceLine], customer: Customer) -> dict[str, LineTax]:
        return {line.id: LineTax.none() for line in lines}


class RecordingQueue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, body: dict[str, Any]) -> str:
        self.sent.append(body)
        return f"m-{len(self.sent)}"


class NoRates:
    def get(self, currency: str) -> None:
        return None


@dataclass
class FakeServices(Services):
    memory: Memory = field(default_factory=Memory)


def fake_services(settings: Settings | None = None, **overrides: Any) -> FakeServices:
    """Services over memory: the composition root's own constructor, given fakes."""
    memory = Memory()
    repo = FakeRepository(memory)
    values: dict[str, Any] = {
        "settings": settings or Settings(stage="test", public_base_url="https://pay.example.test"),
        "repo": repo,
        "tax_rates": None,
        "exchange_rates": NoRates(),
        "tax": NoTax(),
        "documents": None,
        "render_queue": RecordingQueue(),
        "payment_store": None,
        "credit_note_store": None,
        "refund_store": None,
        "memory": memory,
        **overrides,
    }
    return FakeServices(**values)


def customer(customer_id: str = "cus_1", **fields: Any) -> Customer:
    from invoicing.domain.invoice import Address

    values: dict[str, Any] = {
        "id": customer_id,
        "name": "Acme GmbH",
        "email": "billing@acme.test",
        "address": Address(line1="Hauptstr. 1", city="Berlin", postal_code="10115", country="DE"),
        "currency": "USD",
        "locale": "en_US",
        "timezone": "UTC",
        "tax_id": "",
        "reminders_enabled": True,
        "balances": {},
        "metadata": {},
        "created_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:00.000Z",
        **fields,
    }
    return Customer(**values)


def draft(invoice_id: str = "in_1", customer_id: str = "cus_1", *amounts: int, **fields: Any) -> Invoice:
    """A draft with one line per amount (one line of 10.00 when none is given)."""
    from decimal import Decimal

    at = "2026-01-01T00:00:00.000Z"
    lines = tuple(
        InvoiceLine(
            id=f"il_{i}",
            description=f"Line {i}",
            quantity=Decimal("1"),
            unit_amount_cents=amount,
            tax_rate_id=None,
            created_at=at,
        )
        for i, amount in enumerate(amounts or (1000,))
    )
    values: dict[str, Any] = {
        "id": invoice_id,
        "customer_id": customer_id,
        "status": InvoiceStatus.DRAFT,
        "currency": "USD",
        "created_at": at,
        "updated_at": at,
        "days_until_due": 30,
        "lines": lines,
        **fields,
    }
    return Invoice(**values)
