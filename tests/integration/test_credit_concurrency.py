"""Credit notes racing each other and finalizations racing for one balance, against the serialized
moto server (DynamoDB's per-item atomicity): never over-credited, never a balance spent twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from tests.support.builders import open_invoice_of


def _open_paid_invoice(svc, customer_id, amount=10000, *, pay=True):
    return open_invoice_of(svc, customer_id, amount, paid=pay).id


def _attempt(fn):
    from invoicing.errors import Conflict

    try:
        return fn()
    except Conflict as exc:
        return exc.code


def test_parallel_credit_notes_never_over_credit(served_aws, report):
    from invoicing.domain.credit import CreditMethod, CreditReason
    from invoicing.domain.events import Actor
    from invoicing.domain.numbering import parse_number
    from invoicing.use_cases.credit_notes import IssueCreditNote, issue_credit_note, list_balance_transactions
    from invoicing.use_cases.customers import create_customer

    svc = served_aws
    customer = create_customer(svc, name="Racer", email="race@example.test")
    invoice_id = _open_paid_invoice(svc, customer.id)
    cmd = IssueCreditNote(reason=CreditReason.OTHER, method=CreditMethod.CUSTOMER_BALANCE, amount_cents=3000)

    def issue(_):
        return _attempt(lambda: issue_credit_note(svc, Actor("api_key:test"), invoice_id, cmd))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(issue, range(12), timeout=300))
    notes = [r for r in results if not isinstance(r, str)]
    refused = [r for r in results if isinstance(r, str)]
    invoice = svc.repo.get_invoice_header(invoice_id)
    report(f"\nparallel credit notes: issued={len(notes)} refused={sorted(set(refused))}")
    # 3 x 30.00 fit in 100.00; the fourth never does, whatever the interleaving
    assert len(notes) == 3 and set(refused) <= {"credit_exceeds_creditable", "concurrent_modification"}
    assert invoice.credited_cents == 9000 <= invoice.total_cents
    assert sorted(parse_number(n.number)[2] for n in notes) == [1, 2, 3]
    balance = svc.repo.get_customer(customer.id).balances["USD"]
    ledger = list_balance_transactions(svc, customer.id)
    assert balance == 9000 == sum(t.amount_cents for t in ledger)


def test_parallel_finalizations_never_spend_one_balance_twice(served_aws, report):
    from invoicing.domain.credit import CreditMethod, CreditReason
    from invoicing.domain.events import Actor
    from invoicing.use_cases.credit_notes import IssueCreditNote, issue_credit_note, list_balance_transactions
    from invoicing.use_cases.customers import create_customer
    from invoicing.use_cases.finalize import finalize_invoice
    from invoicing.use_cases.invoices import CreateInvoice, LineInput, create_invoice

    svc = served_aws
    actor = Actor("api_key:test")
    customer = create_customer(svc, name="Spender", email="spend@example.test")
    source = _open_paid_invoice(svc, customer.id)
    issue_credit_note(
        svc,
        actor,
        source,
        IssueCreditNote(reason=CreditReason.OTHER, method=CreditMethod.CUSTOMER_BALANCE, amount_cents=5000),
    )
    line = LineInput(description="Seat", quantity=Decimal("1"), unit_amount_cents=2000)
    drafts = [create_invoice(svc, actor, CreateInvoice(customer_id=customer.id, lines=(line,)))[0].id for _ in range(6)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        invoices = list(pool.map(lambda i: finalize_invoice(svc, actor, i).invoice, drafts, timeout=300))
    applied = sum(i.applied_balance_cents for i in invoices)
    report(f"\nparallel finalizations with balance: applied={[i.applied_balance_cents for i in invoices]}")
    assert applied == 5000  # 2000 + 2000 + 1000, never more
    assert sum(1 for i in invoices if i.status.value == "paid") == 2
    balance = svc.repo.get_customer(customer.id).balances["USD"]
    ledger = list_balance_transactions(svc, customer.id)
    assert balance == 0 == sum(t.amount_cents for t in ledger)
