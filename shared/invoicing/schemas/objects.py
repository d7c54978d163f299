"""The API's representation of the objects it returns, shared by the admin API's responses and the
webhook payloads (`data.object` is the object exactly as the API returns it after the change)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

from invoicing.domain.credit import CreditNote
from invoicing.domain.customer import Customer
from invoicing.domain.invoice import Invoice, InvoiceLine
from invoicing.domain.refunds import Refund
from invoicing.domain.reminders import ReminderRecord, SentReminder

Status = Literal["draft", "open", "paid", "void", "uncollectible"]
CreditReasonName = Literal["duplicate", "fraudulent", "order_change", "product_unsatisfactory", "other"]
CreditMethodName = Literal["customer_balance", "refund", "out_of_band"]


class AddressOut(BaseModel):
    line1: str = ""
    line2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""


class ElectronicAddressOut(BaseModel):
    scheme: str
    identifier: str


class CustomerOut(BaseModel):
    id: str
    name: str
    email: str
    address: AddressOut
    currency: str
    locale: str
    timezone: str
    tax_id: str
    reminders_enabled: bool
    balances: dict[str, int] = Field(description="Customer balance per currency, in minor units (credit > 0)")
    metadata: dict[str, str]
    created_at: str
    updated_at: str
    einvoice_format: str = "none"
    vat_id: str = ""
    electronic_address: ElectronicAddressOut | None = None
    buyer_reference: str = ""


class CustomFieldOut(BaseModel):
    key: str
    value: str


class LineOut(BaseModel):
    id: str
    description: str
    quantity: str
    unit_amount_cents: int
    amount_cents: int
    tax_rate_id: str | None
    unit_code: str
    tax_percentage: str | None
    tax_inclusive: bool | None
    tax_cents: int | None
    tax_display_name: str | None


class CustomerSnapshotOut(BaseModel):
    name: str
    email: str
    address: AddressOut
    tax_id: str
    locale: str


class InvoiceOut(BaseModel):
    id: str
    customer_id: str
    status: Status
    currency: str
    invoice_number: str | None
    subscription_id: str | None
    period_start: date | None
    period_end: date | None
    due_date: date | None
    days_until_due: int
    memo: str
    purchase_order: str = Field(description="The buyer's reference; empty when none")
    custom_fields: list[CustomFieldOut]
    subtotal_cents: int
    tax_cents: int
    total_cents: int
    amount_paid_cents: int
    amount_remaining_cents: int
    credited_cents: int = Field(default=0, description="Sum of the invoice's issued credit notes")
    pre_payment_credited_cents: int = Field(default=0, description="Credit that reduced the amount due")
    post_payment_credited_cents: int = Field(default=0, description="Credit beyond the amount due (balance, refund)")
    refunded_cents: int = Field(default=0, description="Refunded through credit notes")
    starting_balance_cents: int = Field(default=0, description="Customer balance (credit) before finalization")
    applied_balance_cents: int = Field(default=0, description="Customer balance applied at finalization")
    usd_total_cents: int | None
    fx_rate: str | None
    fx_rate_source: str | None
    fx_rate_as_of: str | None
    customer: CustomerSnapshotOut | None
    lines: list[LineOut] | None = Field(description="Omitted (null) in list responses")
    pdf_status: str | None
    reissue_of: str | None = Field(description="The voided invoice this draft corrects")
    reissued_as: str | None = Field(description="Void with reissue: the id of the corrected draft made from this one")
    metadata: dict[str, str]
    version: int
    created_at: str
    updated_at: str
    finalized_at: str | None
    voided_at: str | None
    paid_at: str | None
    marked_uncollectible_at: str | None
    payment_url: str | None = Field(
        default=None, description="Only in the finalize response: the payment link, shown this once"
    )


def customer_out(c: Customer) -> CustomerOut:
    return CustomerOut(
        id=c.id,
        name=c.name,
        email=c.email,
        address=AddressOut(**c.address.__dict__),
        currency=c.currency,
        locale=c.locale,
        timezone=c.timezone,
        tax_id=c.tax_id,
        reminders_enabled=c.reminders_enabled,
        balances=c.balances,
        metadata=c.metadata,
        created_at=c.created_at,
        updated_at=c.updated_at,
        einvoice_format=c.einvoice_format,
        vat_id=c.vat_id,
        electronic_address=ElectronicAddressOut(scheme=c.electronic_address_scheme, identifier=c.electronic_address)
        if c.electronic_address
        else None,
        buyer_reference=c.buyer_reference,
    )


def line_out(line: InvoiceLine) -> LineOut:
    tax = line.tax
    return LineOut(
        id=line.id,
        description=line.description,
        quantity=f"{line.quantity:.4f}",
        unit_amount_cents=line.unit_amount_cents,
        amount_cents=line.amount_cents,
        tax_rate_id=tax.tax_rate_id if tax else line.tax_rate_id,
        unit_code=line.unit_code,
        tax_percentage=f"{tax.percentage:.4f}" if tax else None,
        tax_inclusive=tax.inclusive if tax else None,
        tax_cents=tax.tax_cents if tax else None,
        tax_display_name=(tax.display_name or None) if tax else None,
    )


def invoice_out(inv: Invoice, *, with_lines: bool = True) -> InvoiceOut:
    snap = inv.customer
    return InvoiceOut(
        id=inv.id,
        customer_id=inv.customer_id,
        status=inv.status.value,
        currency=inv.currency,
        invoice_number=inv.invoice_number,
        subscription_id=inv.subscription_id,
        period_start=inv.period_start,
        period_end=inv.period_end,
        due_date=inv.due_date,
        days_until_due=inv.days_until_due,
        memo=inv.memo,
        purchase_order=inv.purchase_order,
        custom_fields=[CustomFieldOut(key=key, value=value) for key, value in inv.custom_fields],
        subtotal_cents=inv.subtotal_cents,
        tax_cents=inv.tax_cents,
        total_cents=inv.total_cents,
        amount_paid_cents=inv.amount_paid_cents,
        amount_remaining_cents=inv.amount_remaining_cents,
        credited_cents=inv.credited_cents,
        pre_payment_credited_cents=inv.pre_payment_credited_cents,
        post_payment_credited_cents=inv.post_payment_credited_cents,
        refunded_cents=inv.refunded_cents,
        starting_balance_cents=inv.starting_balance_cents,
        applied_balance_cents=inv.applied_balance_cents,
        usd_total_cents=inv.usd_total_cents,
        fx_rate=str(inv.fx_rate) if inv.fx_rate is not None else None,
        fx_rate_source=inv.fx_rate_source,
        fx_rate_as_of=inv.fx_rate_as_of,
        customer=CustomerSnapshotOut(
            name=snap.name,
            email=snap.email,
            address=AddressOut(**snap.address.__dict__),
            tax_id=snap.tax_id,
            locale=snap.locale,
        )
        if snap
        else None,
        lines=[line_out(ln) for ln in inv.lines] if with_lines else None,
        pdf_status=inv.pdf_status,
        reissue_of=inv.reissue_of,
        reissued_as=inv.reissued_as,
        metadata=inv.metadata,
        version=inv.version,
        created_at=inv.created_at,
        updated_at=inv.updated_at,
        finalized_at=inv.finalized_at,
        voided_at=inv.voided_at,
        paid_at=inv.paid_at,
        marked_uncollectible_at=inv.marked_uncollectible_at,
    )


class CreditLineOut(BaseModel):
    description: str
    amount_cents: int
    tax_cents: int
    total_cents: int
    line_id: str | None
    quantity: str | None
    unit_amount_cents: int | None


class RefundOut(BaseModel):
    id: str
    credit_note_id: str
    invoice_id: str
    payment_id: str
    amount_cents: int
    currency: str
    provider: Literal["manual", "stripe"]
    status: Literal["pending", "succeeded", "failed"] = Field(
        description="manual: pending until completed (paid back by hand); stripe: failed ones can be retried"
    )
    provider_ref: str | None = Field(description="Stripe: the refund (re_...) of the latest attempt known")
    attempts: int = Field(description="Stripe: refund calls made, each under its own idempotency key")
    failure: str | None = Field(description="Why the latest Stripe attempt failed")
    reference: str | None = Field(description="Manual: finance's reference of the money paid back")
    paid_at: str | None = Field(description="Manual: when it was paid back")
    completed_by: str | None = Field(description="Manual: who recorded it as paid back")
    created_at: str
    updated_at: str


class CreditNoteOut(BaseModel):
    id: str
    number: str
    invoice_id: str
    invoice_number: str | None
    customer_id: str
    status: Literal["issued", "void"]
    currency: str
    reason: CreditReasonName
    method: CreditMethodName
    memo: str
    lines: list[CreditLineOut]
    subtotal_cents: int
    tax_cents: int
    total_cents: int
    pre_payment_cents: int = Field(description="Took off the amount due of the (open) invoice")
    post_payment_cents: int
    customer_balance_cents: int
    refund_cents: int
    out_of_band_cents: int
    refunds: list[RefundOut]
    pdf_status: str | None
    created_at: str
    voided_at: str | None


def credit_note_out(n: CreditNote) -> CreditNoteOut:
    return CreditNoteOut(
        id=n.id,
        number=n.number,
        invoice_id=n.invoice_id,
        invoice_number=n.invoice_number,
        customer_id=n.customer_id,
        status=n.status.value,
        currency=n.currency,
        reason=n.reason.value,
        method=n.method.value,
        memo=n.memo,
        lines=[
            CreditLineOut(
                description=ln.description,
                amount_cents=ln.amount_cents,
                tax_cents=ln.tax_cents,
                total_cents=ln.total_cents,
                line_id=ln.line_id,
                quantity=f"{ln.quantity:.4f}" if ln.quantity is not None else None,
                unit_amount_cents=ln.unit_amount_cents,
            )
            for ln in n.lines
        ],
        subtotal_cents=n.subtotal_cents,
        tax_cents=n.tax_cents,
        total_cents=n.total_cents,
        pre_payment_cents=n.pre_payment_cents,
        post_payment_cents=n.post_payment_cents,
        customer_balance_cents=n.balance_cents,
        refund_cents=n.refund_cents,
        out_of_band_cents=n.out_of_band_cents,
        refunds=[refund_out(r) for r in n.refunds],
        pdf_status=n.pdf_status,
        created_at=n.created_at,
        voided_at=n.voided_at,
    )


def refund_out(r: Refund) -> RefundOut:
    return RefundOut(
        id=r.id,
        credit_note_id=r.credit_note_id,
        invoice_id=r.invoice_id,
        payment_id=r.payment_id,
        amount_cents=r.amount_cents,
        currency=r.currency,
        provider=r.provider,  # type: ignore[arg-type]
        status=r.status.value,
        provider_ref=r.provider_ref,
        attempts=r.attempts_made,
        failure=r.failure,
        reference=r.reference,
        paid_at=r.paid_at,
        completed_by=r.completed_by,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


class SentReminderOut(BaseModel):
    """A reminder as its `reminder.sent` event carries it: the listing's fields but its attempt count
    and last error (a sent reminder has none; the ledger counts the attempts)."""

    id: str = Field(description="The reminder's id (derived from its invoice and key)")
    invoice_id: str
    key: str = Field(description="The kind for scheduled reminders; manual#<id> for manual ones")
    kind: str
    status: Literal["sending", "sent", "failed", "cancelled"]
    trigger: Literal["schedule", "manual"]
    actor: str
    step_date: str | None = Field(description="The day (customer's time zone) the step fell due")
    recipient: str | None
    sent_at: str | None
    message_id: str | None = Field(description="SES message id")
    payment_link_id: str | None = Field(description="The payment link issued for this mail, if any")
    claimed_at: str


class ReminderOut(SentReminderOut):
    """One entry of an invoice's reminder ledger (`GET /invoices/{id}/reminders`)."""

    attempts: int
    last_error: str | None


def reminder_out(r: ReminderRecord) -> ReminderOut:
    return ReminderOut(**_reminder_fields(r), attempts=r.attempts, last_error=r.last_error)


def sent_reminder_out(r: SentReminder) -> SentReminderOut:
    return SentReminderOut(**_reminder_fields(r))


def _reminder_fields(r: ReminderRecord | SentReminder) -> dict[str, Any]:
    return {
        "id": r.id,
        "invoice_id": r.invoice_id,
        "key": r.key,
        "kind": r.kind,
        "status": r.status,
        "trigger": r.trigger,
        "actor": r.actor,
        "step_date": r.step_date,
        "recipient": r.recipient,
        "sent_at": r.sent_at,
        "message_id": r.message_id,
        "payment_link_id": r.payment_link_id,
        "claimed_at": r.claimed_at,
    }
