"""Credit notes (/invoices/{id}/credit-notes, /credit-notes/{id}), their refunds
(/credit-notes/{id}/refunds/{refund_id}/retry|complete) and the customer balance ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from invoicing.domain import money
from invoicing.domain.credit import (
    MAX_CREDIT_LINES,
    MAX_MEMO,
    BalanceTransaction,
    CreditMethod,
    CreditReason,
    LineCredit,
)
from invoicing.domain.refunds import MAX_REFUND_REFERENCE
from invoicing.http.actor import current_actor
from invoicing.observability import logger
from invoicing.root import get_services
from invoicing.schemas.objects import CreditMethodName as Method
from invoicing.schemas.objects import CreditNoteOut, RefundOut, credit_note_out, refund_out
from invoicing.schemas.objects import CreditReasonName as Reason
from invoicing.use_cases import credit_notes as uc
from invoicing.use_cases import refunds as refunds_uc
from schemas import (
    NOT_BLANK,
    Id,
    Instant,
    LineDescription,
    Quantity,
    StartingAfter,
    Strict,
    error_responses,
    json_int,
    without_default,
)

router = Router()

PositiveCents = Annotated[json_int(gt=0, le=10**12), Field(description="Minor units, > 0")]


def _absent(**extra: str) -> Any:
    # optional but not nullable: the document's oneOf reads "present", and so does the validator
    return Field(default=None, json_schema_extra=without_default, **extra)  # type: ignore[arg-type]


class CreditLineIn(Strict):
    """Either a free line (description + amount_cents) or a quantity of an original line (line_id +
    quantity), never both kinds: the document's oneOf is the whole rule."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["description", "amount_cents"], "not": {"required": ["line_id"]}},
                {"required": ["line_id", "quantity"], "not": {"required": ["amount_cents"]}},
            ]
        },
    )

    description: LineDescription = _absent()
    amount_cents: PositiveCents = _absent()
    line_id: Id = _absent()
    quantity: Quantity = _absent()

    @model_validator(mode="after")
    def _one_kind(self) -> CreditLineIn:
        free = self.amount_cents is not None
        original = self.line_id is not None
        if free == original:
            raise ValueError("give description and amount_cents, or line_id and quantity")
        if free and not self.description:
            raise ValueError("description is required with amount_cents")
        if original and self.quantity is None:
            raise ValueError("quantity is required with line_id")
        return self


