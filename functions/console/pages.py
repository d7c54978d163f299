"""The console's routes. Each: open the session, check rights, parse, call one use case, render.

Rights: viewer reads; clerk also writes (drafts and every invoice action); admin also settings.
Every POST checks the session's CSRF token before anything else, and runs its use case once per
form (the form's Idempotency-Key, forms.run_once). Errors are shown in plain words next to the form
they concern, with the error's HTTP status (4xx), never a stack trace.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import quote, urlparse

import auth
import forms
import reports
import views
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from invoicing import clock
from invoicing.adapters.public_url import base_url_of_request
from invoicing.domain.credit import CreditMethod, CreditReason, LineCredit
from invoicing.domain.events import Actor
from invoicing.domain.invoice import InvoiceStatus, can_transition
from invoicing.domain.payments import PaymentMethod
from invoicing.errors import InvoicingError, NotFound, ValidationFailed
from invoicing.observability import logger
from invoicing.root import get_services
from invoicing.use_cases import credit_notes, customers, documents, finalize, invoices, lifecycle, payments, rates
from invoicing.use_cases import reminders as reminder_uc

pages = Router()

PAGE_SIZE = 50
CSV_MAX_PAGES = 20  # an export reads at most 20 pages of 50 (1,000 invoices), each one Query
STATUSES = [s.value for s in InvoiceStatus]
ACTIONS = ("finalize", "void", "mark-uncollectible", "payments", "credit-notes", "reminders", "pdf", "payment-link")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class Refused(Exception):
    """``login`` (no valid session), ``forbidden`` (rights), ``csrf`` (token missing or wrong)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.detail = detail


# ---------------------------------------------------------------- the request as a page
class Page:
    def __init__(self, event: Any, lambda_context: Any = None) -> None:
        self.event = event
        self.lambda_context = lambda_context
        self.config = auth.get_config()
        headers = {str(k).lower(): str(v) for k, v in (event.headers or {}).items()}
        self.headers = headers
        self.locale = views.negotiate_locale(headers.get("accept-language"))
        base_url = base_url_of_request(event.raw_event) or ""
        self.base = urlparse(base_url).path.rstrip("/")
        self.scheme = (headers.get("x-forwarded-proto") or "https").split(",")[0].strip().lower()
        self.secure = auth.secure_cookies(self.config, self.scheme)
        self.cookies: dict[str, str] = {}
        try:
            jar = SimpleCookie(headers.get("cookie", ""))
            self.cookies = {name: morsel.value for name, morsel in jar.items()}
        except CookieError:
            self.cookies = {}
        self.set_cookies: list[str] = []
        self.person: auth.Person | None = None
        self._key: bytes | None = None
        self._form: views.Form | None = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = auth.session_key(self.config)
        return self._key

    @property
    def form(self) -> views.Form:
        if self._form is None:
            self._form = views.parse_form(self.event.decoded_body if self.event.body else "")
        return self._form

    def actor(self) -> Actor:
        assert self.person is not None
        return Actor(principal=self.person.principal, request_id=self.event.request_context.request_id or "")

    # -------------------------------------------------------- sessions and rights
    def require(self, role: str = "viewer") -> auth.Person:
        try:
            person = auth.open_session(self.config, self.key, self.cookies.get(auth.COOKIE))
        except auth.SessionRefused as exc:
            logger.info("console session refused", extra={"reason": exc.reason})
            raise Refused("login", exc.reason) from None
        self.person = person
        if not person.can(role):
            raise Refused("forbidden", f"needs {role}")
        if self.event.http_method.upper() == "POST" and not auth.csrf_ok(
            self.key, person.session.get("n"), self.form.get("csrf")
        ):
            raise Refused("csrf")
        fresh = auth.touched(person.session)
        if fresh is not None:
            self.set_cookies.append(auth.cookie_header(auth.COOKIE, auth.seal(self.key, fresh), secure=self.secure))
        return person

    @property
    def csrf(self) -> str:
        assert self.person is not None
        return auth.csrf_token(self.key, str(self.person.session["n"]))

    # -------------------------------------------------------- responses
    def headers_for(self, content_type: str = "text/html; charset=utf-8") -> dict[str, Any]:
        headers: dict[str, Any] = {
            "Content-Type": content_type,
            "Cache-Control": "no-store",
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
        }
        if self.set_cookies:
            headers["Set-Cookie"] = list(self.set_cookies)
        return headers

    def html(self, template: str, status: int = 200, **context: Any) -> Response[str]:
        body = views.render(
            template,
            locale=self.locale,
            base=self.base,
            person=self.person,
            csrf=self.csrf if self.person is not None else context.pop("csrf", ""),
            new_key=lambda: uuid.uuid4().hex,
            **context,
        )
        return Response(status_code=status, body=body, headers=self.headers_for())

    def redirect(self, path: str, status: int = 303) -> Response[str]:
        headers = self.headers_for()
        headers["Location"] = f"{self.base}/console{path}"
        if self.headers.get("hx-request"):
            headers["HX-Redirect"] = headers["Location"]
        return Response(status_code=status, body="", headers=headers)

    def not_found(self) -> Response[str]:
        return self.html("error.html", 404, title="Not found", message="There is no such page in the console.")


