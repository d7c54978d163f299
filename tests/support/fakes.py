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

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

from invoicing.domain.balance import BalanceChange
from invoicing.domain.credit import CreditNote, CreditSplit
from invoicing.domain.customer import Customer
from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice, InvoiceLine, InvoiceStatus, LineTax
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
from invoicing.store.credit_notes import CreditNoteRace
from invoicing.store.payments import InvoiceNotPayableNow

Write = tuple[str, Any]


@dataclass
class Memory:
    """The table: what is stored, and every unit of work committed so far."""

    invoices: dict[str, Invoice] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    sequences: dict[tuple[str, str, int], int] = field(default_factory=dict)
    events: list[InvoiceEvent] = field(default_factory=list)
    outbox: list[Any] = field(default_factory=list)  # public events (domain.webhooks.OutboxEvent)
    links: list[PaymentLink] = field(default_factory=list)
    balance_changes: list[BalanceChange] = field(default_factory=list)
    commits: list[list[Write]] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
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

    def get_sequence(self, customer_id: str, kind: str, year: int) -> int:
        self.memory.reads.append(f"sequence {customer_id}")
        return self.memory.sequences.get((customer_id, kind, year), 1)

    def draft_conflict(self, invoice_id: str) -> Exception:
        current = self.get_invoice(invoice_id)
        if not current.is_draft:
            return InvoiceNotDraft(f"invoice {invoice_id} is {current.status.value}; only drafts can be changed")
        return StaleInvoice(f"invoice {invoice_id} changed meanwhile; retry")

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.memory, self)


class FakeUnitOfWork:
    """The typed writes of store/uow.py, checked against memory and applied all together or not at all."""

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

    def claim_number(self, claim: NumberClaim) -> None:
        self.writes.append(("claim_number", claim))

    def finalize(self, draft: Invoice, finalized: Invoice) -> None:
        self.writes.append(("finalize", (draft, finalized)))

    def transition(self, invoice: Invoice, **change: Any) -> Invoice:
        self.writes.append(("transition", (invoice, change)))
        at = change["at"]
        after = replace(invoice, status=change["target"], version=invoice.version + 1, updated_at=at)
        return replace(after, **{change["timestamp_field"]: at})

    def add_draft(self, draft: Invoice) -> None:
        self.writes.append(("add_draft", draft))

    def add_events(self, *events: InvoiceEvent, subject: Invoice | None = None) -> None:
        if subject is not None:  # the outbox records, as store/uow.py makes them
            from invoicing.domain.webhooks import outbox_events
            from invoicing.schemas.objects import invoice_out

            obj = invoice_out(subject).model_dump(mode="json")
            for public in outbox_events(
                events, object_type="invoice", object_id=subject.id, obj=obj, version=subject.version
            ):
                self.writes.append(("add_outbox", public))
        self.writes.extend(("add_event", e) for e in events)

    def change_balance(self, change: BalanceChange) -> None:
        self.writes.append(("change_balance", change))

    def add_link(self, link: PaymentLink) -> None:
        self.writes.append(("add_link", link))

    def commit(self) -> None:
        self.done = True
        if self.memory._losses:
            raise self.memory._losses.pop(0)
        for _ in self._check():
            pass
        self._apply()
        self.memory.commits.append(list(self.writes))

    def _check(self) -> Iterator[None]:
        """The conditions, in the order the real commit reports them: the invoice, the balance, the number."""
        for kind, value in self.writes:
            if kind == "finalize":
                draft, _ = value
                current = self.memory.invoices.get(draft.id)
                if current is None or not current.is_draft or current.version != draft.version:
                    raise self.repo.draft_conflict(draft.id)
            if kind == "transition":
                invoice, change = value
                current = self.memory.invoices[invoice.id]
                if current.status not in change["allowed_from"] or current.version != invoice.version:
                    raise StaleInvoice(f"invoice {invoice.id} changed meanwhile; retry")
            yield None
        for kind, value in self.writes:
            if kind == "change_balance":
                txn = value.txn
                if self.memory.customers[txn.customer_id].balances.get(txn.currency, 0) != value.old_cents:
                    raise StaleBalance(f"the balance of {txn.customer_id} moved; retry")
        for kind, value in self.writes:
            if kind == "claim_number":
                key = (value.customer_id, value.kind, value.year)
                if self.memory.sequences.get(key, 1) != value.next_value:
                    raise NumberTaken(value.customer_id)

    def _apply(self) -> None:
        for kind, value in self.writes:
            if kind == "claim_number":
                self.memory.sequences[(value.customer_id, value.kind, value.year)] = value.next_value + 1
            elif kind == "finalize":
                _, finalized = value
                self.memory.invoices[finalized.id] = finalized
            elif kind == "transition":
                invoice, change = value
                self.memory.invoices[invoice.id] = replace(
                    self.memory.invoices[invoice.id], status=change["target"], version=invoice.version + 1
                )
            elif kind == "add_draft":
                self.memory.invoices[value.id] = value
            elif kind == "add_event":
                self.memory.events.append(value)
            elif kind == "add_outbox":
                self.memory.outbox.append(value)
            elif kind == "change_balance":
                customer = self.memory.customers[value.txn.customer_id]
                balances = {**customer.balances, value.txn.currency: value.new_cents}
                self.memory.customers[customer.id] = replace(customer, balances=balances)
                self.memory.balance_changes.append(value)
            elif kind == "add_link":
                self.memory.links.append(value)


