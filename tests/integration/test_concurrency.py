"""Concurrency against a serialized moto server (DynamoDB's per-item atomicity, unlike in-process moto).

Many finalizations at once must give each customer a gapless, duplicate-free sequence; many replays
of one billing-run create must give one invoice. Loops are bounded in count and time, on 127.0.0.1.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.builders import draft_of

pytestmark = pytest.mark.soak  # make test-slow repeats it at full size

# make test: 3 customers x 12; make test-slow (RUN_SLOW=1): 5 customers x 40 = 200 finalizations
SLOW = bool(os.environ.get("RUN_SLOW"))
CUSTOMERS, PER_CUSTOMER = (5, 40) if SLOW else (3, 12)


def _draft(svc, customer_id):
    return draft_of(svc, customer_id, 1000).id


def test_concurrent_finalizations_give_gapless_unique_numbers(served_aws, report):
    from invoicing.domain.events import Actor
    from invoicing.domain.numbering import parse_number
    from invoicing.use_cases.customers import create_customer
    from invoicing.use_cases.finalize import finalize_invoice

    svc = served_aws
    customers = [create_customer(svc, name=f"C{i}", email=f"c{i}@example.test").id for i in range(CUSTOMERS)]
    drafts = [(c, _draft(svc, c)) for c in customers for _ in range(PER_CUSTOMER)]
    started = time.monotonic()

    def finalize(pair):
        customer_id, invoice_id = pair
        return customer_id, finalize_invoice(svc, Actor("api_key:test"), invoice_id).invoice.invoice_number

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(finalize, drafts, timeout=600))
    elapsed = time.monotonic() - started
    by_customer: dict[str, list[int]] = {}
    for customer_id, number in results:
        by_customer.setdefault(customer_id, []).append(parse_number(number)[2])
    duplicates = sum(n - 1 for seq in by_customer.values() for n in Counter(seq).values() if n > 1)
    missing = sum(len(set(range(1, len(seq) + 1)) - set(seq)) for seq in by_customer.values())
    report(
        f"\nconcurrent finalizations: {len(results)} across {len(customers)} customers, 8 threads, "
        f"{elapsed:.1f}s; duplicates={duplicates} missing={missing}"
    )
    assert duplicates == 0 and missing == 0
    for seq in by_customer.values():
        assert sorted(seq) == list(range(1, PER_CUSTOMER + 1))


def test_concurrent_billing_run_replays_create_one_invoice(served_aws, report):
    from datetime import date

    from invoicing.domain.events import Actor
    from invoicing.use_cases.customers import create_customer
    from invoicing.use_cases.invoices import CreateInvoice, create_invoice

    svc = served_aws
    customer = create_customer(svc, name="Runner", email="run@example.test")
    cmd = CreateInvoice(
        customer_id=customer.id, subscription_id="sub_9", period_start=date(2026, 11, 1), period_end=date(2026, 11, 30)
    )

    def create(_):
        invoice, created = create_invoice(svc, Actor("api_key:billing"), cmd)
        return invoice.id, created

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(create, range(100 if SLOW else 40), timeout=300))
    ids = {r[0] for r in results}
    report(
        f"\nconcurrent billing-run replays: {len(results)}, invoices={len(ids)}, "
        f"created={sum(1 for r in results if r[1])}"
    )
    assert len(ids) == 1 and sum(1 for r in results if r[1]) == 1
