"""The console's invoice pages: one invoice (with its PDF), every action on it, and the draft editor.

Rights: viewer reads; clerk also writes (drafts and every invoice action). Every POST checks the
session's CSRF token first and runs its use case once per form (forms.run_once); errors are shown in
plain words next to the form they concern, never a stack trace. The list is invoice_list.py.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import forms
import views
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pages import ACTIONS, Page, page_of

from invoicing.domain.credit import CreditMethod, CreditReason, LineCredit
from invoicing.domain.invoice import InvoiceStatus, can_transition
from invoicing.domain.payments import PaymentMethod
from invoicing.errors import InvoicingError, NotFound, ValidationFailed
from invoicing.observability import logger
from invoicing.root import get_services
from invoicing.use_cases import credit_notes, documents, finalize, invoices, lifecycle, payments, rates
from invoicing.use_cases import reminders as reminder_uc

invoice_pages = Router()


# ---------------------------------------------------------------- invoices (the list: invoice_list.py)
def _detail(page: Page, invoice_id: str, status: int = 200, **context: Any) -> Response[str]:
    svc = get_services()
    invoice = invoices.get_invoice(svc, invoice_id)
    finalized = not invoice.is_draft
    status_now = invoice.status
    allowed = {
        "finalize": invoice.is_draft,
        "payments": status_now is InvoiceStatus.OPEN,
        "credit": status_now in (InvoiceStatus.OPEN, InvoiceStatus.PAID),
        "remind": status_now is InvoiceStatus.OPEN,
        "void": can_transition(status_now, InvoiceStatus.VOID) and not invoice.is_draft,
        "uncollectible": can_transition(status_now, InvoiceStatus.UNCOLLECTIBLE),
    }
    pdf_origin = documents.pdf_origin(svc, invoice)
    return page.html(
        "invoice.html",
        status,
        frame_src=pdf_origin or "",
        pdf_preview=pdf_origin is not None,
        title=invoice.invoice_number or views._("Draft invoice"),
        inv=invoice,
        taxes=documents.tax_breakdown(invoice) if finalized else [],
        events=list(reversed(invoices.list_events(svc, invoice_id))),
        payments=payments.list_payments(svc, invoice_id) if finalized else [],
        notes=credit_notes.list_credit_notes(svc, invoice_id) if finalized else [],
        reminders=reminder_uc.list_reminders(svc, invoice_id) if finalized else [],
        can_write=page.person is not None and page.person.can("clerk"),
        allowed=allowed,
        payment_methods=[m.value for m in PaymentMethod],
        credit_reasons=[r.value for r in CreditReason],
        credit_methods=[m.value for m in CreditMethod],
        done=(page.event.query_string_parameters or {}).get("done", ""),
        form_error=context.pop("form_error", {}),
        pay_url=context.pop("pay_url", ""),
        **context,
    )


@invoice_pages.get("/console/invoices/<invoice_id>")
def handle_get_invoice(invoice_id: str) -> Response[str]:
    page = page_of(invoice_pages)
    page.require()
    try:
        return _detail(page, invoice_id)
    except NotFound:
        return page.not_found()


@invoice_pages.get("/console/invoices/<invoice_id>/pdf")
def handle_get_invoice_pdf(invoice_id: str) -> Response[str]:
    page = page_of(invoice_pages)
    page.require()
    try:
        url, _expires = documents.pdf_download(get_services(), invoice_id)
    except InvoicingError as exc:
        return page.html(
            "error.html", exc.http_status, title=views._("No PDF yet"), message=views.plain_words(exc.code, exc.message)
        )
    headers = page.headers_for()
    headers["Location"] = url
    return Response(status_code=302, body="", headers=headers)


# ---------------------------------------------------------------- invoice actions
def _int_amount(page: Page, currency: str, field: str) -> int:
    try:
        return views.parse_amount(page.form.get(field), currency, field)
    except views.FieldError as exc:
        raise ValidationFailed(exc.message, details={"field": field}) from None


def _act(page: Page, invoice_id: str, action: str) -> dict[str, Any]:
    """Run one action's use case; the result says where to go next (stored for a replayed form)."""
    svc, actor, form = get_services(), page.actor(), page.form
    if action == "finalize":
        finalize.finalize_invoice(svc, actor, invoice_id)
        return {"go": f"/invoices/{invoice_id}?done=finalized"}
    if action == "void":
        _voided, copy = lifecycle.void_invoice(svc, actor, invoice_id, reissue=form.get("reissue") == "1")
        if copy is not None:
            return {"go": f"/invoices/{copy.id}?done=reissued"}
        return {"go": f"/invoices/{invoice_id}?done=voided"}
    if action == "mark-uncollectible":
        lifecycle.mark_uncollectible(svc, actor, invoice_id)
        return {"go": f"/invoices/{invoice_id}?done=uncollectible"}
    invoice = invoices.get_invoice(svc, invoice_id)
    if action == "payments":
        method = form.get("method")
        if method not in {m.value for m in PaymentMethod}:
            raise ValidationFailed("choose how it was paid", details={"field": "method"})
        cmd = payments.RecordPayment(
            amount_cents=_int_amount(page, invoice.currency, "amount"),
            method=PaymentMethod(method),
            reference=form.get("reference")[:200],
        )
        payments.record_payment(svc, actor, invoice_id, cmd)
        return {"go": f"/invoices/{invoice_id}?done=payment"}
    if action == "credit-notes":
        reason, method = form.get("reason"), form.get("credit_method")
        if reason not in {r.value for r in CreditReason}:
            raise ValidationFailed("choose a reason", details={"field": "reason"})
        if method not in {m.value for m in CreditMethod}:
            raise ValidationFailed("choose where the credit goes", details={"field": "credit_method"})
        # by lines (a quantity of each original line) when any is given, else by amount
        line_credits = []
        for line in invoice.lines:
            typed = form.get(f"credit_qty_{line.id}").strip()
            if not typed:
                continue
            try:
                quantity = Decimal(typed)
                if not quantity.is_finite() or quantity <= 0:
                    raise InvalidOperation
            except InvalidOperation:
                raise ValidationFailed(
                    "enter a quantity above zero to credit", details={"field": f"credit_qty_{line.id}"}
                ) from None
            line_credits.append(LineCredit(line_id=line.id, quantity=quantity))
        note = credit_notes.issue_credit_note(
            svc,
            actor,
            invoice_id,
            credit_notes.IssueCreditNote(
                reason=CreditReason(reason),
                method=CreditMethod(method),
                amount_cents=None if line_credits else _int_amount(page, invoice.currency, "credit_amount"),
                lines=tuple(line_credits),
                memo=form.get("memo")[:500],
            ),
        )
        return {"go": f"/invoices/{invoice_id}?done=credit_note&number={quote(note.number)}"}
    if action == "reminders":
        reminder_uc.send_manual_reminder(svc, actor, invoice_id)
        return {"go": f"/invoices/{invoice_id}?done=reminder"}
    if action == "pdf":
        documents.request_render(svc, actor, invoice_id)
        return {"go": f"/invoices/{invoice_id}?done=pdf"}
    if action == "payment-link":
        issued = payments.issue_payment_link(svc, actor, invoice_id)
        return {"pay_url": issued.url}
    raise NotFound(f"no action {action}")


