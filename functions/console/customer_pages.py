"""The console's customer pages: the list with its search, one customer, and its edit form.

The list reads customers newest first from the `CUSTOMERS` index; a search (the start of the name, of
a word of it, or of the e-mail address) reads at most a bounded stretch per page
(use_cases/customers.list_customers) and says how far it looked.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import forms
import views
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pages import PAGE_SIZE, Page, page_of

from invoicing.errors import InvoicingError, NotFound
from invoicing.root import get_services
from invoicing.use_cases import credit_notes, customers, invoices

customer_pages = Router()


@customer_pages.get("/console/customers")
def handle_get_customers() -> Response[str]:
    page = page_of(customer_pages)
    page.require()
    q = page.event.query_string_parameters or {}
    wanted = (q.get("id") or "").strip()
    if wanted:
        return page.redirect(f"/customers/{quote(wanted, safe='')}")
    search = (q.get("q") or "").strip()[:100]
    cursor = (q.get("cursor") or "").strip()[:512]
    try:
        listing = customers.list_customers(
            get_services(), search=search, limit=PAGE_SIZE, starting_after=cursor or None
        )
    except InvoicingError as exc:
        return page.html(
            "customers.html",
            exc.http_status,
            title=views._("Customers"),
            search=search,
            rows=[],
            listing=None,
            error=views.plain_words(exc.code, exc.message),
        )
    return page.html(
        "customers.html", title=views._("Customers"), search=search, rows=listing.items, listing=listing, error=""
    )


@customer_pages.get("/console/customers/<customer_id>")
def handle_get_customer(customer_id: str) -> Response[str]:
    page = page_of(customer_pages)
    page.require()
    try:
        return _customer_page(page, customer_id)
    except NotFound:
        return page.not_found()


@customer_pages.post("/console/customers/<customer_id>")
def handle_post_customer(customer_id: str) -> Response[str]:
    """The customer's edit form (clerk): name, e-mail, locale, time zone, tax id."""
    page = page_of(customer_pages)
    page.require("clerk")
    form = page.form
    changes = customers.UpdateCustomer(
        **{
            name: form.get(name).strip()
            for name in ("name", "email", "locale", "timezone", "tax_id")
            if name in form.fields
        }
    )
    try:
        forms.run_once(page, lambda: {"customer": customers.update_customer(get_services(), customer_id, changes).id})
    except InvoicingError as exc:
        if isinstance(exc, NotFound):
            return page.not_found()
        field = str(exc.details.get("field") or "name")
        return _customer_page(
            page, customer_id, exc.http_status, errors={field: views.plain_words(exc.code, exc.message)}
        )
    return page.redirect(f"/customers/{quote(customer_id, safe='')}?done=saved")


def _customer_page(page: Page, customer_id: str, status: int = 200, **context: Any) -> Response[str]:
    svc = get_services()
    customer = customers.get_customer(svc, customer_id)
    listing = invoices.list_invoices(svc, customer_id=customer_id, status=None, limit=PAGE_SIZE, starting_after=None)
    ledger = credit_notes.list_balance_transactions(svc, customer_id)
    return page.html(
        "customer.html",
        status,
        title=customer.name,
        customer=customer,
        rows=listing.items,
        ledger=ledger,
        errors=context.pop("errors", {}),
        done=(page.event.query_string_parameters or {}).get("done", ""),
    )
