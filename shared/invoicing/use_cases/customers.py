"""Customers: who is billed, in which currency, locale and timezone."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from invoicing import clock
from invoicing.changes import UNSET, Changes, Unset
from invoicing.domain import money
from invoicing.domain.customer import Customer, matches_search
from invoicing.domain.invoice import Address
from invoicing.einvoice import codes
from invoicing.errors import ConcurrentModification, ValidationFailed
from invoicing.ids import new_id
from invoicing.services import Services
from invoicing.store.cursor import parse_position, position_cursor
from invoicing.store.retry import SHORT, retry
from invoicing.store.writes.customers import CustomerChanged

MAX_ATTEMPTS = 5
SEARCH_READ_SIZE = 100  # customers per Query while searching
SEARCH_MAX_READS = 5  # a search reads at most 5 x 100 customers per page it shows


@dataclass(frozen=True)
class CustomerListing:
    items: list[Customer]
    next_cursor: str | None  # where the next page (or the search's next stretch) starts
    read: int  # customers read to make this page
    reads: int  # Queries made


def list_customers(
    svc: Services, *, search: str = "", limit: int = 50, starting_after: str | None = None
) -> CustomerListing:
    """Customers newest first, optionally those whose name (or a word of it) or e-mail starts with
    ``search``. Bounded: one Query per page without a search; with one, at most SEARCH_MAX_READS Queries
    of SEARCH_READ_SIZE customers, then the page ends early with a cursor to search on from there (a
    page may then hold fewer than ``limit`` customers, or none)."""
    if not 1 <= limit <= 100:
        raise ValidationFailed("limit must be between 1 and 100", details={"field": "limit"})
    search = search.strip()[:100]
    parse_position(starting_after)  # a 422 for text that is not a cursor
    cursor = starting_after or None
    if not search:
        page = svc.repo.list_customers(limit=limit, cursor=cursor)
        return CustomerListing(items=page.items, next_cursor=page.next_cursor, read=len(page.items), reads=1)
    found: list[Customer] = []
    read = reads = 0
    while reads < SEARCH_MAX_READS:
        page = svc.repo.list_customers(limit=SEARCH_READ_SIZE, cursor=cursor)
        reads += 1
        for n, customer in enumerate(page.items):
            read += 1
            if not matches_search(customer, search):
                continue
            found.append(customer)
            if len(found) == limit:
                more = n + 1 < len(page.items) or page.next_cursor is not None
                after = position_cursor(customer.created_at, customer.id) if more else None
                return CustomerListing(items=found, next_cursor=after, read=read, reads=reads)
        cursor = page.next_cursor
        if cursor is None:
            break
    return CustomerListing(items=found, next_cursor=cursor, read=read, reads=reads)


def _check_locale(value: str) -> str:
    from babel import Locale, UnknownLocaleError  # only customer writes need CLDR data

    try:
        Locale.parse(value)
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValidationFailed(
            f"locale {value!r} is not a known locale (e.g. en_US, de_DE)", details={"field": "locale"}
        ) from None
    return value


def _check_timezone(value: str) -> str:
    if value not in available_timezones():
        raise ValidationFailed(
            f"timezone {value!r} is not an IANA timezone (e.g. Europe/Berlin)", details={"field": "timezone"}
        )
    ZoneInfo(value)
    return value


EINVOICE_FORMATS = ("none", "ubl", "cii", "xrechnung")
VAT_ID = re.compile(r"[A-Z]{2}[A-Za-z0-9+*.]{2,13}")  # BT-48: the country prefix, then 2..13 characters
EINVOICE_FIELDS = ("einvoice_format", "vat_id", "electronic_address", "electronic_address_scheme", "buyer_reference")


def _check_einvoice_terms(terms: dict[str, str]) -> dict[str, str]:
    """The customer's e-invoicing terms (a full set: the stored ones with the request's changes
    applied). Their shape is checked here; whether an invoice can be issued with them is the
    finalize-time check (domain/einvoicing.py)."""
    if terms["einvoice_format"] not in EINVOICE_FORMATS:
        raise ValidationFailed(
            f"einvoice_format must be one of {', '.join(EINVOICE_FORMATS)}", details={"field": "einvoice_format"}
        )
    if terms["vat_id"] and not VAT_ID.fullmatch(terms["vat_id"]):
        raise ValidationFailed(
            "vat_id must be a VAT identifier with its country prefix, e.g. DE123456789", details={"field": "vat_id"}
        )
    scheme, identifier = terms["electronic_address_scheme"], terms["electronic_address"]
    if bool(scheme) != bool(identifier.strip()):
        raise ValidationFailed(
            "electronic_address needs both scheme and identifier", details={"field": "electronic_address"}
        )
    if scheme and scheme not in codes.EAS_SCHEMES:
        raise ValidationFailed(
            f"electronic_address.scheme {scheme!r} is not a Peppol EAS code (e.g. 0088, 0204, 9930, EM)",
            details={"field": "electronic_address.scheme"},
        )
    return terms


def create_customer(
    svc: Services,
    *,
    name: str,
    email: str,
    address: dict[str, str] | None = None,
    currency: str = "USD",
    locale: str = "en_US",
    timezone: str = "UTC",
    tax_id: str = "",
    reminders_enabled: bool = True,
    metadata: dict[str, str] | None = None,
    einvoice_format: str = "none",
    vat_id: str = "",
    electronic_address: str = "",
    electronic_address_scheme: str = "",
    buyer_reference: str = "",
) -> Customer:
    """Anyone with invoices:write. The billing currency defaults to USD; e-invoices are off ("none")."""
    now = clock.iso(clock.now())
    einvoice = _check_einvoice_terms(
        {
            "einvoice_format": einvoice_format,
            "vat_id": vat_id,
            "electronic_address": electronic_address,
            "electronic_address_scheme": electronic_address_scheme,
            "buyer_reference": buyer_reference,
        }
    )
    customer = Customer(
        id=new_id("cus"),
        name=name,
        email=email,
        address=Address(**(address or {})),
        currency=money.normalize_currency(currency),
        locale=_check_locale(locale),
        timezone=_check_timezone(timezone),
        tax_id=tax_id,
        reminders_enabled=reminders_enabled,
        balances={},
        metadata=dict(metadata or {}),
        created_at=now,
        updated_at=now,
        einvoice_format=einvoice["einvoice_format"],
        vat_id=einvoice["vat_id"],
        electronic_address=einvoice["electronic_address"],
        electronic_address_scheme=einvoice["electronic_address_scheme"],
        buyer_reference=einvoice["buyer_reference"],
    )
    with svc.uow() as tx:
        tx.add_customer(customer)
    return customer


def get_customer(svc: Services, customer_id: str) -> Customer:
    return svc.repo.get_customer(customer_id)


@dataclass(frozen=True)
class UpdateCustomer(Changes):
    """PATCH /customers/{id}: the fields given (invoicing.changes). An address replaces the whole
    address; the electronic address and its scheme change together."""

    name: str | Unset = UNSET
    email: str | Unset = UNSET
    address: dict[str, Any] | Unset = UNSET
    currency: str | Unset = UNSET
    locale: str | Unset = UNSET
    timezone: str | Unset = UNSET
    tax_id: str | Unset = UNSET
    reminders_enabled: bool | Unset = UNSET
    metadata: dict[str, str] | Unset = UNSET
    einvoice_format: str | Unset = UNSET
    vat_id: str | Unset = UNSET
    electronic_address: str | Unset = UNSET
    electronic_address_scheme: str | Unset = UNSET
    buyer_reference: str | Unset = UNSET


def update_customer(svc: Services, customer_id: str, cmd: UpdateCustomer) -> Customer:
    """Edits never reach issued invoices: those keep the snapshot taken at finalization. One
    transaction: the fields changed and `customer.updated`, conditioned on the version read (a lost
    race, e.g. with a balance move, is re-read and applied again)."""
    clean: dict[str, Any] = {}
    for key, value in cmd.given().items():
        if key == "currency":
            value = money.normalize_currency(value)
        elif key == "locale":
            value = _check_locale(value)
        elif key == "timezone":
            value = _check_timezone(value)
        elif key == "address":
            value = {k: v for k, v in Address(**value).__dict__.items() if v}
        clean[key] = value
    if not clean:
        return svc.repo.get_customer(customer_id)
    fields = Customer.__dataclass_fields__
    typed: dict[str, Any] = {k: Address(**v) if k == "address" else v for k, v in clean.items() if k in fields}

    def attempt() -> None:
        before = svc.repo.get_customer(customer_id)  # 404 when it is gone
        if any(k in clean for k in EINVOICE_FIELDS):  # the terms as they will be, checked together
            _check_einvoice_terms({k: clean.get(k, getattr(before, k)) for k in EINVOICE_FIELDS})
        after = replace(before, **typed, updated_at=clock.iso(clock.now()))
        with svc.uow() as tx:
            tx.update_customer(before, after, clean)

    retry(
        attempt,
        on=(CustomerChanged,),
        attempts=MAX_ATTEMPTS,
        exhausted=lambda: ConcurrentModification(f"customer {customer_id} kept changing; retry"),
        backoff=SHORT,
    )
    return svc.repo.get_customer(customer_id)