class CreditNoteIn(Strict):
    """amount_cents (the credit, tax included) or lines, exactly one of them."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"oneOf": [{"required": ["amount_cents"]}, {"required": ["lines"]}]}
    )

    amount_cents: PositiveCents = _absent(description="The credit, tax included")
    lines: Annotated[list[CreditLineIn], Field(min_length=1, max_length=MAX_CREDIT_LINES)] = _absent()
    reason: Reason
    memo: Annotated[str, Field(max_length=MAX_MEMO)] = ""
    method: Method = "customer_balance"

    @model_validator(mode="after")
    def _amount_or_lines(self) -> CreditNoteIn:
        if (self.amount_cents is None) == (self.lines is None):
            raise ValueError("give either amount_cents or lines")
        return self


class CompleteRefundIn(Strict):
    reference: Annotated[str, Field(min_length=1, max_length=MAX_REFUND_REFERENCE, pattern=NOT_BLANK)] = Field(
        description="How the money went back, e.g. the bank transfer's reference"
    )
    paid_at: Instant | None = Field(
        default=None, description="ISO timestamp with a time zone; not in the future. Default: now"
    )


class CreditNoteList(BaseModel):
    data: list[CreditNoteOut]


class BalanceTransactionOut(BaseModel):
    id: str
    customer_id: str
    currency: str
    amount_cents: int = Field(description="> 0 credit to the customer, < 0 applied to an invoice")
    ending_balance_cents: int
    type: str
    credit_note_id: str | None
    invoice_id: str | None
    created_at: str


class BalanceTransactionList(BaseModel):
    data: list[BalanceTransactionOut]
    has_more: bool
    next_cursor: str | None = Field(description="Pass as starting_after to get the next page")


class PdfLinkOut(BaseModel):
    url: str
    expires_at: str


def balance_transaction_out(t: BalanceTransaction) -> BalanceTransactionOut:
    return BalanceTransactionOut(
        id=t.id,
        customer_id=t.customer_id,
        currency=t.currency,
        amount_cents=t.amount_cents,
        ending_balance_cents=t.ending_balance_cents,
        type=t.kind,
        credit_note_id=t.credit_note_id,
        invoice_id=t.invoice_id,
        created_at=t.created_at,
    )


def _line(line: CreditLineIn, i: int) -> LineCredit:
    quantity: Decimal | None = None
    if line.quantity is not None:
        quantity = money.parse_quantity(line.quantity, f"lines.{i}.quantity")
    return LineCredit(
        description=line.description, amount_cents=line.amount_cents, line_id=line.line_id, quantity=quantity
    )


@router.post(
    "/invoices/<invoice_id>/credit-notes",
    summary="Issue a credit note against an open, uncollectible or paid invoice",
    responses=error_responses(404, 409, 422, success=201),
)
def handle_issue_credit_note(
    invoice_id: Annotated[Id, Path()], body: Annotated[CreditNoteIn, Body()]
) -> Response[CreditNoteOut]:
    logger.append_keys(invoice_id=invoice_id)
    cmd = uc.IssueCreditNote(
        reason=CreditReason(body.reason),
        method=CreditMethod(body.method),
        amount_cents=body.amount_cents,
        lines=tuple(_line(ln, i) for i, ln in enumerate(body.lines or [])),
        memo=body.memo,
    )
    note = uc.issue_credit_note(get_services(), current_actor(router), invoice_id, cmd)
    return Response(status_code=201, body=credit_note_out(note), content_type="application/json")


@router.get("/invoices/<invoice_id>/credit-notes", summary="Credit notes of an invoice", responses=error_responses(404))
def handle_list_credit_notes(invoice_id: Annotated[Id, Path()]) -> CreditNoteList:
    return CreditNoteList(data=[credit_note_out(n) for n in uc.list_credit_notes(get_services(), invoice_id)])


@router.get("/credit-notes/<credit_note_id>", summary="A credit note", responses=error_responses(404))
def handle_get_credit_note(credit_note_id: Annotated[Id, Path()]) -> CreditNoteOut:
    return credit_note_out(uc.get_credit_note(get_services(), credit_note_id))


@router.post(
    "/credit-notes/<credit_note_id>/void",
    summary="Void a credit note: reverses its effect on the invoice and the customer balance",
    responses=error_responses(404, 409),
)
def handle_void_credit_note(credit_note_id: Annotated[Id, Path()]) -> CreditNoteOut:
    logger.append_keys(credit_note_id=credit_note_id)
    return credit_note_out(uc.void_credit_note(get_services(), current_actor(router), credit_note_id))


@router.post(
    "/credit-notes/<credit_note_id>/refunds/<refund_id>/retry",
    summary="Retry a failed Stripe refund (an earlier attempt that went through at Stripe is recorded, not repeated)",
    responses=error_responses(404, 409, 422, 503),
)
def handle_retry_refund(credit_note_id: Annotated[Id, Path()], refund_id: Annotated[Id, Path()]) -> RefundOut:
    logger.append_keys(credit_note_id=credit_note_id, refund_id=refund_id)
    return refund_out(refunds_uc.retry_refund(get_services(), current_actor(router), credit_note_id, refund_id))


@router.post(
    "/credit-notes/<credit_note_id>/refunds/<refund_id>/complete",
    summary="Record a pending manual refund as paid back by hand",
    responses=error_responses(404, 409, 422),
)
def handle_complete_refund(
    credit_note_id: Annotated[Id, Path()], refund_id: Annotated[Id, Path()], body: Annotated[CompleteRefundIn, Body()]
) -> RefundOut:
    logger.append_keys(credit_note_id=credit_note_id, refund_id=refund_id)
    cmd = refunds_uc.CompleteRefund(reference=body.reference, paid_at=body.paid_at)
    return refund_out(refunds_uc.complete_refund(get_services(), current_actor(router), credit_note_id, refund_id, cmd))


@router.get(
    "/credit-notes/<credit_note_id>/pdf",
    summary="A short-lived download link for the credit note's PDF",
    responses=error_responses(404, 409),
)
def handle_get_credit_note_pdf(credit_note_id: Annotated[Id, Path()]) -> PdfLinkOut:
    url, expires_at = uc.credit_note_pdf_download(get_services(), credit_note_id)
    return PdfLinkOut(url=url, expires_at=expires_at)


@router.get(
    "/customers/<customer_id>/balance-transactions",
    summary="The customer's balance ledger, newest first, paged",
    responses=error_responses(404, 422),
)
def handle_list_balance_transactions(
    customer_id: Annotated[Id, Path()],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: StartingAfter = None,
) -> BalanceTransactionList:
    txns, next_cursor = uc.balance_transactions_page(
        get_services(), customer_id, limit=limit, starting_after=starting_after
    )
    return BalanceTransactionList(
        data=[balance_transaction_out(t) for t in txns], has_more=next_cursor is not None, next_cursor=next_cursor
    )
