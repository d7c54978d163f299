"""Payment providers behind one interface, chosen by settings PAYMENT_PROVIDER.

- manual: no card payments; the pay page shows the bank transfer instructions from settings.
- local:  `make dev` and tests only (settings refuse it outside STAGE local/test): the Pay button
          completes at once, as a `card` payment, without any money moving.
- stripe: the Pay button opens a Stripe Checkout Session; the `checkout.session.completed` webhook
          (signature verified with the SDK) confirms the payment. Refunds go through the SDK on the
          payment's PaymentIntent; `refund.*` webhooks report how they end.

Secrets: the Stripe API key and webhook secret come from settings directly (tests, local) or from
SSM Parameter Store SecureStrings named in settings, read once per container when the provider is
built (a rotated secret reaches new containers; redeploy or wait for recycling to reach warm ones).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from invoicing.domain.money import currency_exponent
from invoicing.errors import InvoicingError, ServiceUnavailable, ValidationFailed
from invoicing.settings import Settings

PayAction = Literal["none", "complete", "checkout"]

# Stripe's own minor-unit exponents where they differ from "2" (docs.stripe.com/currencies).
# ISO 4217 / CLDR may disagree (ISK is 0 in CLDR but two-decimal at Stripe), so amounts are
# converted explicitly rather than passed through.
STRIPE_ZERO_DECIMAL = frozenset(
    ["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"]
)
STRIPE_THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])
STRIPE_TIMEOUT_SECONDS = 6  # inside the function's 10 s timeout, with room for the rest


class WebhookSignatureInvalid(InvoicingError):
    code = "invalid_signature"
    http_status = 400


class CurrencyNotSupportedByProvider(InvoicingError):
    code = "currency_not_supported"
    http_status = 409


@dataclass(frozen=True)
class CheckoutRequest:
    invoice_id: str
    link_id: str
    invoice_number: str
    amount_cents: int  # our minor units (ISO 4217 exponent)
    currency: str
    customer_email: str
    success_url: str
    cancel_url: str


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class ConfirmedPayment:
    """A provider's verified word that money arrived for a checkout."""

    event_id: str
    session_id: str
    invoice_id: str
    link_id: str | None
    amount_cents: int  # converted back to our minor units
    currency: str
    payment_reference: str  # e.g. the PaymentIntent id, for the finance team


@dataclass(frozen=True)
class RefundRequest:
    refund_id: str  # ours: in the refund's metadata, so its webhooks and a lookup find it
    payment_reference: str  # the provider's payment (Stripe: the PaymentIntent id)
    amount_cents: int  # our minor units
    currency: str
    invoice_id: str = ""  # in the metadata too: the webhook finds the refund item by its keys
    credit_note_id: str = ""
    # one per attempt (domain.refunds.attempt_idempotency_key): a repeated call of the same attempt
    # refunds once; default: the refund id's own key (the first attempt)
    idempotency_key: str = ""


@dataclass(frozen=True)
class RefundResult:
    provider_ref: str
    status: str  # the provider's refund status: succeeded, pending, failed ...
    failure: str | None = None  # the provider's reason when it failed
    created: int | None = None  # when the provider created it (epoch seconds): orders the attempts


@dataclass(frozen=True)
class RefundNotice:
    """A provider's verified word about one of our refunds (a Stripe `refund.*` webhook)."""

    event_id: str
    refund_id: str  # ours, from the metadata
    invoice_id: str  # ours, from the metadata
    provider_ref: str
    status: str  # the provider's refund status
    payment_reference: str | None
    amount_cents: int  # converted back to our minor units
    currency: str
    failure: str | None = None
    created: int | None = None


