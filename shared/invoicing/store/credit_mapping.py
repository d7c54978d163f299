"""Credit notes, refunds and balance transactions <-> items (one mapper per entity, keys from keys.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from invoicing.domain.credit import (
    BalanceTransaction,
    CreditLine,
    CreditMethod,
    CreditNote,
    CreditNoteStatus,
    CreditReason,
)
from invoicing.domain.refunds import Refund, RefundStatus
from invoicing.store.keys import (
    credit_note_gsi1pk,
    credit_note_sk,
    customer_credit_notes_pk,
    invoice_pk,
    pdf_pending_pk,
    refund_sk,
)
from invoicing.store.mapping import plain as _plain
from invoicing.store.models import BalanceTransactionItem, CreditNoteItem, RefundItem


def _line_to_map(line: CreditLine) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": line.description,
        "amount_cents": line.amount_cents,
        "tax_cents": line.tax_cents,
        "total_cents": line.total_cents,
        "tax_inclusive": line.tax_inclusive,
    }
    if line.line_id:
        out["line_id"] = line.line_id
    if line.quantity is not None:
        out["quantity"] = str(line.quantity)
    if line.unit_amount_cents is not None:
        out["unit_amount_cents"] = line.unit_amount_cents
    return out


def _line_from_map(raw: Any) -> CreditLine:
    data = _plain(raw) or {}
    return CreditLine(
        description=str(data.get("description", "")),
        amount_cents=int(data.get("amount_cents", 0)),
        tax_cents=int(data.get("tax_cents", 0)),
        total_cents=int(data.get("total_cents", 0)),
        line_id=data.get("line_id"),
        quantity=Decimal(str(data["quantity"])) if data.get("quantity") is not None else None,
        unit_amount_cents=int(data["unit_amount_cents"]) if data.get("unit_amount_cents") is not None else None,
        tax_inclusive=bool(data.get("tax_inclusive", False)),
    )


def credit_note_to_item(cn: CreditNote) -> CreditNoteItem:
    return CreditNoteItem(
        invoice_pk(cn.invoice_id),
        credit_note_sk(cn.id),
        credit_note_id=cn.id,
        invoice_id=cn.invoice_id,
        customer_id=cn.customer_id,
        number=cn.number,
        invoice_number=cn.invoice_number,
        status=cn.status.value,
        currency=cn.currency,
        reason=cn.reason.value,
        method=cn.method.value,
        memo=cn.memo or None,
        lines=[_line_to_map(ln) for ln in cn.lines],
        subtotal_cents=cn.subtotal_cents,
        tax_cents=cn.tax_cents,
        total_cents=cn.total_cents,
        pre_payment_cents=cn.pre_payment_cents,
        post_payment_cents=cn.post_payment_cents,
        balance_cents=cn.balance_cents,
        refund_cents=cn.refund_cents,
        out_of_band_cents=cn.out_of_band_cents,
        created_at=cn.created_at,
        actor=cn.actor,
        pdf_status=cn.pdf_status,
        # on the sparse pdf_pending index until rendered, so a lost render job is repaired
        pdf_pk=pdf_pending_pk(cn.id) if cn.pdf_status == "pending" else None,
        pdf_sk=f"{cn.created_at}#{cn.id}" if cn.pdf_status == "pending" else None,
        gsi1pk=credit_note_gsi1pk(cn.id),
        gsi1sk="CREDITNOTE",
        gsi2pk=customer_credit_notes_pk(cn.customer_id),
        gsi2sk=f"{cn.created_at}#{cn.id}",
    )


def credit_note_from_item(item: CreditNoteItem, refunds: tuple[Refund, ...] = ()) -> CreditNote:
    return CreditNote(
        id=item.credit_note_id,
        number=item.number,
        invoice_id=item.invoice_id,
        invoice_number=item.invoice_number,
        customer_id=item.customer_id,
        status=CreditNoteStatus(item.status),
        currency=item.currency,
        reason=CreditReason(item.reason),
        method=CreditMethod(item.method),
        memo=item.memo or "",
        lines=tuple(_line_from_map(raw) for raw in item.lines or []),
        subtotal_cents=int(item.subtotal_cents),
        tax_cents=int(item.tax_cents),
        total_cents=int(item.total_cents),
        pre_payment_cents=int(item.pre_payment_cents),
        post_payment_cents=int(item.post_payment_cents),
        balance_cents=int(item.balance_cents),
        refund_cents=int(item.refund_cents),
        out_of_band_cents=int(item.out_of_band_cents),
        created_at=item.created_at,
        actor=item.actor,
        voided_at=item.voided_at,
        refunds=refunds,
        pdf_status=item.pdf_status,
        pdf_s3_key=item.pdf_s3_key,
    )


def refund_to_item(r: Refund) -> RefundItem:
    return RefundItem(
        invoice_pk(r.invoice_id),
        refund_sk(r.id),
        refund_id=r.id,
        invoice_id=r.invoice_id,
        payment_id=r.payment_id,
        credit_note_id=r.credit_note_id,
        amount_cents=r.amount_cents,
        currency=r.currency,
        provider=r.provider,
        status=r.status.value,
        provider_ref=r.provider_ref,
        payment_reference=r.payment_reference,
        created_at=r.created_at,
        updated_at=r.updated_at,
        failure=r.failure,
        attempts=r.attempts or None,
        provider_created=r.provider_created,
        reference=r.reference,
        paid_at=r.paid_at,
        completed_by=r.completed_by,
        claimed_at=r.claimed_at,
        version=r.version or None,
    )


def refund_from_item(item: RefundItem) -> Refund:
    return Refund(
        id=item.refund_id,
        invoice_id=item.invoice_id,
        payment_id=item.payment_id,
        credit_note_id=item.credit_note_id,
        amount_cents=int(item.amount_cents),
        currency=item.currency,
        provider=item.provider,
        status=RefundStatus(item.status),
        created_at=item.created_at,
        updated_at=item.updated_at,
        provider_ref=item.provider_ref,
        payment_reference=item.payment_reference,
        failure=item.failure,
        attempts=int(item.attempts or 0),
        provider_created=int(item.provider_created) if item.provider_created is not None else None,
        reference=item.reference,
        paid_at=item.paid_at,
        completed_by=item.completed_by,
        claimed_at=item.claimed_at,
        version=int(item.version or 0),
    )


def balance_txn_from_item(item: BalanceTransactionItem) -> BalanceTransaction:
    return BalanceTransaction(
        id=item.balance_transaction_id,
        customer_id=item.customer_id,
        currency=item.currency,
        amount_cents=int(item.amount_cents),
        ending_balance_cents=int(item.ending_balance_cents),
        kind=item.kind,
        created_at=item.created_at,
        actor=item.actor,
        credit_note_id=item.credit_note_id,
        invoice_id=item.invoice_id,
    )
