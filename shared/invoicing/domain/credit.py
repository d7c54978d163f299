"""Credit notes and the customer balance: the pure rules. No I/O, no AWS.

Modelled on Stripe's credit notes:

- A credit note reduces what an issued invoice is worth; the invoice itself is never edited, it only
  gains derived amounts (`credited_cents`, split into pre- and post-payment parts).
- Allowed on open, uncollectible and paid invoices. A draft is `invoice_not_open`, a void invoice
  `invalid_transition` (409).
- The credit notes of an invoice never add up to more than its total (`credit_exceeds_creditable`).
- On an open/uncollectible invoice the credit first reduces the amount still due (the pre-payment
  part, no money moves); whatever exceeds the amount due is post-payment credit and goes where
  `method` says: the customer's balance, a refund of what was paid, or a record of money returned
  outside the service. On a paid invoice the whole credit is post-payment.
- A refund never exceeds what was paid minus earlier refunds (`refund_exceeds_paid`). It is pending
  until Stripe or finance settles it; a failed Stripe refund can be retried (refund lifecycle below).
- Tax is credited in proportion to what is credited, rounded once with `money.round_minor`.
- The customer balance is credit the customer holds (> 0); finalization applies it to the next
  invoice in the same currency, up to that invoice's total.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from invoicing.domain import money
from invoicing.domain.invoice import Invoice, InvoiceLine, InvoiceStatus, ensure_transition
from invoicing.domain.refunds import Refund, RefundExceedsPaid
from invoicing.errors import Conflict, NotFound, ValidationFailed

MAX_CREDIT_LINES = 50
MAX_MEMO = 500

CREDITABLE_STATUSES = frozenset({InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.PAID})


class CreditReason(StrEnum):
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    ORDER_CHANGE = "order_change"
    PRODUCT_UNSATISFACTORY = "product_unsatisfactory"
    OTHER = "other"


class CreditMethod(StrEnum):
    """Where the post-payment part of a credit goes."""

    CUSTOMER_BALANCE = "customer_balance"
    REFUND = "refund"
    OUT_OF_BAND = "out_of_band"


class CreditNoteStatus(StrEnum):
    ISSUED = "issued"
    VOID = "void"


class CreditExceedsCreditable(Conflict):
    code = "credit_exceeds_creditable"


class CreditBalanceConsumed(Conflict):
    code = "credit_balance_consumed"


class CreditNoteNotVoidable(Conflict):
    code = "credit_note_not_voidable"


@dataclass(frozen=True)
class LineCredit:
    """One line of a credit note, as requested."""

    description: str | None = None
    amount_cents: int | None = None  # a free line: a tax-inclusive part of the invoice's total
    line_id: str | None = None  # or a quantity of an original line
    quantity: Decimal | None = None


@dataclass(frozen=True)
class CreditLine:
    """One computed line: `amount_cents` is before exclusive tax, `total_cents` what it credits."""

    description: str
    amount_cents: int
    tax_cents: int
    total_cents: int
    line_id: str | None = None
    quantity: Decimal | None = None
    unit_amount_cents: int | None = None
    tax_inclusive: bool = False


@dataclass(frozen=True)
class CreditAmounts:
    lines: tuple[CreditLine, ...]
    subtotal_cents: int
    tax_cents: int
    total_cents: int


@dataclass(frozen=True)
class CreditSplit:
    """How a credit lands: `pre` reduces the amount due, `post` goes through the method."""

    pre_payment_cents: int
    post_payment_cents: int
    balance_cents: int  # post-payment part added to the customer balance
    refund_cents: int
    out_of_band_cents: int
    settles_invoice: bool  # the pre-payment part brings the amount due to 0

    def applied_to(self, invoice: Invoice, total_cents: int, at: str) -> Invoice:
        """The invoice once a credit note of `total_cents` split like this is written (version + 1)."""
        return replace(
            invoice,
            version=invoice.version + 1,
            updated_at=at,
            credited_cents=invoice.credited_cents + total_cents,
            pre_payment_credited_cents=invoice.pre_payment_credited_cents + self.pre_payment_cents,
            post_payment_credited_cents=invoice.post_payment_credited_cents + self.post_payment_cents,
            amount_remaining_cents=invoice.amount_remaining_cents - self.pre_payment_cents,
            refunded_cents=invoice.refunded_cents + self.refund_cents,
            status=InvoiceStatus.PAID if self.settles_invoice else invoice.status,
            paid_at=at if self.settles_invoice else invoice.paid_at,
        )


def proportional_tax(tax_cents: int, base_cents: int, part_cents: int) -> int:
    """The tax of `part` of an amount `base` that carries `tax`: round_half_up(tax x part / base)."""
    if base_cents == 0:
        return 0
    return money.round_minor(Fraction(tax_cents * part_cents, base_cents))


def ensure_creditable(invoice: Invoice) -> None:
    """Open, uncollectible or paid. A draft is `invoice_not_open`, void `invalid_transition`."""
    if invoice.status not in CREDITABLE_STATUSES:
        if invoice.status is InvoiceStatus.DRAFT:
            ensure_transition(invoice.status, InvoiceStatus.VOID)  # raises InvoiceNotOpen
        raise Conflict(f"invoice {invoice.id} is {invoice.status.value}; it cannot be credited", code="invoice_void")


def _credit_of_line(line: InvoiceLine, quantity: Decimal, description: str | None) -> CreditLine:
    if quantity <= 0:
        raise ValidationFailed("quantity must be more than 0", details={"field": "quantity"})
    if quantity > line.quantity:  # the line's state, not the request's form: 409 like credit_exceeds_creditable
        raise Conflict(
            f"quantity must be at most the line's {line.quantity}",
            code="credit_exceeds_line",
            details={"field": "quantity"},
        )
    amount = money.line_amount(quantity, line.unit_amount_cents)
    tax = line.tax
    tax_cents = proportional_tax(tax.tax_cents, line.amount_cents, amount) if tax else 0
    inclusive = bool(tax and tax.inclusive)
    return CreditLine(
        description=description or line.description,
        amount_cents=amount,
        tax_cents=tax_cents,
        total_cents=amount if inclusive else amount + tax_cents,
        line_id=line.id,
        quantity=quantity,
        unit_amount_cents=line.unit_amount_cents,
        tax_inclusive=inclusive,
    )


def compute_credit(invoice: Invoice, *, amount_cents: int | None, lines: list[LineCredit]) -> CreditAmounts:
    """The amounts of a credit note from either a lump sum or lines.

    A lump sum (or a free line) is a tax-inclusive part of the invoice's total; its tax is the
    invoice's tax in proportion (tax x part / total). A quantity of an original line credits that
    line's amount for the quantity and the line's frozen tax in proportion. Rounded once each.
    """
    if (amount_cents is None) == (not lines):
        raise ValidationFailed("give either amount_cents or lines", details={"field": "amount_cents"})
    if amount_cents is not None:
        lines = [LineCredit(description="Credit", amount_cents=amount_cents)]
    if len(lines) > MAX_CREDIT_LINES:
        raise ValidationFailed(f"at most {MAX_CREDIT_LINES} lines", details={"field": "lines"})
    by_id = {ln.id: ln for ln in invoice.lines}
    out: list[CreditLine] = []
    for i, spec in enumerate(lines):
        if spec.line_id is not None:
            original = by_id.get(spec.line_id)
            if original is None:  # a reference to a missing item: 404 like invoice_not_found
                raise NotFound(
                    f"line {spec.line_id} is not a line of this invoice",
                    code="line_not_found",
                    details={"field": f"lines.{i}.line_id"},
                )
            if spec.quantity is None:
                raise ValidationFailed("quantity is required with line_id", details={"field": f"lines.{i}.quantity"})
            out.append(_credit_of_line(original, spec.quantity, spec.description))
            continue
        if spec.amount_cents is None or not spec.description:
            raise ValidationFailed(
                "a line needs description and amount_cents, or line_id and quantity", details={"field": f"lines.{i}"}
            )
        if spec.amount_cents <= 0:
            field = "amount_cents" if amount_cents is not None else f"lines.{i}.amount_cents"
            raise ValidationFailed("amount_cents must be greater than 0", details={"field": field})
        tax = proportional_tax(invoice.tax_cents, invoice.total_cents, spec.amount_cents)
        out.append(
            CreditLine(
                description=spec.description,
                amount_cents=spec.amount_cents,
                tax_cents=tax,
                total_cents=spec.amount_cents,
                tax_inclusive=True,
            )
        )
    total = sum(ln.total_cents for ln in out)
    tax = sum(ln.tax_cents for ln in out)
    if total <= 0:  # only lines of the invoice can sum to 0 or less: their state, not the request's form
        raise Conflict("the credit must be greater than 0", code="credit_not_positive", details={"field": "lines"})
    return CreditAmounts(lines=tuple(out), subtotal_cents=total - tax, tax_cents=tax, total_cents=total)


def creditable_cents(invoice: Invoice) -> int:
    return invoice.total_cents - invoice.credited_cents


def refundable_cents(amount_paid_cents: int, refunded_cents: int) -> int:
    return max(0, amount_paid_cents - refunded_cents)


def split_credit(invoice: Invoice, amount_cents: int, method: CreditMethod, refunded_cents: int) -> CreditSplit:
    """Check the limits and decide where the credit lands (see the module docstring)."""
    ensure_creditable(invoice)
    available = creditable_cents(invoice)
    if amount_cents > available:
        raise CreditExceedsCreditable(
            f"the credit of {amount_cents} exceeds what is left to credit on the invoice ({available} "
            f"{invoice.currency} minor units)"
        )
    due = invoice.amount_remaining_cents if invoice.status is not InvoiceStatus.PAID else 0
    pre = min(amount_cents, max(0, due))
    post = amount_cents - pre
    refund = post if method is CreditMethod.REFUND else 0
    if refund:
        # what was actually paid: the payments, not the part covered by balance or earlier credits
        paid = invoice.amount_paid_cents
        left = refundable_cents(paid, refunded_cents)
        if refund > left:
            raise RefundExceedsPaid(
                f"the refund of {refund} exceeds what was paid and not yet refunded ({left} "
                f"{invoice.currency} minor units)"
            )
    return CreditSplit(
        pre_payment_cents=pre,
        post_payment_cents=post,
        balance_cents=post if method is CreditMethod.CUSTOMER_BALANCE else 0,
        refund_cents=refund,
        out_of_band_cents=post if method is CreditMethod.OUT_OF_BAND else 0,
        settles_invoice=pre > 0 and pre == due,
    )


def check_memo(memo: str) -> str:
    text = (memo or "").strip()
    if len(text) > MAX_MEMO:
        raise ValidationFailed(f"memo must be at most {MAX_MEMO} characters", details={"field": "memo"})
    return text


# ---------------------------------------------------------------- customer balance
def balance_to_apply(balance_cents: int, amount_due_cents: int) -> int:
    """Credit applied to a new invoice: all of it, up to the amount due; never a debit (balance <= 0)."""
    if balance_cents <= 0 or amount_due_cents <= 0:
        return 0
    return min(balance_cents, amount_due_cents)


def ensure_voidable(
    *,
    status: CreditNoteStatus,
    invoice: Invoice,
    pre_payment_cents: int,
    refund_cents: int,
    balance_cents: int,
    customer_balance_cents: int,
) -> None:
    """A credit note can be voided while its effects can be reversed exactly."""
    if status is CreditNoteStatus.VOID:
        raise CreditNoteNotVoidable("the credit note is already void")
    if refund_cents:
        raise CreditNoteNotVoidable("money was refunded for this credit note; it cannot be voided")
    if pre_payment_cents and invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
        raise CreditNoteNotVoidable(
            f"the invoice is {invoice.status.value}; the amount this credit took off it cannot be put back"
        )
    if balance_cents and customer_balance_cents < balance_cents:
        raise CreditBalanceConsumed(
            f"the customer balance ({customer_balance_cents}) no longer holds the {balance_cents} this credit "
            "added; it has been applied to an invoice"
        )


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class CreditNote:
    id: str
    number: str
    invoice_id: str
    invoice_number: str | None
    customer_id: str
    status: CreditNoteStatus
    currency: str
    reason: CreditReason
    method: CreditMethod
    memo: str
    lines: tuple[CreditLine, ...]
    subtotal_cents: int
    tax_cents: int
    total_cents: int
    pre_payment_cents: int
    post_payment_cents: int
    balance_cents: int
    refund_cents: int
    out_of_band_cents: int
    created_at: str
    actor: str
    voided_at: str | None = None
    refunds: tuple[Refund, ...] = ()
    pdf_status: str | None = None
    pdf_s3_key: str | None = None


@dataclass(frozen=True)
class BalanceTransaction:
    id: str
    customer_id: str
    currency: str
    amount_cents: int  # > 0 credit to the customer, < 0 applied to an invoice
    ending_balance_cents: int
    kind: str  # credit_note, credit_note_void, applied_to_invoice
    created_at: str
    actor: str
    credit_note_id: str | None = None
    invoice_id: str | None = None


def credit_reversed(invoice: Invoice, note: CreditNote, at: str) -> Invoice:
    """The invoice once credit note `note` is voided: its credited amounts, and the amount due it took
    off, given back (version + 1). Money refunded stays refunded."""
    return replace(
        invoice,
        version=invoice.version + 1,
        updated_at=at,
        credited_cents=invoice.credited_cents - note.total_cents,
        pre_payment_credited_cents=invoice.pre_payment_credited_cents - note.pre_payment_cents,
        post_payment_credited_cents=invoice.post_payment_credited_cents - note.post_payment_cents,
        amount_remaining_cents=invoice.amount_remaining_cents + note.pre_payment_cents,
    )