class PaymentProvider:
    name: str = "base"
    pay_action: PayAction = "none"

    def refund(self, request: RefundRequest) -> RefundResult | None:
        """Refund through the provider; None when this provider moves no money (made by hand)."""
        return None

    def find_refunds(self, payment_reference: str, refund_id: str) -> list[RefundResult]:
        """The provider's refunds of a payment that carry our refund id (earlier attempts); raises
        ServiceUnavailable when the provider cannot be asked: never refund again without knowing."""
        return []

    def form_action_origins(self) -> tuple[str, ...]:
        """Origins the pay page's form may submit to or be redirected to (CSP form-action)."""
        return ()

    def start_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        raise NotImplementedError(f"{self.name} has no hosted checkout")

    def verify_webhook(self, payload: str, signature: str | None) -> ConfirmedPayment | RefundNotice | None:
        """The confirmed payment or the refund update, or None for an event that needs no action.
        Raises WebhookSignatureInvalid when the payload is not provably from the provider."""
        raise WebhookSignatureInvalid("this payment provider takes no webhooks")


class ManualProvider(PaymentProvider):
    name = "manual"
    pay_action = "none"


class LocalProvider(PaymentProvider):
    name = "local"
    pay_action = "complete"


# ---------------------------------------------------------------- Stripe
def stripe_exponent(currency: str) -> int:
    code = currency.upper()
    if code in STRIPE_ZERO_DECIMAL:
        return 0
    if code in STRIPE_THREE_DECIMAL:
        return 3
    return 2


def to_stripe_amount(amount_cents: int, currency: str) -> int:
    shift = stripe_exponent(currency) - currency_exponent(currency)
    if shift < 0:
        raise CurrencyNotSupportedByProvider(f"{currency} cannot be charged through Stripe")
    amount = amount_cents * 10**shift
    if stripe_exponent(currency) == 3 and amount % 10:
        # Stripe takes three-decimal currencies in multiples of 10 only
        raise CurrencyNotSupportedByProvider(f"Stripe charges {currency} in multiples of 0.010 only")
    return amount


def from_stripe_amount(amount: int, currency: str) -> int:
    shift = stripe_exponent(currency) - currency_exponent(currency)
    if shift < 0 or amount % 10**shift:
        raise ValidationFailed(f"a Stripe amount of {amount} {currency} has no exact value in minor units")
    return amount // 10**shift


