"""In-process set-up shared by the sections: a moto account with the tables of template.yaml, realistic
customers, tax rates and invoices built through the real use cases, and a DynamoDB call counter."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACTOR_NAME = "api_key:bench"

# A small consultancy's invoice: services, licences and expenses at two VAT rates (and one untaxed line).
CATALOGUE: list[tuple[str, str, int, str | None]] = [
    ("Platform subscription, Business plan\nPeriod 1-31 March, billed monthly in advance", "1", 249_00, "vat19"),
    ("Additional seats\n12 users x 1 month", "12", 15_00, "vat19"),
    ("Implementation workshop (on site, Berlin)", "1.5", 1_200_00, "vat19"),
    (
        "Data migration from legacy ERP, fixed price\nMilestone 2 of 3: customer and invoice history",
        "1",
        3_450_00,
        "vat19",
    ),
    ("Priority support retainer", "1", 490_00, "vat19"),
    ("Custom report: quarterly revenue by region", "6", 95_00, "vat19"),
    ("Training material, printed handbook", "25", 18_40, "vat7"),
    ("Travel expenses (train, Hamburg-Berlin return)", "1", 139_90, None),
]
CREATE_MAX_LINES = 95  # TransactWriteItems holds 100 actions: header, event, billing-run key, lines


def actor() -> Any:
    from invoicing.domain.events import Actor

    return Actor(principal=ACTOR_NAME, request_id="bench")


def quiet_metrics() -> None:
    """Powertools prints an EMF blob to stdout every 100 values of one metric; the bench never flushes."""
    from invoicing.observability import metrics

    metrics.clear_metrics()


@contextlib.contextmanager
def moto_account() -> Iterator[Any]:
    """A fresh moto account with every table, bucket and queue of template.yaml; yields `Services`."""
    from moto import mock_aws

    from invoicing import root
    from invoicing.root import get_services
    from tests.support.aws import create_template_resources

    with mock_aws():
        physical = create_template_resources(ROOT / "template.yaml")
        env = {
            "TABLE_NAME": physical["InvoicesTable"],
            "IDEMPOTENCY_TABLE_NAME": physical["IdempotencyTable"],
            "BUCKET_NAME": physical["DocumentsBucket"],
            "RENDER_QUEUE_URL": physical["RenderQueue"],
            "STAGE": "test",
            "PUBLIC_BASE_URL": "https://pay.example.test",
            "SELLER_NAME": "Northwind Analytics GmbH",
            "SELLER_ADDRESS": "Friedrichstrasse 123, 10117 Berlin, Germany",
            "SELLER_TAX_ID": "DE 123 456 789",
        }
        previous = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        root.reset()
        try:
            yield get_services()
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            root.reset()
            quiet_metrics()


# ---------------------------------------------------------------- realistic data through the use cases
def make_customer(svc: Any, currency: str = "USD") -> Any:
    from invoicing.use_cases.customers import create_customer

    return create_customer(
        svc,
        name="Contoso Retail AG",
        email="accounts.payable@contoso.example",
        address={"line1": "Speicherstadt 7", "city": "Hamburg", "postal_code": "20457", "country": "DE"},
        currency=currency,
        locale="en_US",
        tax_id="DE 987 654 321",
    )


def make_rates(svc: Any) -> dict[str, str]:
    from invoicing.use_cases.rates import create_tax_rate

    vat19 = create_tax_rate(svc, display_name="VAT", percentage="19", inclusive=False, country="DE")
    vat7 = create_tax_rate(svc, display_name="VAT", percentage="7", inclusive=False, country="DE")
    return {"vat19": vat19.id, "vat7": vat7.id}


def line_inputs(count: int, rates: dict[str, str], start: int = 0) -> list[Any]:
    from invoicing.use_cases.invoices import LineInput

    out = []
    for index in range(start, start + count):
        description, quantity, unit, rate = CATALOGUE[index % len(CATALOGUE)]
        if index >= len(CATALOGUE):
            description = f"{description} (item {index + 1})"
        out.append(LineInput(description, Decimal(quantity), unit, rates.get(rate) if rate else None))
    return out


def create_draft(svc: Any, customer_id: str, rates: dict[str, str], lines: int) -> Any:
    """A draft with `lines` lines: one create of up to 95, then one add-line call per extra line."""
    from invoicing.use_cases.invoices import CreateInvoice, add_line, create_invoice

    first = min(lines, CREATE_MAX_LINES)
    invoice, _ = create_invoice(
        svc,
        actor(),
        CreateInvoice(
            customer_id=customer_id, lines=tuple(line_inputs(first, rates)), memo="Thank you for your business."
        ),
    )
    for extra in line_inputs(lines - first, rates, start=first):
        invoice = add_line(svc, actor(), invoice.id, extra)
    return invoice


def finalize(svc: Any, invoice_id: str) -> tuple[Any, Any]:
    """What POST /invoices/{id}/finalize runs: finalization with the first payment link in its transaction."""
    from invoicing.use_cases.finalize import finalize_invoice

    finalized = finalize_invoice(svc, actor(), invoice_id)
    return finalized.invoice, finalized.link


# ---------------------------------------------------------------- counting DynamoDB round trips
class CallCounter:
    """Counts DynamoDB API calls (operation names as on the wire) made by any botocore client.

    PynamoDB builds its own botocore session per thread, so a hook on one session misses it; every
    client, PynamoDB's, boto3's and Powertools', goes through `BaseClient._make_api_call`, which is
    patched here. One logical call is one round trip unless botocore retries (moto never throttles).
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._original: Any = None

    def __enter__(self) -> CallCounter:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        counter = self.calls

        def counting(client: Any, operation_name: str, api_params: Any) -> Any:
            if client.meta.service_model.service_name == "dynamodb":
                counter[operation_name] += 1
            return original(client, operation_name, api_params)

        self._original = original
        BaseClient._make_api_call = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        from botocore.client import BaseClient

        BaseClient._make_api_call = self._original  # type: ignore[method-assign]

    @contextlib.contextmanager
    def span(self) -> Iterator[Counter[str]]:
        """The calls made inside the block (a fresh Counter, filled in when the block ends)."""
        before = Counter(self.calls)
        result: Counter[str] = Counter()
        try:
            yield result
        finally:
            result.update(self.calls - before)


def describe_calls(calls: Counter[str]) -> str:
    order = ["Query", "GetItem", "BatchGetItem", "TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem"]
    names = sorted(calls, key=lambda n: (order.index(n) if n in order else len(order), n))
    return ", ".join(f"{name} {calls[name]}" for name in names if calls[name])
