"""Payments and payment links: the pure rules. No I/O, no AWS.

- A payment is a positive integer of minor units in the invoice's currency. Partial payments are
  allowed; a payment larger than the amount still due is refused (`payment_exceeds_amount_due`).
- Only open and uncollectible invoices take payments (the same sources as the `paid` transition).
  The payment that brings the remainder to zero makes the invoice `paid`.
- A payment link is a random token (`secrets.token_urlsafe(32)`) of which only the SHA-256 is
  stored. It is active while unused, unrevoked and unexpired; it expires a set number of days after
  the invoice's due date, at the end of that day (UTC).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from invoicing import clock
from invoicing.domain.invoice import Invoice, InvoiceStatus, LinkState, ensure_transition, sources_of
from invoicing.errors import Conflict, InvoicingError, ValidationFailed
from invoicing.ids import new_id

MAX_PAYMENT_CENTS = 10**12
MAX_REFERENCE = 200
# paid_at comes from another clock (the bank statement, the caller's machine): a few minutes ahead
# is skew, not a payment from the future
PAID_AT_SKEW = timedelta(minutes=5)
TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")

PAYABLE_STATUSES: frozenset[InvoiceStatus] = sources_of(InvoiceStatus.PAID)


class PaymentMethod(StrEnum):
    BANK_TRANSFER = "bank_transfer"
    CARD = "card"
    CASH = "cash"
    OTHER = "other"


class PaymentSource(StrEnum):
    """How the payment reached us: recorded by an admin, the local pay button, or Stripe."""

    API = "api"
    PAY_LINK = "pay_link"
    STRIPE = "stripe"


class PaymentExceedsAmountDue(Conflict):
    """409: the invoice's amount due (its state) refuses a well-formed amount, like credit_exceeds_creditable."""

    code = "payment_exceeds_amount_due"


class PaymentAlreadyRecorded(Conflict):
    """The payment's id exists already: a replayed provider event. Nothing was written twice."""

    code = "payment_already_recorded"


class PaymentLinkInactive(Conflict):
    """Unknown, expired, revoked or used: deliberately one error for all of them."""

    code = "payment_link_inactive"


@dataclass(frozen=True)
class Payment:
    id: str
    invoice_id: str
    amount_cents: int
    currency: str
    method: PaymentMethod
    reference: str
    paid_at: str
    recorded_at: str
    actor: str
    source: PaymentSource
    link_id: str | None = None
    provider_ref: str | None = None
    # False: money arrived (e.g. a Stripe checkout) but the invoice could no longer take it (paid
    # meanwhile, voided). Kept so it can be refunded; it never changes the invoice's amounts.
    applied: bool = True


@dataclass(frozen=True)
class PaymentApplication:
    """What one payment does to an invoice."""

    amount_cents: int
    paid_after: int
    remaining_after: int
    from_status: InvoiceStatus
    becomes_paid: bool

    def applied_to(self, invoice: Invoice, payment: Payment) -> Invoice:
        """The invoice once this payment is written (the write adds 1 to the version it read)."""
        return replace(
            invoice,
            amount_paid_cents=self.paid_after,
            amount_remaining_cents=self.remaining_after,
            version=invoice.version + 1,
            updated_at=payment.recorded_at,
            status=InvoiceStatus.PAID if self.becomes_paid else invoice.status,
            paid_at=payment.paid_at if self.becomes_paid else invoice.paid_at,
        )


def ensure_payable(invoice: Invoice | LinkState) -> None:
    """Open or uncollectible; a draft is `invoice_not_open`, paid/void `invalid_transition` (409)."""
    if invoice.status not in PAYABLE_STATUSES:
        ensure_transition(invoice.status, InvoiceStatus.PAID)


def check_amount(amount_cents: object) -> int:
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise ValidationFailed(
            "amount_cents must be an integer number of minor units", details={"field": "amount_cents"}
        )
    if amount_cents <= 0 or amount_cents > MAX_PAYMENT_CENTS:
        raise ValidationFailed(
            f"amount_cents must be between 1 and {MAX_PAYMENT_CENTS}", details={"field": "amount_cents"}
        )
    return amount_cents


