"""The console's routes. Each: open the session, check rights, parse, call one use case, render.

Rights: viewer reads; clerk also writes (drafts and every invoice action); admin also settings.
Every POST checks the session's CSRF token before anything else, and runs its use case once per
form (the form's Idempotency-Key, forms.run_once). Errors are shown in plain words next to the form
they concern, with the error's HTTP status (4xx), never a stack trace.
"""

from __future__ import annotations

import uuid
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlparse

import auth
import reports
import views
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from invoicing import clock
from invoicing.adapters.public_url import base_url_of_request
from invoicing.domain.events import Actor
from invoicing.domain.invoice import InvoiceStatus
from invoicing.observability import logger
from invoicing.root import get_services
from invoicing.use_cases import invoices, payments

pages = Router()

PAGE_SIZE = 50
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
        views.use_locale(self.locale)
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
    def headers_for(self, content_type: str = "text/html; charset=utf-8", *, frame_src: str = "") -> dict[str, Any]:
        """``frame_src``: an origin this page may frame besides itself (the PDF preview's S3 origin)."""
        headers: dict[str, Any] = {
            "Content-Type": content_type,
            "Cache-Control": "no-store",
            "Content-Security-Policy": CSP + (f"; frame-src 'self' {frame_src}" if frame_src else ""),
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
        }
        if self.set_cookies:
            headers["Set-Cookie"] = list(self.set_cookies)
        return headers

    def html(self, template: str, status: int = 200, *, frame_src: str = "", **context: Any) -> Response[str]:
        body = views.render(
            template,
            locale=self.locale,
            base=self.base,
            person=self.person,
            csrf=self.csrf if self.person is not None else context.pop("csrf", ""),
            new_key=lambda: uuid.uuid4().hex,
            **context,
        )
        return Response(status_code=status, body=body, headers=self.headers_for(frame_src=frame_src))

    def redirect(self, path: str, status: int = 303) -> Response[str]:
        headers = self.headers_for()
        headers["Location"] = f"{self.base}/console{path}"
        if self.headers.get("hx-request"):
            headers["HX-Redirect"] = headers["Location"]
        return Response(status_code=status, body="", headers=headers)

    def not_found(self) -> Response[str]:
        return self.html(
            "error.html", 404, title=views._("Not found"), message=views._("There is no such page in the console.")
        )


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
            "error.html",
            401,
            title=views._("Please sign in again"),
            message=views._("Your session ended; nothing was changed."),
        )
    if exc.kind == "csrf":
        message = views._(
            "This form was not sent from the console page it belongs to (its security token is missing or old)."
            " Nothing was changed."
        )
        return page.html("error.html", 403, title=views._("Form refused"), message=message)
    return page.html(
        "error.html",
        403,
        title=views._("Not allowed"),
        message=views._("Your role does not allow this. Nothing was changed."),
    )


def page_of(router: Router) -> Page:
    return Page(router.current_event, getattr(router, "lambda_context", None))


def _safe_next(value: str) -> str:
    """Only a console path of this site: never another origin (an open redirect)."""
    if value.startswith("/console/") and not value.startswith("//") and "\\" not in value and "\n" not in value:
        return value[len("/console") :]
    return "/invoices"


# ---------------------------------------------------------------- sign-in
@pages.get("/console")
def handle_get_home() -> Response[str]:
    page = page_of(pages)
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
        title=views._("Sign in"),
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
    page = page_of(pages)
    try:
        page.require()
    except Refused:
        page.person = None
        return _login_form(page)
    return page.redirect("/invoices")


@pages.post("/console/login")
def handle_post_login() -> Response[str]:
    page = page_of(pages)
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
    page = page_of(pages)
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


# ---------------------------------------------------------------- settings: settings_pages.py


# ---------------------------------------------------------------- reports
@pages.get("/console/reports")
def handle_get_reports() -> Response[str]:
    page = page_of(pages)
    page.require()
    svc = get_services()
    report = reports.build(
        svc,
        clock.now().date(),
        lambda status, cursor: _status_page(status, cursor),
        lambda since: payments.payments_paid_since(svc, since),
    )
    return page.html(
        "reports.html", title=views._("Reports"), report=report, charts=reports.charts(report, page.locale)
    )


def _status_page(status: str, cursor: str | None) -> Any:
    return invoices.list_invoices(get_services(), customer_id=None, status=status, limit=100, starting_after=cursor)