@invoice_pages.post("/console/invoices/<invoice_id>/<action>")
def handle_post_invoice_action(invoice_id: str, action: str) -> Response[str]:
    page = page_of(invoice_pages)
    page.require("clerk")
    if action not in ACTIONS:
        return page.not_found()
    try:
        result = forms.run_once(page, lambda: _act(page, invoice_id, action))
    except InvoicingError as exc:
        if isinstance(exc, NotFound) and exc.code == "not_found" and "invoice" not in exc.message:
            return page.not_found()
        field = str(exc.details.get("field") or "")
        message = views.plain_words(exc.code, exc.message)
        logger.info("console action refused", extra={"action": action, "error_code": exc.code})
        try:
            return _detail(
                page, invoice_id, exc.http_status, form_error={"action": action, "field": field, "message": message}
            )
        except NotFound:
            return page.not_found()
    if "pay_url" in result:
        return _detail(page, invoice_id, pay_url=result["pay_url"])
    return page.redirect(str(result["go"]))


# ---------------------------------------------------------------- drafts
def _draft_lines(page: Page, currency: str) -> tuple[list[invoices.LineInput], dict[str, str], list[dict[str, Any]]]:
    """The line editor's rows (description[], quantity[], unit_amount[], tax_rate_id[]) as LineInputs,
    the field errors (``line-<n>-<field>``), and the rows as typed (to show them again)."""
    form = page.form
    descriptions, quantities = form.all("description"), form.all("quantity")
    amounts, taxes = form.all("unit_amount"), form.all("tax_rate_id")
    lines: list[invoices.LineInput] = []
    errors: dict[str, str] = {}
    typed: list[dict[str, Any]] = []
    for n in range(min(len(descriptions), 50)):
        description = descriptions[n].strip()[:500]
        qty_text = (quantities[n] if n < len(quantities) else "").strip()
        amount_text = (amounts[n] if n < len(amounts) else "").strip()
        tax_rate_id = (taxes[n] if n < len(taxes) else "").strip() or None
        row: dict[str, Any] = {
            "description": description,
            "quantity": qty_text,
            "unit_amount": amount_text,
            "tax_rate_id": tax_rate_id or "",
            "amount": None,
        }
        typed.append(row)
        if not description and not qty_text and not amount_text:
            continue
        if not description:
            errors[f"line-{n}-description"] = "Describe this line."
        try:
            quantity = Decimal(qty_text or "1")
            if not quantity.is_finite() or quantity <= 0:
                raise InvalidOperation
        except InvalidOperation:
            errors[f"line-{n}-quantity"] = "Enter a quantity above zero, like 1 or 2.5."
            continue
        try:
            unit = views.parse_amount(amount_text, currency, f"line-{n}-unit_amount")
        except views.FieldError as exc:
            errors[exc.field] = exc.message
            continue
        from invoicing.domain import money

        row["amount"] = money.line_amount(quantity, unit)
        if description:
            lines.append(
                invoices.LineInput(
                    description=description, quantity=quantity, unit_amount_cents=unit, tax_rate_id=tax_rate_id
                )
            )
    return lines, errors, typed


