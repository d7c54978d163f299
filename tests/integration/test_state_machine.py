"""State-machine properties: random sequences of use cases against moto, invariants after every step.

A hypothesis RuleBasedStateMachine creates drafts, edits them, adds/edits/removes lines, finalizes,
pays (partly, fully, too much), voids (with and without reissue), marks uncollectible, credits and
voids credits, sends manual reminders, re-renders PDFs, deletes drafts and edits the customer, on
invoices picked at random whatever their status. Features still landing join when their module
exists (payments, credit notes, reminders).

Each operation is checked against the state it found:
- a transition the lifecycle forbids (domain.invoice.TRANSITIONS) is refused, a legal one with valid
  input succeeds, and a refusal leaves no trace (same header, lines, events; no number consumed);
- a success writes the audit event(s) of its kind.
After every step, for the invoice the step acted on and any new one, and after every FULL_CHECK_EVERY-th
step and at the end of each example, for every invoice (so a change to an invoice no step acted on is
caught within a few steps; reading every invoice after every step made the check most of the run):
- the audit trail's from/to statuses form one chain of legal transitions from `draft` to the current
  status that passes through every status observed;
- issued invoices never change lines, amounts, currency, number, customer snapshot or USD value;
- subtotal = sum of line amounts, total = subtotal + exclusive tax (frozen tax once issued);
- amount_remaining = total - paid - credited before payment - customer balance applied; paid = sum of
  the payments; paid means nothing remains; credits never exceed the total;
- invoice (and credit note) numbers are unique and gapless per customer and year;
- a customer's balance equals its ledger and is never negative.

make test: 25 examples x 20 steps (derandomized); make test-slow (RUN_SLOW=1): 100 examples x 40 steps.
Invariants and the audit/number checks are the same in both.
Run alone: .venv/bin/python -m pytest tests/integration/test_state_machine.py -s
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.support.hypothesis import EXPLORE

QUICK = {"examples": 25, "steps": 20}  # make test
FULL = {"examples": 100, "steps": 40}  # make test-slow (RUN_SLOW=1)
FULL_CHECK_EVERY = 5  # steps between two checks of every invoice (module docstring)
SENDER = "billing@seller.test"
TOTALS: dict[str, int] = defaultdict(int)  # operations per kind over all examples, printed at the end


def empty_tables() -> None:
    """Empty moto's tables in place: a fresh account per example would rebuild every botocore client
    (PynamoDB keeps one per model class), which costs more than the example itself."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    for table in dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables.values():
        table.items.clear()


LINE = st.fixed_dictionaries(
    {
        "description": st.sampled_from(["Seat", "Hosting <b>plan</b>", "Support", "Discount"]),
        "quantity": st.sampled_from(["1", "2", "0.5", "3.25"]),
        "unit_amount_cents": st.sampled_from([1250, 1, 99, 10000, -500]),
        "tax": st.sampled_from([None, "exclusive", "inclusive"]),
    }
)


@dataclass
class Collection:
    """An invoice's whole item collection, read with ONE consistent Query (pk = INVOICE#id): header,
    lines, events, payments, credit notes. Cheap enough to check every invoice after every step."""

    invoice: Any
    events: list[Any]
    payments: list[Any]
    credit_notes: list[Any]

    @classmethod
    def read(cls, invoice_id: str) -> Collection | None:
        from invoicing.store import models
        from invoicing.store.keys import invoice_pk
        from invoicing.store.mapping import event_from_item, invoice_from_item, line_from_item

        header, lines, events, payments, notes = None, [], [], [], []
        for item in models.TableItem.query(invoice_pk(invoice_id), consistent_read=True):
            if isinstance(item, models.InvoiceItem):
                header = item
            elif isinstance(item, models.LineItem):
                lines.append(line_from_item(item))
            elif isinstance(item, models.EventItem):
                events.append(event_from_item(item))
            elif isinstance(item, models.PaymentItem):
                from invoicing.store.payment_mapping import payment_from_item

                payments.append(payment_from_item(item))
            elif isinstance(item, models.CreditNoteItem):
                from invoicing.store.credit_mapping import credit_note_from_item

                notes.append(credit_note_from_item(item))
        if header is None:
            return None
        return cls(invoice_from_item(header, lines), events, payments, notes)


