"""The console's invoice list and its CSV export: filters applied by DynamoDB, reads bounded.

Status and customer choose the listing (the status index, or the customer's invoices with a filter on
the status); a due-date range, overdue (open and due before today) and a part of the number are
DynamoDB filter expressions on it (use_cases/invoices.search_invoices). A page reads at most 5 Queries
of 100 invoices: when a rare match ends a page early, the page says how many it looked at and offers
to search further. The totals per currency are those of the page shown, and say so.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import views
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pages import PAGE_SIZE, STATUSES, Page, page_of

from invoicing import clock
from invoicing.errors import InvoicingError
from invoicing.root import get_services
from invoicing.use_cases import invoices

invoice_list = Router()

CSV_MAX_READS = 20  # an export reads at most 20 Queries of 100 invoices (before filtering)


@dataclass(frozen=True)
class Filters:
    status: str
    customer_id: str
    number: str
    due_from: date | None
    due_to: date | None
    overdue: bool
    cursor: str

    def params(self, **extra: Any) -> dict[str, Any]:
        return {
            "status": self.status,
            "customer_id": self.customer_id,
            "number": self.number,
            "due_from": self.due_from.isoformat() if self.due_from else "",
            "due_to": self.due_to.isoformat() if self.due_to else "",
            "overdue": "1" if self.overdue else "",
            **extra,
        }

    def due_before(self, today: date) -> date | None:
        """The due range's end: overdue means due before today."""
        if not self.overdue:
            return self.due_to
        yesterday = today - timedelta(days=1)
        return min(self.due_to, yesterday) if self.due_to else yesterday

    def search(self, cursor: str | None) -> Any:
        return invoices.search_invoices(
            get_services(),
            customer_id=self.customer_id or None,
            status=self.status or None,
            due_from=self.due_from,
            due_to=self.due_before(clock.now().date()),
            number=self.number,
            limit=PAGE_SIZE,
            starting_after=cursor or None,
        )


def parse_filters(page: Page) -> tuple[Filters, dict[str, str]]:
    q = page.event.query_string_parameters or {}
    errors: dict[str, str] = {}

    def day(name: str) -> date | None:
        raw = (q.get(name) or "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            errors[name] = views._("Enter a date like 2026-01-31.")
            return None

    status = (q.get("status") or "").strip()
    customer_id = (q.get("customer_id") or "").strip()[:64]
    if status and status not in STATUSES:
        errors["status"] = views._("Choose one of the statuses.")
        status = ""
    overdue = q.get("overdue") in ("1", "on", "true")
    if overdue or (not status and not customer_id):
        status = "open"  # overdue: open and due before today
    filters = Filters(
        status=status,
        customer_id=customer_id,
        number=(q.get("number") or "").strip()[:64],
        due_from=day("due_from"),
        due_to=day("due_to"),
        overdue=overdue,
        cursor=(q.get("cursor") or "")[:512],
    )
    if filters.due_from and filters.due_to and filters.due_from > filters.due_to:
        errors["due_to"] = views._("The range ends before it starts.")
    return filters, errors


def page_totals(rows: list[Any]) -> list[tuple[str, int, int]]:
    by_currency: dict[str, list[int]] = {}
    for inv in rows:
        sums = by_currency.setdefault(inv.currency, [0, 0])
        sums[0] += inv.total_cents
        sums[1] += inv.amount_remaining_cents
    return [(currency, total, due) for currency, (total, due) in sorted(by_currency.items())]


@invoice_list.get("/console/invoices")
def handle_get_invoices() -> Response[str]:
    page = page_of(invoice_list)
    page.require()
    filters, errors = parse_filters(page)
    rows: list[Any] = []
    listing = None
    error = ""
    if not errors:
        try:
            listing = filters.search(filters.cursor)
            rows = listing.items
        except InvoicingError as exc:
            error = views.plain_words(exc.code, exc.message)
            errors.setdefault(str(exc.details.get("field", "")), error)
    return page.html(
        "invoices.html",
        422 if errors else 200,
        title=views._("Invoices"),
        filters=filters,
        statuses=STATUSES,
        rows=rows,
        listing=listing,
        totals=page_totals(rows),
        next_cursor=listing.next_cursor if listing else None,
        errors=errors,
        error=error,
        today=clock.now().date(),
    )


@invoice_list.get("/console/invoices.csv")
def handle_get_invoices_csv() -> Response[str]:
    page = page_of(invoice_list)
    page.require()
    filters, errors = parse_filters(page)
    if errors:
        return page.html("error.html", 422, title=views._("Export refused"), message="; ".join(errors.values()))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "number",
            "id",
            "status",
            "customer_id",
            "customer_name",
            "currency",
            "total",
            "amount_due",
            "due_date",
            "finalized_at",
        ]
    )
    cursor: str | None = filters.cursor or None
    reads = 0
    try:
        while reads < CSV_MAX_READS:
            listing = filters.search(cursor)
            reads += listing.reads
            for inv in listing.items:
                writer.writerow(
                    [
                        inv.invoice_number or "",
                        inv.id,
                        inv.status.value,
                        inv.customer_id,
                        csv_text(inv.customer.name if inv.customer else ""),
                        inv.currency,
                        views.major_units(inv.total_cents, inv.currency),
                        views.major_units(inv.amount_remaining_cents, inv.currency),
                        inv.due_date.isoformat() if inv.due_date else "",
                        inv.finalized_at or "",
                    ]
                )
            cursor = listing.next_cursor
            if not cursor:
                break
    except InvoicingError as exc:
        return page.html(
            "error.html",
            exc.http_status,
            title=views._("Export refused"),
            message=views.plain_words(exc.code, exc.message),
        )
    headers = page.headers_for("text/csv; charset=utf-8")
    headers["Content-Disposition"] = f'attachment; filename="invoices-{filters.status or "customer"}.csv"'
    return Response(status_code=200, body=out.getvalue(), headers=headers)


def csv_text(value: str) -> str:
    """No spreadsheet formula injection: a cell starting with = + - @ is read as text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
