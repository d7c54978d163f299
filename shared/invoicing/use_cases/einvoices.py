"""E-invoices of issued documents: GET /invoices/{id}/einvoice and GET /credit-notes/{id}/einvoice.

Who: invoices:read. Which states: a finalized invoice (open, paid, void, uncollectible); a draft is
409 `invoice_not_finalized`. Any customer's document can be fetched in any format: the customer's
`einvoice_format` decides what finalize checks and the render job stores, not what may be asked for.

Load the document, its customer (the e-invoicing terms as stored now) and the VAT categories of its
tax rates; build it from the frozen snapshot (einvoice/mapping.py) and write it with lxml. 422
`einvoice_terms_missing` lists every business term missing for that format. Nothing is written.
"""

from __future__ import annotations

from invoicing.einvoice.inputs import credit_note_xml, invoice_xml, rate_ids
from invoicing.einvoice.model import Syntax
from invoicing.errors import Conflict
from invoicing.services import Services
from invoicing.store.tax_rates import TaxRate


def _rates(svc: Services, ids: list[str]) -> dict[str, TaxRate]:
    # with TAX_SERVICE=http a line's tax_rate_id is the external service's: no category is stored
    return svc.tax_rates.get_many(ids) if ids and svc.settings.tax_service == "rates" else {}


def get_invoice_einvoice(svc: Services, invoice_id: str, syntax: Syntax) -> bytes:
    invoice = svc.repo.get_invoice(invoice_id)
    if invoice.is_draft:
        raise Conflict(
            f"invoice {invoice_id} is a draft: only a finalized invoice is an e-invoice", code="invoice_not_finalized"
        )
    customer = svc.repo.get_customer(invoice.customer_id)
    return invoice_xml(invoice, customer, svc.settings, _rates(svc, rate_ids(invoice)), syntax)


def get_credit_note_einvoice(svc: Services, credit_note_id: str, syntax: Syntax) -> bytes:
    note = svc.credit_note_store.get(credit_note_id)
    invoice = svc.repo.get_invoice(note.invoice_id)
    customer = svc.repo.get_customer(invoice.customer_id)
    return credit_note_xml(note, invoice, customer, svc.settings, _rates(svc, rate_ids(invoice)), syntax)