def apply_payment(invoice: Invoice, amount_cents: int) -> PaymentApplication:
    check_amount(amount_cents)
    ensure_payable(invoice)
    if amount_cents > invoice.amount_remaining_cents:
        raise PaymentExceedsAmountDue(
            f"the payment of {amount_cents} exceeds the amount due of {invoice.amount_remaining_cents} "
            f"({invoice.currency} minor units)",
            details={"field": "amount_cents"},
        )
    remaining = invoice.amount_remaining_cents - amount_cents
    return PaymentApplication(
        amount_cents=amount_cents,
        paid_after=invoice.amount_paid_cents + amount_cents,
        remaining_after=remaining,
        from_status=invoice.status,
        becomes_paid=remaining == 0,
    )


def check_paid_at(paid_at: datetime, now: datetime) -> datetime:
    """Timezone-aware and not in the future (beyond clock skew); returned in UTC."""
    if paid_at.tzinfo is None or paid_at.utcoffset() is None:
        raise ValidationFailed(
            "paid_at must be an ISO timestamp with a time zone, e.g. 2026-11-24T10:00:00Z",
            details={"field": "paid_at"},
        )
    if paid_at > now + PAID_AT_SKEW:
        raise ValidationFailed("paid_at must not be in the future", details={"field": "paid_at"})
    return paid_at.astimezone(UTC)


def check_reference(reference: str) -> str:
    text = (reference or "").strip()
    if len(text) > MAX_REFERENCE:
        raise ValidationFailed(f"reference must be at most {MAX_REFERENCE} characters", details={"field": "reference"})
    return text


# ---------------------------------------------------------------- payment links
def new_link_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(raw: str) -> bool:
    """Cheap shape check before any lookup: anything else cannot be one of ours."""
    return bool(_TOKEN_SHAPE.match(raw or ""))


def link_expiry(due_date: date, ttl_days_after_due: int, today: date) -> datetime:
    """The end (UTC) of the day `ttl_days_after_due` days after the due date; counted from today
    instead when the due date is past, so a link re-issued for an overdue invoice is not born expired."""
    last_day = max(due_date, today) + timedelta(days=ttl_days_after_due)
    return datetime.combine(last_day, time(23, 59, 59, 999000), tzinfo=UTC)


@dataclass(frozen=True)
class PaymentLink:
    id: str
    invoice_id: str
    token_hash: str
    created_at: str
    expires_at: str  # ISO, UTC, compares as text
    created_by: str = ""
    revoked_at: str | None = None
    used_at: str | None = None
    payment_id: str | None = None

    def is_active(self, now_iso: str) -> bool:
        return self.revoked_at is None and self.used_at is None and now_iso < self.expires_at

    def opens_document(self, now_iso: str) -> bool:
        """The invoice PDF behind the link: as long as the link lives, also once it paid the invoice
        (the customer still wants the invoice then); never once revoked or replaced."""
        return self.revoked_at is None and now_iso < self.expires_at


@dataclass(frozen=True)
class IssuedLink:
    """A link as returned once to its issuer: the only time the token (in `url`) is ever seen."""

    link: PaymentLink
    url: str


def new_link(
    invoice_id: str, due_date: date | None, created_by: str, ttl_days_after_due: int, now: datetime
) -> tuple[PaymentLink, str]:
    """A new link for invoice `invoice_id` and its token. Only the token's hash is ever stored; the
    token goes into the URL returned once to the issuer."""
    if due_date is None:
        raise InvoicingError(f"invoice {invoice_id} has no due date")  # finalized invoices always have one
    token = new_link_token()
    link = PaymentLink(
        id=new_id("plink"),
        invoice_id=invoice_id,
        token_hash=hash_token(token),
        created_at=clock.iso(now),
        expires_at=clock.iso(link_expiry(due_date, ttl_days_after_due, now.date())),
        created_by=created_by,
    )
    return link, token
