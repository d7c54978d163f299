"""Concurrency over HTTP against the stack `make dev` runs (`python -m local`, on 127.0.0.1 only):
API Gateway emulation, the real authorizer and functions, DynamoDB in DynamoDB Local (AWS's own
engine, no lock; moto, serialized, only where Java or the jar is missing: see local/dynamodb_local.py).

Every loop is bounded in count (fixed lists of requests) and in time (pool.map timeouts, HTTP
timeouts, a bounded number of client retries). Each test prints its figures (the `report` fixture).

    make test       5 customers x 8 finalizations, 40 billing-run replays, 50 token uses,
                    50 webhook deliveries, 12 credit notes
    make test-slow  5 x 40 = 200 finalizations and 100 replays (RUN_SLOW=1); the rest as above

A client retries only what the API tells it to retry: 409 `concurrent_modification` (the finalize
transaction lost its retries to other writers of the same counter) and, for webhooks, any non-2xx,
as Stripe redelivers. The figures say how many retries were needed.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from local.dynamodb_local import DynamoDBLocal
from local.testing import REPO_ROOT, LocalStack, free_port, start_local_stack
from tests.support.stripe_events import WEBHOOK_SECRET, session_event, sign

pytestmark = [pytest.mark.e2e, pytest.mark.soak]

SLOW = bool(os.environ.get("RUN_SLOW"))
CUSTOMERS, PER_CUSTOMER = 5, (40 if SLOW else 8)
REPLAYS = 100 if SLOW else 40
TOKEN_USES = 50
WEBHOOK_DELIVERIES = 50
CREDIT_NOTES = 12
THREADS = 8  # clients at once; the local stack runs every function in one process on this 2-core machine
CLIENT_RETRIES = 5
POOL_TIMEOUT = 600  # seconds for a whole pool.map
HTTP_TIMEOUT = 60

Api = Callable[..., tuple[int, Any]]
Report = Callable[[str], None]


def _stack(*parameters: str) -> Iterator[LocalStack]:
    args = [arg for p in parameters for arg in ("--parameter", p)]
    # no SQS pollers and no schedules: the PDF renders finalize enqueues wait in the queue, so the
    # figures are the API's and the table's, not Chromium's
    stack = start_local_stack([*args, "--no-queues", "--no-schedules"], port=free_port(), cwd=REPO_ROOT, timeout=60)
    try:
        if DynamoDBLocal().unavailable_reason() is None:  # what `make dev` runs: never moto by accident
            assert stack.dynamodb_engine == "dynamodb-local", stack.log()
        yield stack
    finally:
        code = stack.stop()
        if code not in (0, None):
            print(f"\n---- python -m local exited {code}; its output:\n{stack.log()}")
        stack.cleanup()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """Local payments (the Pay button pays at once) and no per-IP pay limit: every request here
    comes from 127.0.0.1, and the limit has its own tests."""
    yield from _stack("PaymentProvider=local", "PayRateLimitPerMinute=100000")


@pytest.fixture(scope="module")
def stripe_stack() -> Iterator[LocalStack]:
    """Stripe as the provider; its secrets in the local SSM Parameter Store as in a deployment."""
    for stack in _stack("PaymentProvider=stripe", "PayRateLimitPerMinute=100000"):
        ssm = stack.client("ssm")
        ssm.put_parameter(Name="/invoicing/stripe/secret-key", Value="sk_test_unused", Type="SecureString")
        ssm.put_parameter(Name="/invoicing/stripe/webhook-secret", Value=WEBHOOK_SECRET, Type="SecureString")
        yield stack


def _api(stack: LocalStack) -> Api:
    def call(method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {stack.api_key}", **kw.pop("headers", {})}
        response = requests.request(
            method, stack.api_url + path, json=body, headers=headers, timeout=HTTP_TIMEOUT, **kw
        )
        return response.status_code, (response.json() if response.content else None)

    return call


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Api:
    return _api(stack)


def _customer(api: Api, name: str) -> str:
    status, body = api("POST", "/customers", {"name": name, "email": f"{name.lower()}@example.test"})
    assert status == 201, body
    return str(body["id"])


def _draft(api: Api, customer_id: str, amount: int = 10000) -> str:
    line = {"description": "Seat", "quantity": 1, "unit_amount_cents": amount}
    status, body = api("POST", "/invoices", {"customer_id": customer_id, "lines": [line]})
    assert status == 201, body
    return str(body["id"])


def _finalize(api: Api, invoice_id: str) -> tuple[dict[str, Any], int]:
    """Finalize, retrying only what the API says to retry. Returns the invoice and the retries."""
    for retry in range(CLIENT_RETRIES):
        status, body = api("POST", f"/invoices/{invoice_id}/finalize")
        if status == 200:
            return body, retry
        assert status == 409 and body["error"]["code"] == "concurrent_modification", (status, body)
    raise AssertionError(f"finalize {invoice_id} still conflicting after {CLIENT_RETRIES} tries")


def _all_pages(api: Api, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):  # bounded: 100 pages of 100
        status, page = api(
            "GET", path, params={**params, "limit": 100, **({"starting_after": cursor} if cursor else {})}
        )
        assert status == 200, page
        items += page["data"]
        cursor = page.get("next_cursor")
        if not page["has_more"]:
            return items
    raise AssertionError(f"{path}: more than 100 pages")


def _warm(response: requests.Response, expected: int) -> None:
    """One request before a burst. Lambda starts a container per concurrent request; the local stack
    runs every invocation in one process, so 50 first requests at once would share one cold start
    (imports, clients, secrets) and time out together. Warm, the burst measures the race itself."""
    assert response.status_code == expected, response.text[:200]


def _number(invoice_number: str) -> int:
    return int(invoice_number.rsplit("-", 1)[1])


def test_concurrent_finalizations_give_gapless_unique_numbers(stack: LocalStack, api: Api, report: Report) -> None:
    customers = [_customer(api, f"Finalizer{i}") for i in range(CUSTOMERS)]
    with ThreadPoolExecutor(THREADS) as pool:
        drafts = list(pool.map(lambda c: (c, _draft(api, c)), customers * PER_CUSTOMER, timeout=POOL_TIMEOUT))
    random.Random(9).shuffle(drafts)  # customers interleaved, as in a billing run
    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda pair: (pair[0], *_finalize(api, pair[1])), drafts, timeout=POOL_TIMEOUT))
    elapsed = time.monotonic() - started

    # what the API answered, and what the table holds afterwards
    answered: dict[str, list[int]] = {}
    for customer_id, invoice, _ in results:
        answered.setdefault(customer_id, []).append(_number(invoice["invoice_number"]))
    stored = {
        c: [_number(i["invoice_number"]) for i in _all_pages(api, "/invoices", {"customer_id": c, "status": "open"})]
        for c in customers
    }
    duplicates = sum(n - 1 for seq in answered.values() for n in Counter(seq).values() if n > 1)
    missing = sum(len(set(range(1, PER_CUSTOMER + 1)) - set(seq)) for seq in answered.values())
    retries = sum(r for *_, r in results)
    report(
        f"\nHTTP concurrent finalizations ({stack.dynamodb_engine}): {len(results)} across {CUSTOMERS} customers, "
        f"{THREADS} clients, "
        f"{elapsed:.1f}s ({len(results) / elapsed:.1f}/s); duplicates={duplicates} missing={missing} "
        f"client retries on 409 concurrent_modification={retries}"
    )
    assert duplicates == 0 and missing == 0
    for customer_id in customers:
        assert sorted(answered[customer_id]) == list(range(1, PER_CUSTOMER + 1))
        assert sorted(stored[customer_id]) == list(range(1, PER_CUSTOMER + 1))


def test_concurrent_billing_run_replays_create_one_invoice(api: Api, report: Report) -> None:
    customer_id = _customer(api, "Runner")
    body = {
        "customer_id": customer_id,
        "subscription_id": "sub_e2e_9",
        "period_start": "2026-11-01",
        "period_end": "2026-11-30",
        "lines": [{"description": "Plan", "quantity": 1, "unit_amount_cents": 4900}],
    }
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: api("POST", "/invoices", body), range(REPLAYS), timeout=POOL_TIMEOUT))
    statuses = Counter(status for status, _ in results)
    ids = {b["id"] for _, b in results if isinstance(b, dict) and "id" in b}
    stored = _all_pages(api, "/invoices", {"customer_id": customer_id})
    report(
        f"\nHTTP billing-run replays: {REPLAYS}, statuses={dict(statuses)}, invoices={len(ids)}, stored={len(stored)}"
    )
    assert statuses == Counter({201: 1, 200: REPLAYS - 1}), results[:3]
    assert len(ids) == 1 and [i["id"] for i in stored] == list(ids)


def test_concurrent_uses_of_one_payment_token_pay_once(stack: LocalStack, api: Api, report: Report) -> None:
    invoice, _ = _finalize(api, _draft(api, _customer(api, "Payer"), amount=15000))
    pay_url = f"{stack.api_url}/pay/{invoice['payment_url'].rsplit('/', 1)[1]}"
    _warm(requests.get(pay_url, timeout=HTTP_TIMEOUT), 200)
    barrier = threading.Barrier(TOKEN_USES, timeout=60)

    def use(_: int) -> int:
        barrier.wait()
        return requests.post(pay_url, data={"amount_cents": "15000"}, timeout=HTTP_TIMEOUT).status_code

    with ThreadPoolExecutor(TOKEN_USES) as pool:
        statuses = Counter(pool.map(use, range(TOKEN_USES), timeout=POOL_TIMEOUT))
    _, payments = api("GET", f"/invoices/{invoice['id']}/payments")
    _, after = api("GET", f"/invoices/{invoice['id']}")
    _, events = api("GET", f"/invoices/{invoice['id']}/events")
    recorded = [e for e in events["data"] if e["type"] == "invoice.payment_recorded"]
    report(
        f"\nHTTP uses of one payment token: {TOKEN_USES}, statuses={dict(statuses)}, payments={len(payments['data'])}"
    )
    assert statuses[200] == 1 and set(statuses) <= {200, 404}, statuses  # the rest: the neutral page
    assert len(payments["data"]) == 1 and len(recorded) == 1
    assert after["status"] == "paid" and after["amount_paid_cents"] == 15000


def test_duplicate_webhook_deliveries_record_one_payment(stripe_stack: LocalStack, report: Report) -> None:
    api = _api(stripe_stack)
    invoice, _ = _finalize(api, _draft(api, _customer(api, "Hooked"), amount=15000))
    payload = session_event(invoice_id=invoice["id"], link_id=None)
    headers = {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": sign(payload)}
    badly_signed = {**headers, "Stripe-Signature": sign(payload, secret="whsec_not_ours")}
    _warm(requests.post(f"{stripe_stack.api_url}/webhooks/stripe", data=payload, headers=badly_signed, timeout=60), 400)
    barrier = threading.Barrier(WEBHOOK_DELIVERIES, timeout=60)

    failures: Counter[str] = Counter()

    def deliver(_: int) -> tuple[str, int]:
        barrier.wait()
        for attempt in range(CLIENT_RETRIES):  # Stripe redelivers anything but a 2xx
            response = requests.post(
                f"{stripe_stack.api_url}/webhooks/stripe", data=payload.encode(), headers=headers, timeout=HTTP_TIMEOUT
            )
            if response.status_code == 200:
                return response.json()["outcome"], attempt
            failures[f"{response.status_code} {response.text[:120]}"] += 1
        raise AssertionError(f"webhook still failing after {CLIENT_RETRIES} deliveries: {response.status_code}")

    with ThreadPoolExecutor(WEBHOOK_DELIVERIES) as pool:
        results = list(pool.map(deliver, range(WEBHOOK_DELIVERIES), timeout=POOL_TIMEOUT))
    outcomes = Counter(outcome for outcome, _ in results)
    _, payments = api("GET", f"/invoices/{invoice['id']}/payments")
    _, after = api("GET", f"/invoices/{invoice['id']}")
    report(
        f"\nHTTP duplicate webhooks: {WEBHOOK_DELIVERIES}, outcomes={dict(outcomes)}, "
        f"redeliveries={sum(r for _, r in results)} ({dict(failures)}), payments={len(payments['data'])}"
    )
    _, events = api("GET", f"/invoices/{invoice['id']}/events")
    recorded = [e for e in events["data"] if e["type"] == "invoice.payment_recorded"]
    # "recorded" is answered at most once; it can be 0 only if that answer was lost (a 5xx after the
    # commit) and its redelivery then said "duplicate". One payment, one event, either way.
    assert outcomes["recorded"] <= 1 and set(outcomes) <= {"recorded", "duplicate"}, outcomes
    assert outcomes["recorded"] == 1 or failures, outcomes
    assert (
        len(payments["data"]) == 1
        and len(recorded) == 1
        and after["status"] == "paid"
        and after["amount_paid_cents"] == 15000
    )


def test_concurrent_credit_notes_never_over_credit(api: Api, report: Report) -> None:
    invoice, _ = _finalize(api, _draft(api, _customer(api, "Creditor"), amount=10000))
    body = {"amount_cents": 3000, "reason": "other", "method": "customer_balance"}
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(
            pool.map(
                lambda _: api("POST", f"/invoices/{invoice['id']}/credit-notes", body),
                range(CREDIT_NOTES),
                timeout=POOL_TIMEOUT,
            )
        )
    issued = [b for s, b in results if s == 201]
    refused = Counter(b["error"]["code"] for s, b in results if s != 201)
    _, after = api("GET", f"/invoices/{invoice['id']}")
    _, stored = api("GET", f"/invoices/{invoice['id']}/credit-notes")
    report(
        f"\nHTTP concurrent credit notes: {CREDIT_NOTES} x 30.00 on 100.00, issued={len(issued)}, "
        f"refused={dict(refused)}, credited={after['credited_cents']}"
    )
    # 3 x 30.00 fit in 100.00; a 4th never does, whatever the interleaving. A refusal is a clear 409.
    assert all(s in (201, 409) for s, _ in results), results
    assert set(refused) <= {"credit_exceeds_creditable", "concurrent_modification"}
    assert after["credited_cents"] == 3000 * len(issued) <= after["total_cents"]
    assert len(stored["data"]) == len(issued)
    assert sorted(_number(n["number"]) for n in issued) == list(range(1, len(issued) + 1))
    # retrying the refused ones until each gets a final answer fills the invoice exactly to 90.00
    for status, _ in results:
        if status == 201:
            continue
        for _ in range(CLIENT_RETRIES):
            status, answer = api("POST", f"/invoices/{invoice['id']}/credit-notes", body)
            if status == 201 or answer["error"]["code"] == "credit_exceeds_creditable":
                break
    _, after = api("GET", f"/invoices/{invoice['id']}")
    assert after["credited_cents"] == 9000
