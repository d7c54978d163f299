"""Stripe webhooks without Stripe: events shaped like `checkout.session.completed`, signed the way
Stripe signs them (`t=..., v1=HMAC-SHA256(secret, "{t}.{payload}")`) and the SDK verifies them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header as Stripe computes it (and as the SDK verifies it)."""
    t = int(time.time()) if timestamp is None else timestamp
    v1 = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={v1}"


def event(event_id: str, type_: str, obj: dict[str, object]) -> str:
    """The envelope Stripe wraps every webhook object in, as JSON."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2025-10-29.clover",
            "created": int(time.time()),
            "livemode": False,
            "type": type_,
            "data": {"object": obj},
        }
    )


def session_event(
    *,
    invoice_id: str,
    link_id: str | None,
    amount: int = 15000,
    currency: str = "usd",
    session_id: str = "cs_test_a1Fake",
    event_id: str = "evt_1Fake",
    type_: str = "checkout.session.completed",
    payment_status: str = "paid",
) -> str:
    metadata = {"invoice_id": invoice_id, **({"link_id": link_id} if link_id else {})}
    return event(
        event_id,
        type_,
        {
            "id": session_id,
            "object": "checkout.session",
            "amount_total": amount,
            "currency": currency,
            "client_reference_id": invoice_id,
            "metadata": metadata,
            "mode": "payment",
            "payment_intent": "pi_3Fake",
            "payment_status": payment_status,
            "status": "complete",
        },
    )


def refund_event(
    *,
    refund_id: str | None,
    invoice_id: str | None,
    provider_ref: str = "re_fake_1",
    status: str = "succeeded",
    amount: int = 2500,
    currency: str = "usd",
    payment_intent: str = "pi_3Fake",
    created: int = 1_790_000_000,
    event_id: str = "evt_refund_1",
    type_: str = "refund.updated",
    failure_reason: str | None = None,
    **changes: object,
) -> str:
    """A `refund.*` event (its object is a Refund) for one of our refunds, named in the metadata as
    StripeProvider.refund puts it there; `changes` replace (or, set to None, remove) object fields."""
    metadata = {
        **({"refund_id": refund_id} if refund_id else {}),
        **({"invoice_id": invoice_id} if invoice_id else {}),
    }
    obj: dict[str, object] = {
        "id": provider_ref,
        "object": "refund",
        "amount": amount,
        "currency": currency,
        "created": created,
        "metadata": metadata,
        "payment_intent": payment_intent,
        "status": status,
        "failure_reason": failure_reason,
    }
    for key, value in changes.items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return event(event_id, type_, obj)
