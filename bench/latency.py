"""Section 3: use-case latency in-process against moto, to catch regressions in our own code.

moto's timings are not DynamoDB's: moto runs in this process, deep-copies a table on every
transaction and spends most of a large read in its own response serializer. The ratio to one moto
round trip (a consistent GetItem of the customer, timed right after each sample in the same account)
is the figure to compare between runs; the absolute numbers say nothing about production latency.

Each operation runs in its own fresh moto account, so that tables stay small (moto's transaction cost
grows with the table) and one case's data does not slow the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.fixtures import (
    actor,
    create_draft,
    finalize,
    line_inputs,
    make_customer,
    make_rates,
    moto_account,
    quiet_metrics,
)
from bench.runner import Report, Row, median, ratio

SECTION = "3 latency (moto)"
BASELINE = "1 moto GetItem"


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _case(
    name: str,
    n: int,
    prepare: Callable[[Any, Any, dict[str, str]], Callable[[], Callable[[], Any]]],
) -> tuple[str, list[float], list[float]]:
    """Runs `n` (+1 warm-up) samples of one operation in a fresh account.

    `prepare(svc, customer, rates)` returns `setup()`, which (untimed) returns the zero-argument call
    to time. After each sample one baseline GetItem is timed in the same account.
    """
    samples: list[float] = []
    baseline: list[float] = []
    with moto_account() as svc:
        customer = make_customer(svc)
        rates = make_rates(svc)
        setup = prepare(svc, customer, rates)
        for i in range(n + 1):
            call = setup()
            op = _timed(call)
            base = _timed(lambda: svc.repo.get_customer(customer.id))
            quiet_metrics()
            if i:
                samples.append(op)
                baseline.append(base)
    return name, samples, baseline


def _create(svc: Any, customer: Any, rates: dict[str, str]) -> Callable[[], Callable[[], Any]]:
    from invoicing.use_cases.invoices import CreateInvoice, create_invoice

    cmd = CreateInvoice(customer_id=customer.id, lines=tuple(line_inputs(5, rates)))
    return lambda: lambda: create_invoice(svc, actor(), cmd)


def _add_line(svc: Any, customer: Any, rates: dict[str, str]) -> Callable[[], Callable[[], Any]]:
    from invoicing.use_cases.invoices import add_line

    extra = line_inputs(1, rates, start=2)[0]

    def setup() -> Callable[[], Any]:
        draft = create_draft(svc, customer.id, rates, 5)
        return lambda: add_line(svc, actor(), draft.id, extra)

    return setup


def _get(svc: Any, customer: Any, rates: dict[str, str]) -> Callable[[], Callable[[], Any]]:
    from invoicing.use_cases.invoices import get_invoice

    invoice, _ = finalize(svc, create_draft(svc, customer.id, rates, 10).id)
    return lambda: lambda: get_invoice(svc, invoice.id)


def _list(svc: Any, customer: Any, rates: dict[str, str]) -> Callable[[], Callable[[], Any]]:
    from invoicing.use_cases.invoices import list_invoices

    for _ in range(25):
        create_draft(svc, customer.id, rates, 2)
    return lambda: lambda: list_invoices(svc, customer_id=customer.id, status=None, limit=20, starting_after=None)


def _finalize(svc: Any, customer: Any, rates: dict[str, str]) -> Callable[[], Callable[[], Any]]:
    def setup() -> Callable[[], Any]:
        draft = create_draft(svc, customer.id, rates, 10)
        return lambda: finalize(svc, draft.id)

    return setup


def _void(svc: Any, customer: Any, rates: dict[str, str]) -> Callable[[], Callable[[], Any]]:
    from invoicing.use_cases.lifecycle import void_invoice

    def setup() -> Callable[[], Any]:
        invoice, _ = finalize(svc, create_draft(svc, customer.id, rates, 5).id)
        return lambda: void_invoice(svc, actor(), invoice.id)

    return setup


CASES: list[tuple[str, Callable[[Any, Any, dict[str, str]], Callable[[], Callable[[], Any]]]]] = [
    ("create draft (5 lines)", _create),
    ("add line (5 -> 6 lines)", _add_line),
    ("get (10 lines)", _get),
    ("list (page of 20)", _list),
    ("finalize (10 lines, + link)", _finalize),
    ("void (5 lines)", _void),
]


def run(report: Report, quick: bool) -> None:
    n = 10 if quick else 30
    pooled: list[float] = []
    results = []
    for name, prepare in CASES:
        case, samples, baseline = _case(name, n, prepare)
        results.append((case, samples, baseline))
        pooled.extend(baseline)
    report.add(Row.timed(SECTION, BASELINE, pooled, note="the unit: one in-process moto round trip (GetItem)"))
    for case, samples, baseline in results:
        report.add(
            Row.timed(
                SECTION,
                case,
                samples,
                baseline=BASELINE,
                ratio=ratio(median(samples), median(baseline)),
                note="regression watch; no target",
            )
        )
    report.note(
        "latency: in-process moto, NOT DynamoDB. moto deep-copies a table on every transaction and spends most "
        "of a large read in its own response serializer; compare ratios to '1 moto GetItem' between runs, never "
        "the milliseconds with production."
    )
