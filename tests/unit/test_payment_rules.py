"""Payment rules, link rules, Stripe amount conversion and the pay page's headers: pure, no AWS."""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing.adapters.payments import (
    CurrencyNotSupportedByProvider,
    LocalProvider,
    ManualProvider,
)
from invoicing.adapters.stripe_provider import from_stripe_amount, stripe_exponent, to_stripe_amount
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.domain.payments import (
    PaymentExceedsAmountDue,
    PaymentLink,
    apply_payment,
    check_amount,
    check_paid_at,
    check_reference,
    hash_token,
    link_expiry,
    looks_like_token,
    new_link_token,
)
from invoicing.errors import InvalidTransition, InvoiceNotOpen, ValidationFailed
from invoicing.settings import Settings
from tests.conftest import ROOT

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def invoice(status=InvoiceStatus.OPEN, total=15000, paid=0):
    return Invoice(
        id="in_1",
        customer_id="cus_1",
        status=status,
        currency="USD",
        created_at="2026-11-01T00:00:00.000Z",
        updated_at="2026-11-01T00:00:00.000Z",
        total_cents=total,
        amount_paid_cents=paid,
        amount_remaining_cents=total - paid,
    )


class TestApplyPayment:
    def test_partial_payment_keeps_the_invoice_open(self):
        result = apply_payment(invoice(), 5000)
        assert (result.paid_after, result.remaining_after, result.becomes_paid) == (5000, 10000, False)

    def test_the_payment_that_reaches_zero_settles_it(self):
        result = apply_payment(invoice(paid=10000), 5000)
        assert (result.paid_after, result.remaining_after, result.becomes_paid) == (15000, 0, True)
        assert result.from_status is InvoiceStatus.OPEN

    def test_uncollectible_may_still_be_paid(self):
        result = apply_payment(invoice(InvoiceStatus.UNCOLLECTIBLE), 15000)
        assert result.becomes_paid and result.from_status is InvoiceStatus.UNCOLLECTIBLE

    def test_overpayment_is_refused(self):
        with pytest.raises(PaymentExceedsAmountDue) as exc:
            apply_payment(invoice(paid=10000), 5001)
        assert exc.value.code == "payment_exceeds_amount_due" and exc.value.http_status == 409

    @pytest.mark.parametrize(
        "status,error",
        [
            (InvoiceStatus.DRAFT, InvoiceNotOpen),
            (InvoiceStatus.VOID, InvalidTransition),
            (InvoiceStatus.PAID, InvalidTransition),
        ],
    )
    def test_only_open_and_uncollectible_invoices_take_payments(self, status, error):
        with pytest.raises(error):
            apply_payment(invoice(status), 1)

    @pytest.mark.parametrize("amount", [0, -1, True, 1.0, "100", None, 10**12 + 1])
    def test_amount_must_be_a_positive_integer(self, amount):
        with pytest.raises(ValidationFailed):
            check_amount(amount)

    @given(total=st.integers(1, 10**9), payments=st.lists(st.integers(1, 10**9), max_size=20))
    def test_amounts_always_add_up_and_never_overpay(self, total, payments):
        inv = invoice(total=total)
        for amount in payments:
            try:
                result = apply_payment(inv, amount)
            except (PaymentExceedsAmountDue, InvalidTransition):
                assert amount > inv.amount_remaining_cents or inv.status is InvoiceStatus.PAID
                continue
            status = InvoiceStatus.PAID if result.becomes_paid else inv.status
            inv = invoice(status=status, total=total, paid=result.paid_after)
            assert result.paid_after + result.remaining_after == total and result.remaining_after >= 0
        assert (inv.status is InvoiceStatus.PAID) == (inv.amount_remaining_cents == 0)


class TestPaidAtAndReference:
    def test_past_times_are_kept_in_utc(self):
        paid = datetime(2026, 11, 1, 9, 30, tzinfo=UTC) + timedelta(hours=0)
        assert check_paid_at(paid.astimezone(), NOW) == paid

    def test_future_beyond_clock_skew_is_refused(self):
        assert check_paid_at(NOW + timedelta(minutes=4), NOW)
        with pytest.raises(ValidationFailed, match="future"):
            check_paid_at(NOW + timedelta(minutes=6), NOW)

    def test_a_time_without_zone_is_refused(self):
        with pytest.raises(ValidationFailed, match="time zone"):
            check_paid_at(datetime(2026, 11, 1, 9, 30), NOW)

    def test_reference_is_trimmed_and_bounded(self):
        assert check_reference("  SEPA 42 ") == "SEPA 42"
        with pytest.raises(ValidationFailed):
            check_reference("x" * 201)