class FakePaymentStore:
    """store/payments.PaymentStore's payment transaction, with its conditions: the invoice still takes
    payments and its remainder is the one the payment was decided on (`=` when it settles, `>` else)."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self.payments: dict[str, Payment] = {}

    def record_payment(
        self,
        *,
        invoice: Invoice,
        payment: Payment,
        application: PaymentApplication,
        event: InvoiceEvent,
        link: Any = None,
    ) -> None:
        if self.memory._losses:
            raise self.memory._losses.pop(0)
        if payment.id in self.payments:
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
        self.memory.invoices[invoice.id] = replace(
            current,
            amount_paid_cents=current.amount_paid_cents + amount,
            amount_remaining_cents=current.amount_remaining_cents - amount,
            version=current.version + 1,
            status=InvoiceStatus.PAID if application.becomes_paid else current.status,
            paid_at=payment.paid_at if application.becomes_paid else current.paid_at,
        )
        self.payments[payment.id] = payment
        self.memory.events.append(event)
        self.memory.commits.append([("record_payment", payment), ("add_event", event)])

    def list_payments(self, invoice_id: str) -> list[Payment]:
        return [p for p in self.payments.values() if p.invoice_id == invoice_id]

    def list_links(self, invoice_id: str) -> list[PaymentLink]:
        return [link for link in self.memory.links if link.invoice_id == invoice_id]


class FakeCreditNoteStore:
    """store/credit_notes.CreditNoteStore's issue transaction, with its conditions: the invoice's
    version and credited amount as read, the CN counter, the customer's balance as read."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self.notes: dict[str, CreditNote] = {}

    def issue(
        self,
        *,
        invoice: Invoice,
        note: CreditNote,
        split: CreditSplit,
        sequence_year: int,
        sequence_next: int,
        event: InvoiceEvent,
        balance: BalanceChange | None,
        refunds: list[Any],
        paid_at: str | None,
    ) -> None:
        if self.memory._losses:
            raise self.memory._losses.pop(0)
        current = self.memory.invoices[invoice.id]
        counter = (invoice.customer_id, "CN", sequence_year)
        customer = self.memory.customers.get(invoice.customer_id)
        if (
            current.version != invoice.version
            or current.credited_cents != invoice.credited_cents
            or self.memory.sequences.get(counter, 1) != sequence_next
            or (
                balance is not None
                and customer is not None
                and customer.balances.get(note.currency, 0) != balance.old_cents
            )
        ):
            raise CreditNoteRace("the invoice, a counter or a balance changed meanwhile; retry")
        self.memory.invoices[invoice.id] = replace(
            current,
            version=current.version + 1,
            credited_cents=current.credited_cents + note.total_cents,
            pre_payment_credited_cents=current.pre_payment_credited_cents + split.pre_payment_cents,
            post_payment_credited_cents=current.post_payment_credited_cents + split.post_payment_cents,
            amount_remaining_cents=current.amount_remaining_cents - split.pre_payment_cents,
            status=InvoiceStatus.PAID if split.settles_invoice else current.status,
            paid_at=(paid_at or note.created_at) if split.settles_invoice else current.paid_at,
        )
        self.memory.sequences[counter] = sequence_next + 1
        writes: list[Write] = [("issue_credit_note", note), ("add_event", event)]
        if balance is not None and customer is not None:
            balances = {**customer.balances, note.currency: balance.new_cents}
            self.memory.customers[customer.id] = replace(customer, balances=balances)
            self.memory.balance_changes.append(balance)
            writes.append(("change_balance", balance))
        self.notes[note.id] = note
        self.memory.events.append(event)
        self.memory.commits.append(writes)

    def get(self, credit_note_id: str) -> CreditNote:
        return self.notes[credit_note_id]

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
