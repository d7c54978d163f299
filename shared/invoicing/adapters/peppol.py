"""Sending e-invoices over Peppol: the port an access point plugs into, and an in-memory fake.

Sending is out of scope for now (issue #19); this fixes the shape so a deployer can plug in a
certified access point (Storecove, ecosio, Pagero, ...; each has an HTTP API) without touching a use
case. docs/einvoicing.md "Peppol" says how. An access point does the network part (SMP lookup, AS4,
the Peppol envelope); we hand it a valid Peppol BIS Billing 3.0 UBL document and its two addresses.

Contract every implementation keeps (the fake below is the reference, tests/unit/test_peppol.py):
- `send` is idempotent on `idempotency_key` (use the invoice id + the document's number): a retry
  after a timeout returns the first submission, never a second delivery;
- `ReceiverNotRegistered`: the buyer is not on Peppol for this document type (not retryable: fall
  back to e-mail); `DocumentRejected`: the access point's own validation refused the XML (not
  retryable: a bug or missing data); `AccessPointUnavailable`: retry later (the queue's redrive).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from invoicing.einvoice.model import DocumentType, ElectronicAddress

# Peppol BIS Billing 3.0 identifiers (Peppol Policy for use of identifiers)
PROCESS_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
DOCUMENT_TYPE_IDS = {
    DocumentType.INVOICE: (
        "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice"
        "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
    ),
    DocumentType.CREDIT_NOTE: (
        "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote"
        "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
    ),
}


class PeppolError(RuntimeError):
    retryable = False


class ReceiverNotRegistered(PeppolError):
    pass


class DocumentRejected(PeppolError):
    pass


class AccessPointUnavailable(PeppolError):
    retryable = True


class SubmissionStatus(StrEnum):
    ACCEPTED = "accepted"  # the access point took it; delivery pending
    DELIVERED = "delivered"  # the receiver's access point acknowledged it (AS4 receipt)
    FAILED = "failed"  # delivery failed after the access point's own retries


@dataclass(frozen=True)
class OutgoingDocument:
    sender: ElectronicAddress  # BT-34
    receiver: ElectronicAddress  # BT-49
    document_type: DocumentType
    xml: bytes  # Peppol BIS Billing 3.0 UBL (einvoice.render(doc, Syntax.UBL))
    idempotency_key: str


@dataclass(frozen=True)
class Submission:
    id: str
    status: SubmissionStatus
    detail: str = ""


class AccessPoint(Protocol):
    def can_receive(self, receiver: ElectronicAddress, document_type: DocumentType) -> bool:
        """The SMP lookup: is `receiver` registered for this document type and process?"""
        ...

    def send(self, document: OutgoingDocument) -> Submission: ...

    def status(self, submission_id: str) -> Submission: ...


def participant_id(address: ElectronicAddress) -> str:
    """The Peppol participant identifier of an electronic address: `iso6523-actorid-upis::0208:0123456749`."""
    return f"iso6523-actorid-upis::{address.scheme}:{address.identifier.strip().lower()}"


@dataclass
class InMemoryAccessPoint:
    """A fake access point for tests and `make dev`: a registry of receivers, the documents sent,
    and switches to make the next call fail the way a real one can."""

    registered: set[str] = field(default_factory=set)  # participant ids
    sent: dict[str, tuple[OutgoingDocument, Submission]] = field(default_factory=dict)
    unavailable: bool = False

    def register(self, receiver: ElectronicAddress) -> None:
        self.registered.add(participant_id(receiver))

    def can_receive(self, receiver: ElectronicAddress, document_type: DocumentType) -> bool:
        if self.unavailable:
            raise AccessPointUnavailable("access point unavailable")
        return participant_id(receiver) in self.registered

    def send(self, document: OutgoingDocument) -> Submission:
        if self.unavailable:
            raise AccessPointUnavailable("access point unavailable")
        previous = self.sent.get(document.idempotency_key)
        if previous is not None:
            if previous[0].xml != document.xml:
                raise DocumentRejected("idempotency key reused for a different document")
            return previous[1]
        if not self.can_receive(document.receiver, document.document_type):
            raise ReceiverNotRegistered(f"{participant_id(document.receiver)} cannot receive this document type")
        _check_envelope(document)
        submission = Submission(
            id="sub_" + hashlib.sha256(document.idempotency_key.encode()).hexdigest()[:16],
            status=SubmissionStatus.ACCEPTED,
        )
        self.sent[document.idempotency_key] = (document, submission)
        return submission

    def deliver_all(self) -> None:
        """What the network does later: every accepted document is delivered."""
        for key, (document, submission) in list(self.sent.items()):
            self.sent[key] = (document, Submission(submission.id, SubmissionStatus.DELIVERED))

    def status(self, submission_id: str) -> Submission:
        for _, submission in self.sent.values():
            if submission.id == submission_id:
                return submission
        raise PeppolError(f"unknown submission {submission_id}")


def _check_envelope(document: OutgoingDocument) -> None:
    """What every access point checks before taking a document: the XML is the declared UBL type,
    in the Peppol BIS customization, and its addresses are the envelope's."""
    from lxml import etree

    try:
        root = etree.fromstring(document.xml)
    except etree.XMLSyntaxError as bad:
        raise DocumentRejected(f"not XML: {bad}") from None
    expected_root = DOCUMENT_TYPE_IDS[document.document_type].split("::")[1].split("##")[0]
    if etree.QName(root).localname != expected_root:
        raise DocumentRejected(f"the document is not a UBL {expected_root}")
    cbc = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
    customization = root.findtext(f"{{{cbc}}}CustomizationID") or ""
    if "urn:fdc:peppol.eu:2017:poacc:billing:3.0" not in customization:
        raise DocumentRejected("the document is not Peppol BIS Billing 3.0")
    endpoints = [(el.get("schemeID"), (el.text or "").strip()) for el in root.iter(f"{{{cbc}}}EndpointID")]
    wanted = [
        (document.sender.scheme, document.sender.identifier),
        (document.receiver.scheme, document.receiver.identifier),
    ]
    if endpoints != wanted:
        raise DocumentRejected("the envelope's addresses are not the document's BT-34 and BT-49")
