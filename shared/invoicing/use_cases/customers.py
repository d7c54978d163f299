"""Customers: who is billed, in which currency, locale and timezone."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from invoicing import clock
from invoicing.domain import money
from invoicing.domain.customer import Customer
from invoicing.domain.invoice import Address
from invoicing.errors import ConcurrentModification, ValidationFailed
from invoicing.ids import new_id
from invoicing.services import Services
from invoicing.store.retry import SHORT, retry
from invoicing.store.writes.customers import CustomerChanged

MAX_ATTEMPTS = 5


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
) -> Customer:
    """Anyone with invoices:write. The billing currency defaults to USD."""
    now = clock.iso(clock.now())
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
    )
    with svc.uow() as tx:
        tx.add_customer(customer)
    return customer


def get_customer(svc: Services, customer_id: str) -> Customer:
    return svc.repo.get_customer(customer_id)


def update_customer(svc: Services, customer_id: str, changes: dict[str, Any]) -> Customer:
    """Edits never reach issued invoices: those keep the snapshot taken at finalization. One
    transaction: the fields changed and `customer.updated`, conditioned on the version read (a lost
    race, e.g. with a balance move, is re-read and applied again)."""
    clean: dict[str, Any] = {}
    for key, value in changes.items():
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
