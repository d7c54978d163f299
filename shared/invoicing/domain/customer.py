"""A customer: who is invoiced, in which currency and language, and the credit balance they hold."""

from __future__ import annotations

from dataclasses import dataclass

from invoicing.domain.invoice import Address, CustomerSnapshot


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    email: str
    address: Address
    currency: str
    locale: str
    timezone: str
    tax_id: str
    reminders_enabled: bool
    balances: dict[str, int]
    metadata: dict[str, str]
    created_at: str
    updated_at: str
    # every write of the customer item (its own fields, and its balance) adds one; the customer's
    # public events carry it as their sequence (0: written before customers were versioned)
    version: int = 1
    # e-invoicing (docs/einvoicing.md): "none" receives PDFs only; ubl | cii | xrechnung also the XML,
    # checked at finalize. Items written before these fields read as the defaults.
    einvoice_format: str = "none"
    vat_id: str = ""  # BT-48, with its country prefix; empty: the free-text tax_id is used
    electronic_address: str = ""  # BT-49
    electronic_address_scheme: str = ""  # BT-49-1, a Peppol EAS code
    buyer_reference: str = ""  # BT-10 (the Leitweg-ID for German public buyers)

    def snapshot(self) -> CustomerSnapshot:
        return CustomerSnapshot(
            name=self.name, email=self.email, address=self.address, tax_id=self.tax_id, locale=self.locale
        )


def matches_search(customer: Customer, search: str) -> bool:
    """A search finds a customer by the start of its name, of any word of its name, or of its e-mail
    address, ignoring case ("acme", "gmbh", "billing@acme"). An empty search finds everyone."""
    wanted = " ".join(search.casefold().split())
    if not wanted:
        return True
    name = " ".join(customer.name.casefold().split())
    if name.startswith(wanted) or customer.email.casefold().startswith(wanted):
        return True
    words = name.split(" ")
    return any(" ".join(words[i:]).startswith(wanted) for i in range(1, len(words)))
