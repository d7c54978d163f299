"""Fuzzing the public routes (no API key): the pay page and the Stripe webhook.

They are not in the admin OpenAPI document, so schemathesis does not reach them; hypothesis does.
Tokens are generated (any text, URL-ish characters, and mutations of a real live token: one character
changed, truncated, extended, case-swapped), with GET and POST, random form fields and content types.
Webhooks get random bodies with missing, malformed, stale or wrongly keyed signatures, and correctly
signed events of random shape.

The gates: no 5xx; every bad token gets the same neutral page (nothing about any invoice: no number,
customer, amount) with the security headers; every bad signature gets 400 `invalid_signature`; and
nothing in the table changes except the pay pages' rate-limit counters. A live invoice stays open and
unpaid throughout.

make test: ~150 requests per test (derandomized); make test-slow (RUN_SLOW=1): ~1,000 each.
"""

from __future__ import annotations

import json
import os
import string
import time
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import payments as support
from tests.support.hypothesis import EXPLORE
from tests.support.payments import open_invoice, token_of, without_nonce
from tests.support.stripe_events import WEBHOOK_SECRET, session_event, sign

pytestmark = pytest.mark.soak  # make test-slow repeats it at full size

pay = support.pay
settings_env = support.settings_env

SLOW = bool(os.environ.get("RUN_SLOW"))
EXAMPLES = 1000 if SLOW else 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not (SLOW and EXPLORE),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

URLISH = string.ascii_letters + string.digits + "-_.~%/?#&=+;:@!$'()*,[] "


def _table(aws: Any) -> list[str]:
    """Every item but the pay pages' rate-limit counters, as comparable text."""
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=aws.table_name, ConsistentRead=True)
    return sorted(json.dumps(i, sort_keys=True) for i in items["Items"] if not i["pk"]["S"].startswith("RATELIMIT#"))


@st.composite
def mutated(draw: Any, token: str) -> str:
    kind = draw(st.sampled_from(["change", "truncate", "extend", "swapcase", "pad"]))
    if kind == "change":
        i = draw(st.integers(0, len(token) - 1))
        c = draw(st.sampled_from(string.ascii_letters + string.digits + "-_").filter(lambda c: c != token[i]))
        return token[:i] + c + token[i + 1 :]
    if kind == "truncate":
        return token[: draw(st.integers(0, len(token) - 1))]
    if kind == "extend":
        return token + draw(st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=8))
    if kind == "pad":
        return draw(st.sampled_from([" ", "%20", "/", "=", "."])) + token
    swapped = token.swapcase()
    return swapped if swapped != token else token + "x"


def tokens(live: str) -> st.SearchStrategy[str]:
    return st.one_of(
        mutated(live),
        st.text(min_size=0, max_size=200),
        st.text(URLISH, min_size=1, max_size=120),
        st.sampled_from(["", ".", "..", "%00", "null", "undefined", "A" * 43, "A" * 4000, "<script>"]),
    )


@pytest.fixture
def live(api, customer, settings_env):  # type: ignore[no-untyped-def]
    """One open invoice with a live link, the local provider (Pay pays at once), no per-IP limit."""
    settings_env(PAYMENT_PROVIDER="local", PAY_RATE_LIMIT_PER_MINUTE="100000")
    invoice = open_invoice(api, customer)
    return invoice, token_of(invoice["payment_url"])


def test_bad_tokens_get_one_neutral_page_and_change_nothing(api, aws, pay, live, customer, report):
    invoice, token = live
    _, neutral, _ = pay("GET", "A" * 43)
    neutral = without_nonce(neutral)
    secrets = [invoice["invoice_number"], customer["name"], customer["email"], "150.00", invoice["id"], token]
    before = _table(aws)
    seen: dict[str, int] = {"requests": 0, "post": 0}

    @FUZZ
    @given(
        candidate=tokens(token),
        method=st.sampled_from(["GET", "POST", "GET pdf"]),
        form=st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=4),
        content_type=st.sampled_from(["application/x-www-form-urlencoded", "text/plain", "application/json", ""]),
    )
    def check(candidate: str, method: str, form: dict[str, str], content_type: str) -> None:
        if candidate == token:
            return
        seen["requests"] += 1
        seen["post"] += method == "POST"
        headers = {"Content-Type": content_type} if content_type else {}
        body = "&".join(f"{k}={v}" for k, v in form.items()) if method == "POST" else None
        target = candidate if candidate.startswith("/") else candidate or " "
        if method == "GET pdf":
            method, target = "GET", f"/pay/{candidate or ' '}/pdf"
        status, html, out = pay(method, target, raw_body=body, headers=headers)
        assert status == 404, (candidate, status, html[:200])
        assert without_nonce(html) == neutral, candidate
        for secret in secrets:
            assert secret not in html
        assert out.get("Cache-Control") == "no-store" and out.get("X-Frame-Options") == "DENY"
        assert "default-src 'none'" in out["Content-Security-Policy"]

    check()
    assert _table(aws) == before
    _, after, _ = api("GET", f"/invoices/{invoice['id']}")
    assert (after["status"], after["amount_paid_cents"]) == ("open", 0)
    report(
        f"\npay page fuzz: {seen['requests']} requests ({seen['post']} POST) with made-up or altered tokens: "
        f"5xx=0, non-neutral answers=0, items written=0"
    )


