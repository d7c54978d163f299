"""Payment providers behind one interface, chosen by settings PAYMENT_PROVIDER.

- manual: no card payments; the pay page shows the bank transfer instructions from settings.
- local:  `make dev` and tests only (settings refuse it outside STAGE local/test): the Pay button
          completes at once, as a `card` payment, without any money moving.
- stripe: the Pay button opens a Stripe Checkout Session; the `checkout.session.completed` webhook
          (signature verified with the SDK) confirms the payment. Refunds go through the SDK on the
          payment's PaymentIntent; `refund.*` webhooks report how they end (adapters/stripe_provider.py).

Secrets: the Stripe API key and webhook secret come from settings directly (tests, local) or from
SSM Parameter Store SecureStrings named in settings, read once per container when the provider is
built (a rotated secret reaches new containers; redeploy or wait for recycling to reach warm ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from invoicing.errors import InvoicingError, ServiceUnavailable
from invoicing.settings import Settings

PayAction = Literal["none", "complete", "checkout"]


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
        from invoicing.adapters.stripe_provider import StripeProvider  # the SDK, only where Stripe is used

        return StripeProvider(
            secret_key=secret_key,
            webhook_secret=webhook_secret,
            checkout_origin=settings.stripe_checkout_origin,
            http_client=http_client,
        )
    return ManualProvider()