def _currency(page: Page) -> tuple[str, str]:
    from invoicing.domain import money

    raw = page.form.get("currency", "EUR").strip().upper() or "EUR"
    try:
        return money.normalize_currency(raw), ""
    except InvoicingError:
        return "EUR", "Choose a currency by its three-letter code, like EUR."


def _draft_form(page: Page, status: int = 200, **context: Any) -> Response[str]:
    svc = get_services()
    return page.html(
        "draft.html",
        status,
        title=views._("New draft invoice"),
        tax_rates=rates.list_tax_rates(svc, active=True),
        customer_id=context.pop("customer_id", (page.event.query_string_parameters or {}).get("customer_id", "")),
        currency=context.pop("currency", "EUR"),
        rows=context.pop(
            "rows", [{"description": "", "quantity": "1", "unit_amount": "", "tax_rate_id": "", "amount": None}] * 2
        ),
        errors=context.pop("errors", {}),
        subtotal=context.pop("subtotal", None),
        **context,
    )


@invoice_pages.get("/console/invoices/new")
def handle_get_new_draft() -> Response[str]:
    page = page_of(invoice_pages)
    page.require("clerk")
    return _draft_form(page)


@invoice_pages.post("/console/invoices/totals")
def handle_post_draft_totals() -> Response[str]:
    """The line editor's live totals (htmx): the same money rules as the invoice, computed here."""
    page = page_of(invoice_pages)
    page.require("clerk")
    currency, currency_error = _currency(page)
    _lines, errors, typed = _draft_lines(page, currency)
    if currency_error:
        errors["currency"] = currency_error
    subtotal = sum(row["amount"] or 0 for row in typed)
    return page.html("_totals.html", 200, rows=typed, errors=errors, subtotal=subtotal, currency=currency)


@invoice_pages.post("/console/invoices/new")
def handle_post_new_draft() -> Response[str]:
    page = page_of(invoice_pages)
    page.require("clerk")
    currency, currency_error = _currency(page)
    lines, errors, typed = _draft_lines(page, currency)
    customer_id = page.form.get("customer_id").strip()[:64]
    if currency_error:
        errors["currency"] = currency_error
    if not customer_id:
        errors["customer_id"] = "Choose the customer."
    if not lines and not errors:
        errors["line-0-description"] = "Add at least one line."
    subtotal = sum(row["amount"] or 0 for row in typed)
    if errors:
        return _draft_form(
            page, 422, customer_id=customer_id, currency=currency, rows=typed, errors=errors, subtotal=subtotal
        )

    def create() -> dict[str, Any]:
        draft, _created = invoices.create_invoice(
            get_services(),
            page.actor(),
            invoices.CreateInvoice(
                customer_id=customer_id, currency=currency, lines=tuple(lines), memo=page.form.get("memo")[:500]
            ),
        )
        return {"go": f"/invoices/{draft.id}?done=draft"}

    try:
        result = forms.run_once(page, create)
    except InvoicingError as exc:
        field = str(exc.details.get("field") or "customer_id")
        field = {"lines": "line-0-description"}.get(field, field)
        errors[field if field in ("customer_id", "currency") else "form"] = views.plain_words(exc.code, exc.message)
        return _draft_form(
            page,
            exc.http_status,
            customer_id=customer_id,
            currency=currency,
            rows=typed,
            errors=errors,
            subtotal=subtotal,
        )
    return page.redirect(str(result["go"]))