def test_unsigned_or_badly_signed_webhooks_are_refused_and_change_nothing(
    api, aws, pay, customer, settings_env, report
):
    settings_env(PAYMENT_PROVIDER="stripe", STRIPE_SECRET_KEY="sk_test_unused", STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    invoice = open_invoice(api, customer)
    genuine = session_event(invoice_id=invoice["id"], link_id=None)
    before = _table(aws)
    seen = {"requests": 0}

    signatures = st.one_of(
        st.none(),
        st.text(max_size=200),
        st.builds(lambda p, s: sign(p, secret=s), st.just(genuine), st.text(min_size=1, max_size=40)),
        st.builds(lambda p, t: sign(p, timestamp=t), st.just(genuine), st.integers(0, int(time.time()) - 301)),
        st.builds(lambda t: f"t={t},v1={'0' * 64}", st.integers(0, 2**40)),
    )
    payloads = st.one_of(
        st.just(genuine),
        st.text(max_size=500),
        st.builds(json.dumps, st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5)),
    )

    @FUZZ
    @given(payload=payloads, signature=signatures)
    def check(payload: str, signature: str | None) -> None:
        # a signature made with our secret for this exact payload is the one thing that must pass
        if signature is not None and signature == sign(payload):
            return
        seen["requests"] += 1
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["Stripe-Signature"] = signature
        status, body, _ = pay("POST", "/webhooks/stripe", raw_body=payload, headers=headers, ip="3.18.12.63")
        assert status == 400, (status, body[:200])
        assert json.loads(body)["error"]["code"] == "invalid_signature"

    check()
    assert _table(aws) == before
    report(f"\nwebhook fuzz (bad signatures): {seen['requests']} requests: 400 each, 5xx=0, items written=0")


def test_signed_webhooks_of_any_shape_never_fail_or_touch_other_invoices(api, aws, pay, customer, settings_env, report):
    """A signed event can still be anything (another integration on the same Stripe account, a new
    API version): it is acknowledged or ignored, never a 5xx, and never pays an invoice it does not
    name with the right currency."""
    settings_env(PAYMENT_PROVIDER="stripe", STRIPE_SECRET_KEY="sk_test_unused", STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    invoice = open_invoice(api, customer)
    seen: dict[str, int] = {}
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.text(max_size=30))
    # a session as we create them, for the real invoice, with up to 3 fields changed or removed:
    # near misses are what could slip through; random dictionaries are all "ignored"
    valid = {
        "id": "cs_test_fuzz",
        "object": "checkout.session",
        "amount_total": 15000,
        "currency": "usd",
        "client_reference_id": invoice["id"],
        "metadata": {"invoice_id": invoice["id"]},
        "payment_status": "paid",
        "payment_intent": "pi_fuzz",
    }
    removed = object()
    changes = {
        "id": st.one_of(st.text(string.ascii_letters, min_size=1, max_size=12), scalars),
        "object": st.sampled_from(["payment_intent", ""]),
        "amount_total": st.one_of(st.integers(-(10**12), 10**12), st.sampled_from([1, 7500, 15000, 15001]), scalars),
        "currency": st.one_of(st.sampled_from(["eur", "jpy", "USD", "xxx", "usdd", ""]), scalars),
        "client_reference_id": st.one_of(st.sampled_from(["in_unknown", ""]), scalars),
        "metadata": st.one_of(
            st.fixed_dictionaries(
                {}, optional={"invoice_id": st.one_of(st.sampled_from(["in_unknown", "", "x" * 300]), scalars)}
            ),
            scalars,
        ),
        "payment_status": st.sampled_from(["unpaid", "no_payment_required"]),
        "payment_intent": st.one_of(scalars, st.fixed_dictionaries({"id": st.one_of(st.text(max_size=20), scalars)})),
    }
    sessions = st.lists(st.sampled_from(sorted(changes)), max_size=3, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: st.one_of(changes[k], st.just(removed)) for k in keys})
    )
    events = st.builds(
        lambda event_id, kind, change: {
            "id": event_id,
            "object": "event",
            "type": kind,
            "data": {"object": {k: v for k, v in {**valid, **change}.items() if v is not removed}},
        },
        st.text(string.ascii_letters, min_size=1, max_size=20),
        st.sampled_from(["checkout.session.completed"] * 3 + ["checkout.session.async_payment_succeeded", "x"]),
        sessions,
    )

    @FUZZ
    @given(event=events)
    def check(event: dict[str, Any]) -> None:
        payload = json.dumps(event)
        status, body, _ = pay(
            "POST",
            "/webhooks/stripe",
            raw_body=payload,
            headers={"Content-Type": "application/json", "Stripe-Signature": sign(payload)},
            ip="3.18.12.63",
        )
        assert status == 200, (status, body[:300], payload[:300])
        outcome = json.loads(body)["outcome"]
        seen[outcome] = seen.get(outcome, 0) + 1
        assert outcome in {"ignored", "recorded", "duplicate", "unapplied"}

    check()
    _, after, _ = api("GET", f"/invoices/{invoice['id']}")
    _, payments, _ = api("GET", f"/invoices/{invoice['id']}/payments")
    # whatever was recorded for the one real invoice went through the payment rules: never overpaid,
    # paid = the applied payments, and every payment is one the provider signed for this invoice
    applied = [p for p in payments["data"] if p["applied"]]
    assert after["amount_paid_cents"] <= after["total_cents"]
    assert sum(p["amount_cents"] for p in applied) == after["amount_paid_cents"]
    assert all(p["currency"] == "USD" for p in applied)  # money in another currency is kept unapplied
    assert all(p["amount_cents"] > 0 for p in payments["data"])
    assert seen.get("recorded", 0) >= 1 and seen.get("ignored", 0) >= 1  # the near misses hit both sides
    report(f"\nwebhook fuzz (signed, any shape): {sum(seen.values())} requests: outcomes={seen}, 5xx=0")
