"""The Peppol port's contract, on the in-memory access point (adapters/peppol.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from invoicing.adapters.peppol import (
    AccessPointUnavailable,
    DocumentRejected,
    InMemoryAccessPoint,
    OutgoingDocument,
    ReceiverNotRegistered,
    SubmissionStatus,
    participant_id,
)
from invoicing.einvoice import render
from invoicing.einvoice.mapping import invoice_document
from invoicing.einvoice.model import DocumentType, Syntax
from tests.support.einvoice_builders import (
    BELGIAN_BUYER,
    BELGIAN_BUYER_SETTINGS,
    SELLER,
    LineSpec,
    customer,
    finalized_invoice,
    inputs,
)


def _document(**changes: object) -> OutgoingDocument:
    invoice = finalized_invoice(LineSpec("Consulting", "1", 10000, "txr_19", "19"), buyer=customer(BELGIAN_BUYER))
    xml = render(invoice_document(invoice, inputs(buyer=BELGIAN_BUYER_SETTINGS)), Syntax.UBL)
    assert SELLER.electronic_address and BELGIAN_BUYER_SETTINGS.electronic_address
    base = OutgoingDocument(
        sender=SELLER.electronic_address,
        receiver=BELGIAN_BUYER_SETTINGS.electronic_address,
        document_type=DocumentType.INVOICE,
        xml=xml,
        idempotency_key=f"{invoice.id}:{invoice.invoice_number}",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def access_point() -> InMemoryAccessPoint:
    ap = InMemoryAccessPoint()
    assert BELGIAN_BUYER_SETTINGS.electronic_address is not None
    ap.register(BELGIAN_BUYER_SETTINGS.electronic_address)
    return ap


def test_a_registered_receiver_gets_the_document_once_however_often_it_is_sent(access_point) -> None:  # noqa: ANN001
    document = _document()
    first = access_point.send(document)
    again = access_point.send(document)
    assert first == again and first.status is SubmissionStatus.ACCEPTED
    assert len(access_point.sent) == 1
    access_point.deliver_all()
    assert access_point.status(first.id).status is SubmissionStatus.DELIVERED


def test_an_unregistered_receiver_is_not_retryable(access_point) -> None:  # noqa: ANN001
    access_point.registered.clear()
    with pytest.raises(ReceiverNotRegistered) as raised:
        access_point.send(_document())
    assert not raised.value.retryable


def test_an_unavailable_access_point_is_retryable(access_point) -> None:  # noqa: ANN001
    access_point.unavailable = True
    with pytest.raises(AccessPointUnavailable) as raised:
        access_point.send(_document())
    assert raised.value.retryable


@pytest.mark.parametrize(
    "change",
    [
        {"document_type": DocumentType.CREDIT_NOTE},  # an Invoice declared as a credit note
        {"xml": b"not xml"},
    ],
)
def test_a_document_that_is_not_what_the_envelope_says_is_rejected(access_point, change) -> None:  # noqa: ANN001
    with pytest.raises(DocumentRejected):
        access_point.send(_document(**change))


def test_the_envelope_addresses_must_be_the_documents(access_point) -> None:  # noqa: ANN001
    other = replace(BELGIAN_BUYER_SETTINGS.electronic_address, identifier="0999999999")  # type: ignore[type-var]
    access_point.register(other)
    with pytest.raises(DocumentRejected):
        access_point.send(_document(receiver=other))


def test_a_reused_idempotency_key_with_another_document_is_rejected(access_point) -> None:  # noqa: ANN001
    access_point.send(_document())
    with pytest.raises(DocumentRejected):
        access_point.send(_document(xml=_document().xml.replace(b"Consulting", b"Training")))


def test_participant_ids_follow_the_peppol_policy() -> None:
    assert participant_id(BELGIAN_BUYER_SETTINGS.electronic_address) == "iso6523-actorid-upis::0208:0123456749"  # type: ignore[arg-type]
