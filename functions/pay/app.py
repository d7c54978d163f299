"""Public payment-link pages and the payment provider's webhook. No admin auth: the token in the path
is the capability, and only its SHA-256 is ever looked up.

- GET  /pay/{token}       the invoice and a Pay button (or bank transfer instructions)
- POST /pay/{token}       the Pay button: pay now (local provider) or a 303 to Stripe Checkout
- GET  /pay/{token}/pdf   the invoice PDF (a 302 to a fresh short-lived S3 URL), also after paying
- POST /webhooks/stripe   Stripe's signed confirmation of a checkout

Every pay response carries no-store, no-referrer, a strict CSP and anti-framing headers. Unknown,
expired, revoked and used tokens get one neutral 404 page. Each client IP gets a fixed number of pay
requests per minute (429 beyond). The token never reaches a log line: the event and the path are not
logged, and the correlation id is API Gateway's request id.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pay_pages import (
    FAILED,
    NOT_ACTIVE,
    RATE_LIMITED,
    UNAVAILABLE,
    Neutral,
    new_nonce,
    render_invoice_page,
    render_neutral_page,
    security_headers,
)

from invoicing.adapters.payments import RefundNotice, WebhookSignatureInvalid
from invoicing.adapters.public_url import request_base_url
from invoicing.errors import ConcurrentModification, ServiceUnavailable
from invoicing.observability import logger, metrics, tracer
from invoicing.root import get_services
from invoicing.use_cases import payments as uc
from invoicing.use_cases import refunds

app = APIGatewayRestResolver()


def _neutral(neutral: Neutral, origins: tuple[str, ...] = ()) -> Response[str]:
    nonce = new_nonce()
    return Response(
        status_code=neutral.status,
        body=render_neutral_page(get_services().settings, neutral, nonce=nonce),
        headers=security_headers(nonce, origins),
    )


def _html(status: int, render: Any, origins: tuple[str, ...] = ()) -> Response[str]:
    nonce = new_nonce()
    return Response(status_code=status, body=render(nonce), headers=security_headers(nonce, origins))


def _rate_limited() -> bool:
    source_ip = app.current_event.request_context.identity.source_ip or "unknown"
    return not uc.allow_pay_request(get_services(), source_ip)


def _form_amount() -> int | None:
    """The amount the payer saw (the form's hidden field); None when missing or malformed."""
    try:
        fields = parse_qs(app.current_event.decoded_body or "", max_num_fields=10)
    except ValueError:  # also a body that is not UTF-8 (UnicodeDecodeError): no amount, the form is refused
        return None
    raw = (fields.get("amount_cents") or [""])[0]
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 15 else None


@app.get("/pay/<token>")
def handle_get_pay_page(token: str) -> Response[str]:
    if _rate_limited():
        return _neutral(RATE_LIMITED)
    svc = get_services()
    page = uc.open_pay_page(svc, token)
    if page is None:
        return _neutral(NOT_ACTIVE)
    logger.append_keys(invoice_id=page.invoice.id, link_id=page.link.id)
    returning = (app.current_event.query_string_parameters or {}).get("checkout") == "success"
    state = "processing" if returning else "payable"
    return _html(
        200,
        lambda nonce: render_invoice_page(svc.settings, page.invoice, nonce=nonce, state=state, page=page),
        page.form_action_origins,
    )


@app.get("/pay/<token>/pdf")
def handle_get_pay_pdf(token: str) -> Response[str]:
    """The invoice PDF behind a pay link (the link in reminder mails): a 302 to a fresh pre-signed
    URL valid for minutes; the neutral page for every bad, revoked or expired token."""
    if _rate_limited():
        return _neutral(RATE_LIMITED)
    url = uc.pdf_for_token(get_services(), token)
    if url is None:
        return _neutral(NOT_ACTIVE)
    return Response(status_code=302, body="", headers={**security_headers(new_nonce()), "Location": url})


@app.post("/pay/<token>")
def handle_post_pay(token: str) -> Response[str]:
    if _rate_limited():
        return _neutral(RATE_LIMITED)
    svc = get_services()
    try:
        outcome = uc.pay_with_link(svc, token, _form_amount())
    except (ServiceUnavailable, ConcurrentModification) as exc:
        logger.warning("pay button failed; nothing charged", extra={"error_code": exc.code})
        return _neutral(UNAVAILABLE)
    if outcome is None:
        return _neutral(NOT_ACTIVE)
    if outcome.kind == "redirect":
        origins = svc.payment_provider().form_action_origins()
        headers = {**security_headers(new_nonce(), origins), "Location": str(outcome.redirect_url)}
        return Response(status_code=303, body="", headers=headers)
    if outcome.kind == "paid" and outcome.invoice is not None and outcome.payment is not None:
        paid_invoice, amount = outcome.invoice, outcome.payment.amount_cents
        logger.append_keys(invoice_id=paid_invoice.id)
        return _html(
            200,
            lambda nonce: render_invoice_page(
                svc.settings, paid_invoice, nonce=nonce, state="paid", paid_amount_cents=amount
            ),
        )
    page = outcome.page
    if page is None:
        return _neutral(NOT_ACTIVE)
    return _html(
        200,
        lambda nonce: render_invoice_page(
            svc.settings, page.invoice, nonce=nonce, state="payable", page=page, amount_changed=outcome.amount_changed
        ),
        page.form_action_origins,
    )


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(
        status_code=status,
        body=json.dumps(body),
        headers={"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _text_body(event: Any) -> str:
    """The body as text; bytes that are not UTF-8 (Stripe signs UTF-8 JSON) become U+FFFD, so the
    signature check refuses them with its 400 instead of a UnicodeDecodeError (a 500, retried)."""
    if not event.body:
        return ""
    if not event.is_base64_encoded:
        return str(event.body)
    return base64.b64decode(event.body).decode("utf-8", "replace")


@app.post("/webhooks/stripe")
def handle_stripe_webhook() -> Response[str]:
    svc = get_services()
    if svc.settings.payment_provider != "stripe":
        return _json(404, {"error": {"code": "route_not_found", "message": "no such route"}})
    event = app.current_event
    signature = event.headers.get("Stripe-Signature") or event.headers.get("stripe-signature")
    try:
        # verified before anything is read or written
        confirmed = svc.payment_provider().verify_webhook(_text_body(event), signature)
    except WebhookSignatureInvalid as exc:
        metrics.add_metric(name="StripeWebhookBadSignature", unit="Count", value=1)
        logger.warning("stripe webhook rejected: bad signature")
        return _json(400, {"error": {"code": exc.code, "message": exc.message}})
    if confirmed is None:
        outcome = "ignored"
    elif isinstance(confirmed, RefundNotice):
        logger.append_keys(refund_id=confirmed.refund_id, provider_event_id=confirmed.event_id)
        outcome = refunds.apply_refund_notice(svc, uc.WEBHOOK_ACTOR, confirmed)
    else:
        outcome = uc.record_provider_payment(svc, confirmed).status
    logger.info("stripe webhook handled", extra={"outcome": outcome})
    return _json(200, {"received": True, "outcome": outcome})


@app.not_found
def handle_not_found(_exc: Exception) -> Response[str]:
    return _neutral(NOT_ACTIVE)


@app.exception_handler(Exception)
def handle_unexpected(exc: Exception) -> Response[str]:
    # the stack, never the event: the path holds the token
    logger.exception("pay function failed", extra={"error_type": type(exc).__name__})
    if app.current_event.path.startswith("/webhooks/"):
        return _json(500, {"error": {"code": "internal_error", "message": "internal error"}})  # the provider retries
    return _neutral(FAILED)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handle_pay_request(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with request_base_url(event):  # Stripe's return URLs point where the payer came from
        return app.resolve(event, context)