def answer_refusal(event: Any, exc: Refused) -> Response[str]:
    page = Page(event)
    if exc.kind == "login":
        page.set_cookies.append(auth.cookie_header(auth.COOKIE, "", secure=page.secure, max_age=0))
        if event.http_method.upper() == "GET":
            target = event.path if event.path.startswith("/console/") else "/console/invoices"
            query = event.raw_event.get("queryStringParameters") or {}
            if query:
                target += "?" + views.query(**query)
            return page.redirect(f"/login?{views.query(next=target)}")
        return page.html(
            "error.html", 401, title="Please sign in again", message="Your session ended; nothing was changed."
        )
    if exc.kind == "csrf":
        message = "This form was not sent from the console page it belongs to (its security token is missing or old)."
        return page.html("error.html", 403, title="Form refused", message=message + " Nothing was changed.")
    return page.html(
        "error.html", 403, title="Not allowed", message="Your role does not allow this. Nothing was changed."
    )


def _page(router: Router) -> Page:
    return Page(router.current_event, getattr(router, "lambda_context", None))


def _safe_next(value: str) -> str:
    """Only a console path of this site: never another origin (an open redirect)."""
    if value.startswith("/console/") and not value.startswith("//") and "\\" not in value and "\n" not in value:
        return value[len("/console") :]
    return "/invoices"


# ---------------------------------------------------------------- sign-in
@pages.get("/console")
def handle_get_home() -> Response[str]:
    page = _page(pages)
    page.require()
    return page.redirect("/invoices")


def _login_form(
    page: Page, status: int = 200, *, step: str = "password", error: str = "", field: str = "", email: str = ""
) -> Response[str]:
    cookie, nonce = auth.new_login_cookie(page.key)
    page.set_cookies.append(auth.cookie_header(auth.LOGIN_COOKIE, cookie, secure=page.secure, max_age=1800))
    query = page.event.query_string_parameters or {}
    return page.html(
        "login.html",
        status,
        title="Sign in",
        csrf=auth.csrf_token(page.key, nonce),
        step=step,
        error=error,
        field=field,
        email=email,
        next=_safe_next(query.get("next") or page.form.get("next") or ""),
        signed_out=bool(query.get("signed_out")),
    )


@pages.get("/console/login")
def handle_get_login() -> Response[str]:
    page = _page(pages)
    try:
        page.require()
    except Refused:
        page.person = None
        return _login_form(page)
    return page.redirect("/invoices")