class StripeProvider(PaymentProvider):
    name = "stripe"
    pay_action = "checkout"
    HANDLED_EVENTS = frozenset({"checkout.session.completed", "checkout.session.async_payment_succeeded"})
    # every one carries a Refund object; `refund.created` matters too: it is how an attempt whose
    # answer we never got (a timeout) is heard of
    REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"})
    MAX_REFUND_PAGES = 10  # 100 refunds a page: far more than a payment can have

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        checkout_origin: str = "https://checkout.stripe.com",
        http_client: Any = None,
    ) -> None:
        import stripe

        if http_client is None:
            http_client = stripe.RequestsClient(timeout=STRIPE_TIMEOUT_SECONDS)
        # retries are safe: every create carries an idempotency key
        self._client = stripe.StripeClient(secret_key, http_client=http_client, max_network_retries=2)
        self._webhook_secret = webhook_secret
        self._checkout_origin = checkout_origin.rstrip("/")

    def form_action_origins(self) -> tuple[str, ...]:
        return (self._checkout_origin,)

    def start_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        import stripe

        metadata = {"invoice_id": request.invoice_id, "link_id": request.link_id}
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": to_stripe_amount(request.amount_cents, request.currency),
                        "product_data": {"name": f"Invoice {request.invoice_number}"},
                    },
                }
            ],
            "client_reference_id": request.invoice_id,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        if request.customer_email:
            params["customer_email"] = request.customer_email
        # One session per link and amount: a double click or a reload reuses the session instead of
        # opening a second one that could be paid too (Stripe keeps keys 24 h, sessions live 24 h).
        idempotency_key = f"paylink-{request.link_id}-{request.amount_cents}-{request.currency}"
        try:
            session = self._client.v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise ServiceUnavailable("the card payment provider is unavailable; try again shortly") from exc
        if not session.url:
            raise ServiceUnavailable("the card payment provider returned no checkout page")
        return CheckoutSession(id=session.id, url=session.url)

    def refund(self, request: RefundRequest) -> RefundResult | None:
        import stripe

        metadata = {"refund_id": request.refund_id}
        if request.invoice_id:
            metadata["invoice_id"] = request.invoice_id
        if request.credit_note_id:
            metadata["credit_note_id"] = request.credit_note_id
        try:
            refund = self._client.v1.refunds.create(
                params={
                    "payment_intent": request.payment_reference,
                    "amount": to_stripe_amount(request.amount_cents, request.currency),
                    "metadata": metadata,
                },
                options={"idempotency_key": request.idempotency_key or f"refund-{request.refund_id}"},
            )
        except stripe.StripeError as exc:
            error = getattr(exc, "error", None)  # Stripe's error object: its code, else its type
            reason = _text(getattr(exc, "code", None)) or _text(getattr(error, "type", None)) or type(exc).__name__
            raise ServiceUnavailable(
                f"the card payment provider refused or could not take the refund ({reason})"
            ) from exc
        raw = refund.to_dict() if hasattr(refund, "to_dict") else {}
        parsed = _stripe_refund(raw)
        if parsed is None:  # an answer not shaped as a refund: keep what can be kept
            return RefundResult(provider_ref=str(refund.id), status=str(refund.status or "pending"))
        return parsed.result

    def find_refunds(self, payment_reference: str, refund_id: str) -> list[RefundResult]:
        import stripe

        params: dict[str, Any] = {"payment_intent": payment_reference, "limit": 100}
        found: list[RefundResult] = []
        try:
            for _ in range(self.MAX_REFUND_PAGES):
                page = self._client.v1.refunds.list(params=params)  # type: ignore[arg-type]
                raw = page.to_dict() if hasattr(page, "to_dict") else {}
                data = raw.get("data") if isinstance(raw, dict) else None
                data = data if isinstance(data, list) else []
                items = [r for r in (_stripe_refund(d) for d in data) if r is not None]
                found += [r.result for r in items if r.refund_id == refund_id]
                last = _text(data[-1].get("id")) if data and isinstance(data[-1], dict) else None
                if not (isinstance(raw, dict) and raw.get("has_more") is True and last):
                    return found
                params["starting_after"] = last
        except stripe.StripeError as exc:
            raise ServiceUnavailable("the card payment provider could not be asked for earlier refunds") from exc
        raise ServiceUnavailable("the payment has more refunds than can be looked through")

    def verify_webhook(self, payload: str, signature: str | None) -> ConfirmedPayment | RefundNotice | None:
        import stripe

        if not self._webhook_secret:
            raise ServiceUnavailable("the Stripe webhook secret is not configured")
        try:
            event = stripe.Webhook.construct_event(payload, signature, self._webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise WebhookSignatureInvalid("the Stripe-Signature header does not match this payload") from exc
        if event.type not in self.HANDLED_EVENTS and event.type not in self.REFUND_EVENTS:
            return None
        obj: Any = getattr(getattr(event, "data", None), "object", None)
        raw: Any = obj.to_dict() if hasattr(obj, "to_dict") else obj  # plain data; SDK objects are no dicts
        if not isinstance(raw, dict):
            return None
        if event.type in self.REFUND_EVENTS:
            return _refund_notice(str(event.id), raw)
        session: dict[str, Any] = raw
        # completed with a delayed method (bank debit): wait for async_payment_succeeded
        if session.get("payment_status") != "paid":
            return None
        # Signed is not the same as ours: another integration on the same account, or a new API
        # version, may send other shapes. Anything not exactly as we create sessions is ignored.
        raw_metadata = session.get("metadata")
        metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
        invoice_id = _text(metadata.get("invoice_id")) or _text(session.get("client_reference_id"))
        currency = (_text(session.get("currency")) or "").upper()
        amount = session.get("amount_total")
        session_id = _text(session.get("id"))
        if (
            not invoice_id
            or not session_id
            or not re.fullmatch(r"[A-Z]{3}", currency)
            or isinstance(amount, bool)
            or not isinstance(amount, int)
            or amount <= 0
        ):
            return None
        intent = session.get("payment_intent")
        intent_id = _text(intent.get("id")) if isinstance(intent, dict) else _text(intent)
        try:
            amount_cents = from_stripe_amount(amount, currency)
        except ValidationFailed:
            return None  # not an amount we could have asked for (ours are exact in minor units)
        return ConfirmedPayment(
            event_id=str(event.id),
            session_id=session_id,
            invoice_id=invoice_id,
            link_id=_text(metadata.get("link_id")),
            amount_cents=amount_cents,
            currency=currency,
            payment_reference=intent_id or session_id,
        )


def _text(value: Any) -> str | None:
    """A non-empty string of reasonable length, or None (Stripe ids and our ids are short)."""
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None


def _our_id(value: Any) -> str | None:
    """One of our ids as we put it in metadata (a DynamoDB key part), or None."""
    text = _text(value)
    return text if text and re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", text) else None


@dataclass(frozen=True)
class _StripeRefund:
    result: RefundResult
    refund_id: str | None  # ours, from the metadata
    invoice_id: str | None
    payment_reference: str | None
    amount: int
    currency: str


def _stripe_refund(raw: Any) -> _StripeRefund | None:
    """A Stripe Refund object as plain data, or None when it is not shaped like one. Signed (or
    listed by us) is not the same as ours or as expected: another integration on the same account or
    a new API version may send other shapes, so every field is checked before it is used."""
    if not isinstance(raw, dict):
        return None
    provider_ref = _text(raw.get("id"))
    status = _text(raw.get("status"))
    currency = (_text(raw.get("currency")) or "").upper()
    amount = raw.get("amount")
    if (
        not provider_ref
        or not status
        or not re.fullmatch(r"[A-Z]{3}", currency)
        or isinstance(amount, bool)
        or not isinstance(amount, int)
        or amount <= 0
    ):
        return None
    raw_metadata = raw.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    intent = raw.get("payment_intent")
    created = raw.get("created")
    return _StripeRefund(
        result=RefundResult(
            provider_ref=provider_ref,
            status=status,
            failure=_text(raw.get("failure_reason")),
            created=created if isinstance(created, int) and not isinstance(created, bool) and created > 0 else None,
        ),
        refund_id=_our_id(metadata.get("refund_id")),
        invoice_id=_our_id(metadata.get("invoice_id")),
        payment_reference=_text(intent.get("id")) if isinstance(intent, dict) else _text(intent),
        amount=amount,
        currency=currency,
    )


def _refund_notice(event_id: str, raw: dict[str, Any]) -> RefundNotice | None:
    """A refund event's object as a notice about one of our refunds, or None (not ours, not shaped
    as expected, or an amount we could not have asked for)."""
    parsed = _stripe_refund(raw)
    if parsed is None or not parsed.refund_id or not parsed.invoice_id:
        return None
    try:
        amount_cents = from_stripe_amount(parsed.amount, parsed.currency)
    except ValidationFailed:
        return None
    return RefundNotice(
        event_id=event_id,
        refund_id=parsed.refund_id,
        invoice_id=parsed.invoice_id,
        provider_ref=parsed.result.provider_ref,
        status=parsed.result.status,
        payment_reference=parsed.payment_reference,
        amount_cents=amount_cents,
        currency=parsed.currency,
        failure=parsed.result.failure,
        created=parsed.result.created,
    )


# ---------------------------------------------------------------- factory
def _secret(direct: Any, param_name: str) -> str:
    value = direct.get_secret_value() if hasattr(direct, "get_secret_value") else str(direct or "")
    if value:
        return value
    if param_name:
        from aws_lambda_powertools.utilities.parameters import get_parameter

        return str(get_parameter(param_name, decrypt=True, max_age=300))
    return ""


def build_payment_provider(settings: Settings, *, http_client: Any = None) -> PaymentProvider:
    if settings.payment_provider == "local":
        return LocalProvider()
    if settings.payment_provider == "stripe":
        secret_key = _secret(settings.stripe_secret_key, settings.stripe_secret_key_param)
        # only the function serving the webhook (PayFunction) is given the webhook secret; without it
        # the provider refuses webhooks (ServiceUnavailable) and still checks out and refunds
        webhook_secret = _secret(settings.stripe_webhook_secret, settings.stripe_webhook_secret_param)
        if not secret_key:
            raise ServiceUnavailable("Stripe is selected but its API key is not configured")
        return StripeProvider(
            secret_key=secret_key,
            webhook_secret=webhook_secret,
            checkout_origin=settings.stripe_checkout_origin,
            http_client=http_client,
        )
    return ManualProvider()