@dataclass(frozen=True)
class View:
    """What must not move when an operation is refused."""

    status: str
    version: int
    lines: tuple[Any, ...]
    amounts: tuple[int, ...]
    events: tuple[str, ...]

    @classmethod
    def of(cls, read: Collection | None) -> View | None:
        if read is None:
            return None
        inv = read.invoice
        return cls(
            status=inv.status.value,
            version=inv.version,
            lines=tuple((ln.id, ln.description, ln.quantity, ln.unit_amount_cents) for ln in inv.lines),
            amounts=(
                inv.subtotal_cents,
                inv.tax_cents,
                inv.total_cents,
                inv.amount_paid_cents,
                inv.amount_remaining_cents,
                inv.credited_cents,
            ),
            events=tuple(sorted(e.id for e in read.events)),
        )


def frozen_fields(inv: Any) -> tuple[Any, ...]:
    """What an issued invoice keeps for good."""
    return (
        tuple((ln.id, ln.description, ln.quantity, ln.unit_amount_cents, ln.tax) for ln in inv.lines),
        inv.subtotal_cents,
        inv.tax_cents,
        inv.total_cents,
        inv.currency,
        inv.invoice_number,
        inv.customer,
        inv.usd_total_cents,
        inv.fx_rate,
        inv.finalized_at,
        inv.due_date,
        tuple(sorted(inv.line_taxes.items())),
    )


def transition_chain(events: list[Any]) -> list[str]:
    """The statuses the audit trail walks through, from `draft`, following from -> to links."""
    from invoicing.domain.invoice import InvoiceStatus, can_transition

    created = [e for e in events if e.to_status == "draft" and e.from_status is None]
    assert len(created) == 1, [(e.type, e.from_status, e.to_status) for e in events]
    steps = [e for e in events if e.from_status is not None and e.to_status is not None]
    chain = ["draft"]
    while steps:
        nexts = [e for e in steps if e.from_status == chain[-1]]
        assert len(nexts) == 1, f"after {chain}: {[(e.type, e.from_status, e.to_status) for e in steps]}"
        step = nexts[0]
        assert can_transition(InvoiceStatus(step.from_status), InvoiceStatus(step.to_status)), step
        chain.append(step.to_status)
        steps.remove(step)
    return chain


def is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


class InvoiceLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        from invoicing.domain.events import Actor
        from invoicing.root import get_services
        from invoicing.use_cases import customers, rates

        empty_tables()  # every example starts from empty tables (see empty_tables)
        self.svc = get_services()
        self.actor = Actor("api_key:machine", "req-machine")
        self.customer = customers.create_customer(self.svc, name="Machine GmbH", email="ap@machine.test").id
        self.rates = {
            "exclusive": rates.create_tax_rate(self.svc, display_name="VAT", percentage="19", inclusive=False).id,
            "inclusive": rates.create_tax_rate(self.svc, display_name="GST", percentage="7", inclusive=True).id,
        }
        self.invoices: list[str] = []
        self.credit_notes: list[str] = []
        self.frozen: dict[str, tuple[Any, ...]] = {}
        self.observed: dict[str, list[str]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)
        self.cache: dict[str, Collection] = {}
        self.touched: set[str] = set()
        self.steps = 0

    def teardown(self) -> None:
        for key, value in self.counts.items():
            TOTALS[key] += value
        self.check(every_invoice=True)

    # ---------------------------------------------------------------- helpers
    def _line(self, spec: dict[str, Any]) -> Any:
        from invoicing.use_cases.invoices import LineInput

        return LineInput(
            description=spec["description"],
            quantity=Decimal(spec["quantity"]),
            unit_amount_cents=spec["unit_amount_cents"],
            tax_rate_id=self.rates[spec["tax"]] if spec["tax"] else None,
        )

    def _pick(self, data: Any) -> str:
        # newest first: hypothesis leans to the first choice, and the newest invoice is the likeliest
        # to still be a draft or open
        return data.draw(st.sampled_from(self.invoices[::-1]), label="invoice")

    def _sequence(self, kind: str = "INV") -> int:
        from invoicing import clock

        return self.svc.repo.get_sequence(self.customer, kind, clock.now().year)

    def attempt(
        self,
        name: str,
        invoice_id: str,
        call: Any,
        *,
        allowed_from: set[str] | frozenset[str] | None,
        must_succeed: bool = False,
        events: tuple[str, ...] = (),
    ) -> Any:
        """Run one use case on an invoice and check it against the state it found (module docstring)."""
        from invoicing.errors import InvoicingError

        self.touched.add(invoice_id)
        before = View.of(self._pre(invoice_id))
        assert before is not None
        sequence = self._sequence()
        try:
            result = call()
        except InvoicingError as exc:
            self.counts[f"{name} refused"] += 1
            assert not must_succeed, f"{name} on a {before.status} invoice was refused: {exc.code} {exc}"
            assert View.of(Collection.read(invoice_id)) == before, f"refused {name} left a trace"
            assert self._sequence() == sequence, f"refused {name} consumed a number"
            return None
        self.counts[name] += 1
        assert allowed_from is None or before.status in allowed_from, f"{name} was allowed on {before.status}"
        if events:
            read = Collection.read(invoice_id)
            assert read is not None
            new = [e.type for e in read.events if e.id not in before.events]
            for kind in events:
                assert kind in new, f"{name}: no new {kind} event (new: {new})"
        return result

    # ---------------------------------------------------------------- drafts
    @initialize(lines=st.lists(LINE, min_size=1, max_size=3), finalize=st.booleans())
    def start_with_a_draft(self, lines: list[dict[str, Any]], finalize: bool) -> None:
        self.create_draft(lines, memo="", edit_customer_first=False)
        if finalize:
            self.finalize_invoice(self.invoices[-1])

    @rule(
        lines=st.lists(LINE, min_size=1, max_size=3),  # an empty draft comes from removing its lines
        memo=st.sampled_from(["", "Thanks"]),
        edit_customer_first=st.booleans(),
    )
    def create_draft(self, lines: list[dict[str, Any]], memo: str, edit_customer_first: bool) -> None:
        """Also edits the customer first, half the time: issued invoices must keep their snapshot."""
        from invoicing.use_cases.customers import UpdateCustomer, update_customer
        from invoicing.use_cases.invoices import CreateInvoice, create_invoice

        if edit_customer_first:
            name = f"Machine {len(self.invoices)} GmbH"
            cmd = UpdateCustomer(name=name, address={"city": f"City {len(self.invoices)}"})
            update_customer(self.svc, self.customer, cmd)
            self.counts["edit customer"] += 1
        create = CreateInvoice(customer_id=self.customer, lines=tuple(self._line(s) for s in lines), memo=memo)
        invoice, created = create_invoice(self.svc, self.actor, create)
        assert created and invoice.status.value == "draft"
        self.invoices.append(invoice.id)
        self.counts["create"] += 1

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), memo=st.sampled_from(["", "Edited", "Net 14"]), days=st.sampled_from([None, 0, 14]))
    def edit_draft(self, data: Any, memo: str, days: int | None) -> None:
        from invoicing.use_cases.invoices import UpdateInvoice, update_invoice

        invoice_id = self._pick(data)
        changes = UpdateInvoice(memo=memo) if days is None else UpdateInvoice(memo=memo, days_until_due=days)
        self.attempt(
            "edit",
            invoice_id,
            lambda: update_invoice(self.svc, self.actor, invoice_id, changes),
            allowed_from={"draft"},
            must_succeed=self._pre(invoice_id).invoice.status.value == "draft",
            events=("invoice.updated",),
        )

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), line=LINE)
    def add_line(self, data: Any, line: dict[str, Any]) -> None:
        from invoicing.use_cases.invoices import add_line

        invoice_id = self._pick(data)
        self.attempt(
            "add line",
            invoice_id,
            lambda: add_line(self.svc, self.actor, invoice_id, self._line(line)),
            allowed_from={"draft"},
            must_succeed=self._pre(invoice_id).invoice.status.value == "draft",
            events=("invoice.line_added",),
        )

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), line=LINE)
    def edit_line(self, data: Any, line: dict[str, Any]) -> None:
        from invoicing.use_cases.invoices import UpdateLine, update_line

        invoice_id = self._pick(data)
        lines = self._pre(invoice_id).invoice.lines
        if not lines:
            return
        line_id = data.draw(st.sampled_from([ln.id for ln in lines]), label="line")
        new = self._line(line)
        changes = UpdateLine(
            quantity=new.quantity, unit_amount_cents=new.unit_amount_cents, tax_rate_id=new.tax_rate_id
        )
        self.attempt(
            "edit line",
            invoice_id,
            lambda: update_line(self.svc, self.actor, invoice_id, line_id, changes),
            allowed_from={"draft"},
            must_succeed=self._pre(invoice_id).invoice.status.value == "draft",
            events=("invoice.line_updated",),
        )

    @precondition(lambda self: self.invoices)
    @rule(data=st.data())
    def remove_line(self, data: Any) -> None:
        from invoicing.use_cases.invoices import delete_line

        invoice_id = self._pick(data)
        lines = self._pre(invoice_id).invoice.lines
        if not lines:
            return
        line_id = data.draw(st.sampled_from([ln.id for ln in lines]), label="line")
        self.attempt(
            "remove line",
            invoice_id,
            lambda: delete_line(self.svc, self.actor, invoice_id, line_id),
            allowed_from={"draft"},
            must_succeed=self._pre(invoice_id).invoice.status.value == "draft",
            events=("invoice.line_deleted",),
        )

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), really=st.sampled_from([False, False, True]))
    def delete_draft(self, data: Any, really: bool) -> None:
        """Only one call in three goes through: otherwise the drafts are gone before they are issued."""
        from invoicing.use_cases.invoices import delete_invoice

        if not really:
            return
        invoice_id = self._pick(data)
        status = self._pre(invoice_id).invoice.status.value
        self.attempt(
            "delete",
            invoice_id,
            lambda: delete_invoice(self.svc, self.actor, invoice_id),
            allowed_from={"draft"},
            must_succeed=status == "draft",
        )
        if status == "draft":
            assert Collection.read(invoice_id) is None, "a deleted draft left items"
            self.invoices.remove(invoice_id)

    # ---------------------------------------------------------------- lifecycle
    @precondition(lambda self: self.invoices)
    @rule(data=st.data())
    def finalize(self, data: Any) -> None:
        self.finalize_invoice(self._pick(data))

    def finalize_invoice(self, invoice_id: str) -> None:
        from invoicing.use_cases.finalize import finalize_invoice

        inv = self._pre(invoice_id).invoice
        finalizable = inv.is_draft and bool(inv.lines) and inv.draft_totals().total_cents >= 0

        def call() -> Any:
            return finalize_invoice(self.svc, self.actor, invoice_id)

        self.attempt(
            "finalize",
            invoice_id,
            call,
            allowed_from={"draft"},
            must_succeed=finalizable,
            events=("invoice.finalized",),
        )

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), part=st.sampled_from(["one cent", "half", "all", "too much"]))
    def pay(self, data: Any, part: str) -> None:
        from invoicing.domain.payments import PaymentMethod
        from invoicing.use_cases.payments import RecordPayment, record_payment

        invoice_id = self._pick(data)
        inv = self._pre(invoice_id).invoice
        due = inv.amount_remaining_cents
        amount = {"one cent": 1, "half": due // 2, "all": due, "too much": due + 1}[part]
        payable = inv.status.value in ("open", "uncollectible") and 0 < amount <= due
        self.attempt(
            f"pay {part}",
            invoice_id,
            lambda: record_payment(
                self.svc, self.actor, invoice_id, RecordPayment(amount_cents=amount, method=PaymentMethod.BANK_TRANSFER)
            ),
            allowed_from={"open", "uncollectible"},
            must_succeed=payable,
            events=("invoice.payment_recorded",),
        )

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), reissue=st.booleans())
    def void(self, data: Any, reissue: bool) -> None:
        from invoicing.use_cases.lifecycle import void_invoice

        invoice_id = self._pick(data)
        result = self.attempt(
            "void + reissue" if reissue else "void",
            invoice_id,
            lambda: void_invoice(self.svc, self.actor, invoice_id, reissue=reissue),
            allowed_from={"open", "uncollectible"},
            must_succeed=self._pre(invoice_id).invoice.status.value in ("open", "uncollectible"),
            events=("invoice.voided",),
        )
        if result is not None and reissue:
            voided, copy = result
            assert copy is not None and copy.reissue_of == invoice_id and voided.reissued_as == copy.id
            assert copy.status.value == "draft" and copy.invoice_number is None
            assert [ln.amount_cents for ln in copy.lines] == [ln.amount_cents for ln in voided.lines]
            self.invoices.append(copy.id)

    @precondition(lambda self: self.invoices)
    @rule(data=st.data())
    def mark_uncollectible(self, data: Any) -> None:
        from invoicing.use_cases.lifecycle import mark_uncollectible

        invoice_id = self._pick(data)
        self.attempt(
            "mark uncollectible",
            invoice_id,
            lambda: mark_uncollectible(self.svc, self.actor, invoice_id),
            allowed_from={"open"},
            must_succeed=self._pre(invoice_id).invoice.status.value == "open",
            events=("invoice.marked_uncollectible",),
        )

    # ---------------------------------------------------------------- credit notes, reminders, PDFs
    @precondition(lambda self: self.invoices)
    @rule(
        data=st.data(),
        part=st.sampled_from(["one cent", "half", "all left", "too much"]),
        method=st.sampled_from(["customer_balance", "out_of_band", "refund"]),
    )
    def credit(self, data: Any, part: str, method: str) -> None:
        from invoicing.domain.credit import CreditMethod, CreditReason
        from invoicing.use_cases.credit_notes import IssueCreditNote, issue_credit_note

        invoice_id = self._pick(data)
        inv = self._pre(invoice_id).invoice
        left = inv.total_cents - inv.credited_cents
        amount = {"one cent": 1, "half": left // 2, "all left": left, "too much": left + 1}[part]
        creditable = inv.status.value in ("open", "uncollectible", "paid") and 0 < amount <= left
        cmd = IssueCreditNote(reason=CreditReason.OTHER, method=CreditMethod(method), amount_cents=max(amount, 1))
        note = self.attempt(
            f"credit {part} ({method})",
            invoice_id,
            lambda: issue_credit_note(self.svc, self.actor, invoice_id, cmd),
            allowed_from={"open", "uncollectible", "paid"},
            # a refund is bounded by what was paid and not refunded yet: it may be refused
            must_succeed=creditable and amount > 0 and method != "refund",
            events=("invoice.credit_note_issued",),
        )
        if note is not None:
            self.credit_notes.append(note.id)

    @precondition(lambda self: self.credit_notes)
    @rule(data=st.data())
    def void_credit(self, data: Any) -> None:
        from invoicing.use_cases.credit_notes import get_credit_note, void_credit_note

        note_id = data.draw(st.sampled_from(self.credit_notes), label="credit note")
        note = get_credit_note(self.svc, note_id)
        self.attempt(
            "void credit note",
            note.invoice_id,
            lambda: void_credit_note(self.svc, self.actor, note_id),
            allowed_from=None,  # the rules for voiding credits are their own (balance spent, refunds)
            events=("invoice.credit_note_voided",),
        )

    @precondition(lambda self: self.invoices)
    @rule(data=st.data())
    def remind(self, data: Any) -> None:
        from invoicing.use_cases.reminders import send_manual_reminder

        invoice_id = self._pick(data)
        self.attempt(
            "remind",
            invoice_id,
            lambda: send_manual_reminder(self.svc, self.actor, invoice_id),
            allowed_from={"open", "uncollectible"},
            must_succeed=self._pre(invoice_id).invoice.status.value in ("open", "uncollectible"),
            events=("invoice.reminder_sent",),
        )

    @precondition(lambda self: self.invoices)
    @rule(data=st.data())
    def rerender(self, data: Any) -> None:
        from invoicing.use_cases.documents import request_render

        invoice_id = self._pick(data)
        status = self._pre(invoice_id).invoice.status.value
        self.attempt(
            "re-render",
            invoice_id,
            lambda: request_render(self.svc, self.actor, invoice_id),
            allowed_from={"open", "paid", "void", "uncollectible"},
            must_succeed=status != "draft",
        )

    def _pre(self, invoice_id: str) -> Collection:
        """The invoice as the last invariant check read it (a step changes only the invoice it acts on,
        which the next check re-reads; the full checks prove that)."""
        if invoice_id not in self.cache:
            read = Collection.read(invoice_id)
            assert read is not None
            self.cache[invoice_id] = read
        return self.cache[invoice_id]

    # ---------------------------------------------------------------- invariants
    @invariant()
    def every_invoice_and_the_customer_are_consistent(self) -> None:
        self.steps += 1
        self.check(every_invoice=self.steps % FULL_CHECK_EVERY == 0)

    def check(self, *, every_invoice: bool) -> None:
        """Every invariant, over every invoice: the ones re-read now (all, or those a step acted on and
        the new ones), the others as last read."""
        from invoicing.domain.numbering import parse_number

        numbers: dict[int, list[int]] = defaultdict(list)
        credit_numbers: dict[int, list[int]] = defaultdict(list)
        for invoice_id in self.invoices:
            if every_invoice or invoice_id in self.touched or invoice_id not in self.cache:
                fresh = Collection.read(invoice_id)
                assert fresh is not None, f"{invoice_id} vanished"
                self.cache[invoice_id] = fresh
                self._check_invoice(fresh)
            read = self.cache[invoice_id]
            if read.invoice.invoice_number:
                _, year, seq = parse_number(read.invoice.invoice_number)
                numbers[year].append(seq)
            for note in read.credit_notes:
                _, year, seq = parse_number(note.number)
                credit_numbers[year].append(seq)
        # numbers: unique and gapless per customer and year, and the counter is right behind them
        for year, seqs in numbers.items():
            assert sorted(seqs) == list(range(1, len(seqs) + 1)), ("INV", year, sorted(seqs))
            assert self.svc.repo.get_sequence(self.customer, "INV", year) == len(seqs) + 1
        for year, seqs in credit_numbers.items():
            assert sorted(seqs) == list(range(1, len(seqs) + 1)), ("CN", year, sorted(seqs))
        self._check_balance()
        self.touched.clear()

    def _check_invoice(self, read: Collection) -> None:
        from invoicing.domain.invoice import compute_totals

        inv = read.invoice
        status = inv.status.value
        observed = self.observed[inv.id]
        if not observed or observed[-1] != status:
            observed.append(status)
        # the audit trail is one chain of legal transitions through everything observed
        chain = transition_chain(read.events)
        assert chain[-1] == status, (inv.id, chain, status)
        assert is_subsequence(observed, chain), (observed, chain)
        # totals from the lines (previews while a draft, frozen results once issued)
        totals = compute_totals(list(inv.lines), inv.effective_taxes())
        assert (inv.subtotal_cents, inv.tax_cents, inv.total_cents) == (
            totals.subtotal_cents,
            totals.tax_cents,
            totals.total_cents,
        ), inv.id
        assert inv.subtotal_cents == sum(ln.amount_cents for ln in inv.lines)
        if inv.is_draft:
            assert inv.invoice_number is None and inv.id not in self.frozen
            return
        # issued: frozen for good
        fields = frozen_fields(inv)
        assert self.frozen.setdefault(inv.id, fields) == fields, f"issued invoice {inv.id} changed"
        assert inv.invoice_number is not None
        credited_before = inv.pre_payment_credited_cents
        applied_balance = inv.applied_balance_cents
        assert inv.amount_remaining_cents == (
            inv.total_cents - inv.amount_paid_cents - credited_before - applied_balance
        ), (inv.id, status, inv.total_cents, inv.amount_paid_cents, credited_before, applied_balance)
        assert inv.amount_remaining_cents >= 0
        if status == "paid":
            assert inv.amount_remaining_cents == 0 and inv.paid_at
        assert sum(p.amount_cents for p in read.payments if p.applied) == inv.amount_paid_cents, inv.id
        issued = [n for n in read.credit_notes if n.status.value == "issued"]
        assert sum(n.total_cents for n in issued) == inv.credited_cents, inv.id
        assert 0 <= inv.credited_cents <= inv.total_cents, "over-credited"
        assert inv.refunded_cents <= inv.amount_paid_cents, "refunded more than was paid"

    def _check_balance(self) -> None:
        """The customer's balance equals its ledger and is never negative."""
        from invoicing.use_cases.credit_notes import list_balance_transactions

        balances = self.svc.repo.get_customer(self.customer).balances
        ledger: dict[str, int] = defaultdict(int)
        for txn in list_balance_transactions(self.svc, self.customer):
            ledger[txn.currency] += txn.amount_cents
        for currency in set(balances) | set(ledger):
            assert balances.get(currency, 0) == ledger[currency] >= 0, (currency, balances, dict(ledger))


def _without_stream(table_name: str) -> None:
    """The machine never reads the table's stream (the webhook tests do), and moto keeps every record
    of a stream and deep-copies them all with the table for each item of a transaction: thousands of
    operations grew one worker past 21 GB. moto's UpdateTable cannot drop a stream's records, so its
    table is told directly."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(table_name).stream_shard = None


@pytest.fixture
def machine_env(aws, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """moto with the template's resources; SES can send (manual reminders)."""
    from invoicing import root

    boto3.client("sesv2", region_name="us-east-1").create_email_identity(EmailIdentity="seller.test")
    monkeypatch.setenv("REMINDER_FROM_EMAIL", SENDER)
    _without_stream(aws.table_name)
    root.reset()
    TOTALS.clear()
    return aws


def run_machine(capsys: Any, *, examples: int, steps: int, derandomize: bool) -> None:
    started = time.monotonic()
    run_state_machine_as_test(
        InvoiceLifecycle,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            derandomize=derandomize,
            suppress_health_check=list(HealthCheck),
        ),
    )
    with capsys.disabled():
        done = sum(v for k, v in TOTALS.items() if not k.endswith("refused"))
        refused = sum(v for k, v in TOTALS.items() if k.endswith("refused"))
        print(
            f"\nstate machine: {examples} examples x up to {steps} steps in {time.monotonic() - started:.1f}s; "
            f"operations done={done} refused as the rules say={refused} invariant violations=0"
        )
        print("  " + ", ".join(f"{k}: {v}" for k, v in sorted(TOTALS.items())))


def test_random_operation_sequences_keep_every_invariant(machine_env, capsys):
    run_machine(capsys, **QUICK, derandomize=True)


@pytest.mark.slow
def test_long_random_operation_sequences_keep_every_invariant(machine_env, capsys):
    run_machine(capsys, **FULL, derandomize=not EXPLORE)