class TestLinks:
    def test_tokens_are_long_random_and_stored_as_sha256(self):
        tokens = {new_link_token() for _ in range(100)}
        assert len(tokens) == 100 and all(len(t) == 43 and looks_like_token(t) for t in tokens)
        token = tokens.pop()
        assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest() != token

    @pytest.mark.parametrize("raw", ["", "short", "a" * 31, "a" * 129, "a b" * 20, "../../etc/passwd" * 3, "é" * 40])
    def test_anything_else_is_not_looked_up(self, raw):
        assert not looks_like_token(raw)

    def test_expiry_is_the_end_of_the_day_ttl_days_after_due(self):
        assert link_expiry(date(2026, 12, 24), 30, date(2026, 11, 24)) == datetime(
            2027, 1, 23, 23, 59, 59, 999000, tzinfo=UTC
        )

    def test_a_link_for_an_overdue_invoice_counts_from_today(self):
        assert link_expiry(date(2026, 1, 1), 30, date(2026, 11, 24)).date() == date(2026, 12, 24)

    def test_active_only_while_unused_unrevoked_and_unexpired(self):
        link = PaymentLink(
            id="plink_1",
            invoice_id="in_1",
            token_hash="h",
            created_at="2026-11-24T00:00:00.000Z",
            expires_at="2026-12-24T23:59:59.999Z",
        )
        assert link.is_active("2026-12-24T23:59:59.998Z")
        assert not link.is_active("2026-12-24T23:59:59.999Z")
        assert not PaymentLink(**{**link.__dict__, "revoked_at": "2026-11-25T00:00:00.000Z"}).is_active(
            "2026-11-26T00:00:00.000Z"
        )
        assert not PaymentLink(**{**link.__dict__, "used_at": "2026-11-25T00:00:00.000Z"}).is_active(
            "2026-11-26T00:00:00.000Z"
        )


class TestStripeAmounts:
    @pytest.mark.parametrize(
        "currency,ours,theirs",
        [("USD", 15000, 15000), ("EUR", 1, 1), ("JPY", 15000, 15000), ("KWD", 1230, 1230), ("ISK", 990, 99000)],
    )
    def test_minor_units_convert_both_ways(self, currency, ours, theirs):
        assert to_stripe_amount(ours, currency) == theirs
        assert from_stripe_amount(theirs, currency) == ours

    def test_three_decimal_currencies_need_multiples_of_ten(self):
        with pytest.raises(CurrencyNotSupportedByProvider):
            to_stripe_amount(1234, "KWD")

    def test_exponents(self):
        assert (stripe_exponent("usd"), stripe_exponent("JPY"), stripe_exponent("BHD")) == (2, 0, 3)

    def test_a_stripe_amount_without_exact_minor_units_is_refused(self):
        with pytest.raises(ValidationFailed):
            from_stripe_amount(99050, "ISK")


class TestProvidersAndSettings:
    def test_provider_actions(self):
        assert ManualProvider().pay_action == "none" and ManualProvider().form_action_origins() == ()
        assert LocalProvider().pay_action == "complete"

    @pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
    def test_local_provider_is_refused_outside_local_and_test(self, stage):
        with pytest.raises(ValueError, match="only allowed when STAGE is local or test"):
            Settings.from_env({"PAYMENT_PROVIDER": "local", "STAGE": stage})

    @pytest.mark.parametrize("stage", ["local", "test"])
    def test_local_provider_in_local_stages(self, stage):
        assert Settings.from_env({"PAYMENT_PROVIDER": "local", "STAGE": stage}).payment_provider == "local"

    def test_unknown_provider_and_secret_repr(self):
        with pytest.raises(ValueError):
            Settings.from_env({"PAYMENT_PROVIDER": "paypal"})
        settings = Settings.from_env({"STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"})
        assert "sk_live_x" not in repr(settings) and "whsec_x" not in repr(settings)
        assert settings.payment_link_ttl_days_after_due == 30 and settings.payment_provider == "manual"


class TestSecurityHeaders:
    @pytest.fixture(scope="class")
    def pages(self):
        path = str(ROOT / "functions" / "pay")
        sys.path.insert(0, path)
        try:
            import pay_pages
        finally:
            sys.path.remove(path)
        return pay_pages

    def test_every_pay_response_is_locked_down(self, pages):
        headers = pages.security_headers("n0nce")
        assert headers["Cache-Control"] == "no-store"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Security-Policy"] == (
            "default-src 'none'; style-src 'nonce-n0nce'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )

    def test_the_checkout_origin_is_allowed_as_a_form_target_only_when_given(self, pages):
        csp = pages.security_headers("n", ("https://checkout.stripe.com",))["Content-Security-Policy"]
        assert "form-action 'self' https://checkout.stripe.com;" in csp

    def test_neutral_pages_do_not_differ(self, pages):
        settings = Settings()
        a = pages.render_neutral_page(settings, pages.NOT_ACTIVE, nonce="x")
        b = pages.render_neutral_page(settings, pages.NOT_ACTIVE, nonce="x")
        assert a == b and "already paid" in a and pages.NOT_ACTIVE.status == 404