@pages.post("/console/login")
def handle_post_login() -> Response[str]:
    page = _page(pages)
    form = page.form
    nonce = auth.login_nonce(page.key, page.cookies.get(auth.LOGIN_COOKIE))
    if not auth.csrf_ok(page.key, nonce, form.get("csrf")):
        raise Refused("csrf")
    step = form.get("step", "password")
    email = form.get("email").strip().lower()[:254]
    try:
        if step == "password":
            if not email or "@" not in email or not form.get("password"):
                raise auth.SignInFailed("Enter your e-mail address and your password.", field="email")
            outcome = auth.sign_in(page.config, email, form.get("password")[:256])
        else:
            challenge = auth.unseal_challenge(page.key, page.cookies.get(auth.CHALLENGE_COOKIE))
            if challenge is None or challenge.get("kind") != step:
                raise auth.SignInFailed("That sign-in step expired; please start again.", field="email")
            email = challenge["email"]
            answer = form.get("new_password" if step == "new_password" else "code").strip()[:256]
            if not answer:
                raise auth.SignInFailed(
                    "Please fill this in.", field="new_password" if step == "new_password" else "code"
                )
            outcome = auth.answer_challenge(page.config, challenge, answer)
    except auth.SignInFailed as exc:
        logger.info("console sign-in refused", extra={"step": step})
        return _login_form(page, 401, step=step, error=exc.message, field=exc.field, email=email)
    if outcome.challenge:
        sealed = auth.seal_challenge(
            page.key, {"kind": outcome.challenge, "email": email, "session": outcome.challenge_session}
        )
        page.set_cookies.append(auth.cookie_header(auth.CHALLENGE_COOKIE, sealed, secure=page.secure, max_age=300))
        return _login_form(page, 200, step=outcome.challenge, email=email)
    try:
        session = auth.new_session(page.config, outcome.id_token)
    except auth.SessionRefused as exc:
        logger.warning("cognito token refused at sign-in", extra={"reason": exc.reason})
        return _login_form(page, 401, error="Sign-in failed; please try again.", field="email", email=email)
    logger.info("console sign-in")
    page.set_cookies += [
        auth.cookie_header(auth.COOKIE, auth.seal(page.key, session), secure=page.secure),
        auth.cookie_header(auth.LOGIN_COOKIE, "", secure=page.secure, max_age=0),
        auth.cookie_header(auth.CHALLENGE_COOKIE, "", secure=page.secure, max_age=0),
    ]
    return page.redirect(_safe_next(form.get("next")))


@pages.post("/console/logout")
def handle_post_logout() -> Response[str]:
    page = _page(pages)
    page.require()
    page.set_cookies = [auth.cookie_header(auth.COOKIE, "", secure=page.secure, max_age=0)]
    return page.redirect("/login?signed_out=1")


