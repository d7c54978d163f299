"""Section 2, console rows: DynamoDB calls per page of the finance console (issue #16, bounded reads).

The real ConsoleFunction handler, signed in as a clerk through the login form (moto's Cognito, its
JWKS), serves the invoice list (plain and filtered), an invoice's detail page, the aging report and
the customers list (plain and searched); every DynamoDB call they make is counted. The detail page is counted twice, with few and with many payments and events,
to show it does not grow with them (no N+1).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from bench.fixtures import CallCounter, actor, quiet_metrics
from bench.runner import Report, Row

SECTION = "2 dynamodb"


def _row(case: str, calls: Counter[str], target: str, met: bool) -> Row:
    detail = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
    return Row(SECTION, case, float(sum(calls.values())), None, "calls", 1, target=target, met=met, note=detail)


def run(report: Report, svc: Any, counter: CallCounter, customer_id: str) -> None:
    import boto3
    from joserfc.jwk import KeySet

    from invoicing.domain.payments import PaymentMethod
    from invoicing.use_cases.payments import RecordPayment, record_payment
    from tests.conftest import ROOT
    from tests.integration.conftest import load_function
    from tests.support import console as support
    from tests.support.aws import IDENTITY_TYPES, create_template_resources
    from tests.support.builders import open_invoice_of

    create_template_resources(ROOT / "template.yaml", IDENTITY_TYPES)
    idp = boto3.client("cognito-idp", region_name="us-east-1")
    pool_id = idp.list_user_pools(MaxResults=10)["UserPools"][0]["Id"]
    client_id = idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=10)["UserPoolClients"][0]["ClientId"]
    secret_arn = boto3.client("secretsmanager", region_name="us-east-1").list_secrets()["SecretList"][0]["ARN"]
    os.environ.update(
        {"CONSOLE_USER_POOL_ID": pool_id, "CONSOLE_CLIENT_ID": client_id, "CONSOLE_SESSION_SECRET_ARN": secret_arn}
    )
    app = load_function("console")
    import auth

    from invoicing import root

    root.reset()
    keys = KeySet.import_key_set(support.moto_jwks())
    auth._jwks.key_set = lambda url, refresh=False: keys  # type: ignore[method-assign]  # moto's JWKS, no HTTP
    support.add_user(idp, pool_id, "bench@acme.example", "clerk")
    browser = support.Browser(app.handle_console_request)
    assert browser.sign_in("bench@acme.example") == 303

    few = open_invoice_of(svc, customer_id, 100_000)
    many = open_invoice_of(svc, customer_id, 100_000)
    for _ in range(20):
        record_payment(svc, actor(), many.id, RecordPayment(amount_cents=100, method=PaymentMethod.CASH))
    quiet_metrics()

    def page(path: str, **query: str) -> Counter[str]:
        with counter.span() as calls:
            status, body, _ = browser.request("GET", path, query=query or None)
        assert status == 200, (path, status, body[:300])
        return calls

    listing = page("/console/invoices", status="open")
    shards = svc.settings.index_shards  # the status listing is sharded (issue #20): one Query per shard
    report.add(
        _row(
            "console: invoice list page (status=open)",
            listing,
            f"= 1 Query per shard ({shards})",
            listing == Counter({"Query": shards}),
        )
    )
    detail_few = page(f"/console/invoices/{few.id}")
    detail_many = page(f"/console/invoices/{many.id}")
    report.add(
        _row("console: invoice detail page (1 payment)", detail_few, "<= 10 reads", sum(detail_few.values()) <= 10)
    )
    report.add(
        _row(
            "console: invoice detail page (20 payments, 22 events)",
            detail_many,
            "= the 1-payment page",
            detail_many == detail_few,
        )
    )
    aging = page("/console/reports")
    report.add(
        _row(
            "console: reports page (aging, per month)",
            aging,
            "<= 40 Query (10 pages x 2 statuses, 5 pages x 4 payment shards)",
            aging["Query"] <= 40 and set(aging) == {"Query"},
        )
    )
    overdue = page("/console/invoices", overdue="1")
    report.add(
        _row(
            "console: invoice list page (overdue, a DynamoDB filter)",
            overdue,
            f"<= 5 Query per shard ({5 * shards})",
            overdue["Query"] <= 5 * shards and set(overdue) == {"Query"},
        )
    )
    customers = page("/console/customers")
    report.add(_row("console: customers list page", customers, "= 1 Query", customers == Counter({"Query": 1})))
    search = page("/console/customers", q="bench")
    report.add(
        _row(
            "console: customers search page",
            search,
            "<= 5 Query (5 x 100 customers)",
            search["Query"] <= 5 and set(search) == {"Query"},
        )
    )