@pages.get("/console/static/<name>")
def handle_get_static(name: str) -> Response[str]:
    found = views.static_file(name)
    if found is None:
        return Response(
            status_code=404, body="not found", headers={"Content-Type": "text/plain", "Cache-Control": "no-store"}
        )
    body, content_type = found
    # text, not bytes: a base64 body reaches the browser decoded only for the API's binary media types
    return Response(
        status_code=200,
        body=body.decode("utf-8"),
        headers={
            "Content-Type": content_type,
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )


# ---------------------------------------------------------------- invoices
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

    def keeps(self, invoice: Any, today: date) -> bool:
        if self.number and self.number.lower() not in (invoice.invoice_number or "").lower():
            return False
        if (self.due_from or self.due_to or self.overdue) and invoice.due_date is None:
            return False
        if self.due_from and invoice.due_date < self.due_from:
            return False
        if self.due_to and invoice.due_date > self.due_to:
            return False
        return not (self.overdue and not (invoice.status == InvoiceStatus.OPEN and invoice.due_date < today))


def _filters(page: Page) -> tuple[Filters, dict[str, str]]:
    q = page.event.query_string_parameters or {}
    errors: dict[str, str] = {}

    def day(name: str) -> date | None:
        raw = (q.get(name) or "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            errors[name] = "Enter a date like 2026-01-31."
            return None

    status = (q.get("status") or "").strip()
    customer_id = (q.get("customer_id") or "").strip()[:64]
    if status and status not in STATUSES:
        errors["status"] = "Choose one of the statuses."
        status = ""
    if not status and not customer_id:
        status = "open"
    overdue = q.get("overdue") in ("1", "on", "true")
    if overdue and not customer_id:
        status = "open"
    filters = Filters(
        status=status,
        customer_id=customer_id,
        number=(q.get("number") or "").strip()[:64],
        due_from=day("due_from"),
        due_to=day("due_to"),
        overdue=overdue,
        cursor=(q.get("cursor") or "")[:512],
    )
    return filters, errors


def _list_page(filters: Filters, cursor: str | None) -> Any:
    return invoices.list_invoices(
        get_services(),
        customer_id=filters.customer_id or None,
        status=filters.status or None,
        limit=PAGE_SIZE,
        starting_after=cursor or None,
    )


def _totals(rows: list[Any]) -> list[tuple[str, int, int]]:
    by_currency: dict[str, list[int]] = {}
    for inv in rows:
        sums = by_currency.setdefault(inv.currency, [0, 0])
        sums[0] += inv.total_cents
        sums[1] += inv.amount_remaining_cents
    return [(currency, total, due) for currency, (total, due) in sorted(by_currency.items())]


@pages.get("/console/invoices")
def handle_get_invoices() -> Response[str]:
    page = _page(pages)
    page.require()
    filters, errors = _filters(page)
    rows: list[Any] = []
    next_cursor = None
    error = ""
    try:
        listing = _list_page(filters, filters.cursor)
        today = clock.now().date()
        rows = [inv for inv in listing.items if filters.keeps(inv, today)]
        next_cursor = listing.next_cursor
    except InvoicingError as exc:
        error = views.plain_words(exc.code, exc.message)
        errors.setdefault(str(exc.details.get("field", "")), error)
    return page.html(
        "invoices.html",
        422 if errors else 200,
        title="Invoices",
        filters=filters,
        statuses=STATUSES,
        rows=rows,
        totals=_totals(rows),
        next_cursor=next_cursor,
        errors=errors,
        error=error,
        today=clock.now().date(),
    )


@pages.get("/console/invoices.csv")
def handle_get_invoices_csv() -> Response[str]:
    page = _page(pages)
    page.require()
    filters, errors = _filters(page)
    if errors:
        return page.html("error.html", 422, title="Export refused", message="; ".join(errors.values()))
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
    today = clock.now().date()
    for _ in range(CSV_MAX_PAGES):
        listing = _list_page(filters, cursor)
        for inv in listing.items:
            if filters.keeps(inv, today):
                writer.writerow(
                    [
                        inv.invoice_number or "",
                        inv.id,
                        inv.status.value,
                        inv.customer_id,
                        _csv_text(inv.customer.name if inv.customer else ""),
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
    headers = page.headers_for("text/csv; charset=utf-8")
    headers["Content-Disposition"] = f'attachment; filename="invoices-{filters.status or "customer"}.csv"'
    return Response(status_code=200, body=out.getvalue(), headers=headers)


def _csv_text(value: str) -> str:
    """No spreadsheet formula injection: a cell starting with = + - @ is read as text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


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
    return page.html(
        "invoice.html",
        status,
        title=invoice.invoice_number or "Draft invoice",
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


@pages.get("/console/invoices/<invoice_id>")
def handle_get_invoice(invoice_id: str) -> Response[str]:
    page = _page(pages)
    page.require()
    try:
        return _detail(page, invoice_id)
    except NotFound:
        return page.not_found()


@pages.get("/console/invoices/<invoice_id>/pdf")
def handle_get_invoice_pdf(invoice_id: str) -> Response[str]:
    page = _page(pages)
    page.require()
    try:
        url, _expires = documents.pdf_download(get_services(), invoice_id)
    except InvoicingError as exc:
        return page.html(
            "error.html", exc.http_status, title="No PDF yet", message=views.plain_words(exc.code, exc.message)
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


@pages.post("/console/invoices/<invoice_id>/<action>")
def handle_post_invoice_action(invoice_id: str, action: str) -> Response[str]:
    page = _page(pages)
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
        title="New draft invoice",
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


@pages.get("/console/invoices/new")
def handle_get_new_draft() -> Response[str]:
    page = _page(pages)
    page.require("clerk")
    return _draft_form(page)


@pages.post("/console/invoices/totals")
def handle_post_draft_totals() -> Response[str]:
    """The line editor's live totals (htmx): the same money rules as the invoice, computed here."""
    page = _page(pages)
    page.require("clerk")
    currency, currency_error = _currency(page)
    _lines, errors, typed = _draft_lines(page, currency)
    if currency_error:
        errors["currency"] = currency_error
    subtotal = sum(row["amount"] or 0 for row in typed)
    return page.html("_totals.html", 200, rows=typed, errors=errors, subtotal=subtotal, currency=currency)


@pages.post("/console/invoices/new")
def handle_post_new_draft() -> Response[str]:
    page = _page(pages)
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


# ---------------------------------------------------------------- customers
@pages.get("/console/customers")
def handle_get_customers() -> Response[str]:
    page = _page(pages)
    page.require()
    wanted = ((page.event.query_string_parameters or {}).get("id") or "").strip()
    if wanted:
        return page.redirect(f"/customers/{quote(wanted, safe='')}")
    listing = invoices.list_invoices(
        get_services(), customer_id=None, status="open", limit=PAGE_SIZE, starting_after=None
    )
    seen: dict[str, Any] = {}
    for inv in listing.items:
        if inv.customer_id not in seen:
            seen[inv.customer_id] = inv.customer
    return page.html("customers.html", title="Customers", customers=seen)


@pages.get("/console/customers/<customer_id>")
def handle_get_customer(customer_id: str) -> Response[str]:
    page = _page(pages)
    page.require()
    try:
        return _customer_page(page, customer_id)
    except NotFound:
        return page.not_found()


@pages.post("/console/customers/<customer_id>")
def handle_post_customer(customer_id: str) -> Response[str]:
    """The customer's edit form (clerk): name, e-mail, locale, time zone, tax id."""
    page = _page(pages)
    page.require("clerk")
    form = page.form
    changes = {
        name: form.get(name).strip()
        for name in ("name", "email", "locale", "timezone", "tax_id")
        if name in form.fields
    }
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


# ---------------------------------------------------------------- settings
SETTINGS_CURRENCIES = ("EUR", "GBP", "CHF", "JPY", "CAD", "AUD")  # exchange rates shown (one GetItem each)


def _settings_page(page: Page, status: int = 200, **context: Any) -> Response[str]:
    svc = get_services()
    fx = []
    for code in SETTINGS_CURRENCIES:
        try:
            fx.append(rates.get_exchange_rate(svc, code))
        except NotFound:
            continue
    people: list[dict[str, str]] = []
    if page.person is not None and page.person.can("admin"):
        people = auth.list_people(page.config)
    return page.html(
        "settings.html",
        status,
        title="Settings",
        tax_rates=rates.list_tax_rates(svc),
        fx=fx,
        people=people,
        groups=list(auth.RIGHTS),
        errors=context.pop("errors", {}),
        done=(page.event.query_string_parameters or {}).get("done", ""),
        **context,
    )


@pages.get("/console/settings")
def handle_get_settings() -> Response[str]:
    page = _page(pages)
    page.require()
    return _settings_page(page)


@pages.post("/console/settings/<section>")
def handle_post_settings(section: str) -> Response[str]:
    """Tax rates and exchange rates (admin), and people (admin): add one to a group."""
    page = _page(pages)
    page.require("admin")
    form, svc = page.form, get_services()
    try:
        if section == "tax-rates":
            forms.run_once(
                page,
                lambda: {
                    "id": rates.create_tax_rate(
                        svc,
                        display_name=form.get("display_name").strip(),
                        percentage=form.get("percentage").strip(),
                        inclusive=form.get("inclusive") == "1",
                        country=form.get("country").strip().upper() or None,
                    ).id
                },
            )
        elif section == "exchange-rates":
            forms.run_once(
                page,
                lambda: {
                    "currency": rates.put_exchange_rate(
                        svc,
                        form.get("currency").strip(),
                        rate_to_usd=form.get("rate_to_usd").strip(),
                        source=form.get("source").strip() or f"console:{page.person.email if page.person else ''}",
                        as_of=clock.now(),
                    ).currency
                },
            )
        elif section == "people":
            group = form.get("group")
            if group not in auth.RIGHTS:
                raise ValidationFailed("choose a group", details={"field": "group"})
            email = form.get("email").strip().lower()
            if "@" not in email or len(email) > 254:
                raise ValidationFailed("enter the person's e-mail address", details={"field": "email"})
            forms.run_once(page, lambda: {"email": auth.add_person(page.config, email, group)})
        else:
            return page.not_found()
    except InvoicingError as exc:
        field = str(exc.details.get("field") or "form")
        return _settings_page(
            page,
            exc.http_status,
            errors={f"{section}:{field}": views.plain_words(exc.code, exc.message)},
            section=section,
        )
    return page.redirect(f"/settings?done={section}")


# ---------------------------------------------------------------- reports
@pages.get("/console/reports")
def handle_get_reports() -> Response[str]:
    page = _page(pages)
    page.require()
    report = reports.build(get_services(), clock.now().date(), lambda status, cursor: _status_page(status, cursor))
    return page.html("reports.html", title="Reports", report=report, charts=reports.charts(report, page.locale))


def _status_page(status: str, cursor: str | None) -> Any:
    return invoices.list_invoices(get_services(), customer_id=None, status=status, limit=100, starting_after=cursor)
