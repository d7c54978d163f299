"""TaxRate and ExchangeRate records: their reads and their item mappers (keys: store/keys.py).

Every write of a rate goes through the unit of work (store/writes/rates.py)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pynamodb.exceptions import DoesNotExist

from invoicing.errors import NotFound
from invoicing.store import keys
from invoicing.store.models import ExchangeRateItem, TableItem, TaxRateItem


@dataclass(frozen=True)
class TaxRate:
    id: str
    display_name: str
    percentage: Decimal
    inclusive: bool
    country: str | None
    jurisdiction: str | None
    description: str | None
    active: bool
    used: bool
    created_at: str
    archived_at: str | None
    # e-invoicing (BT-118, BT-120, BT-121): the VAT category (UNTDID 5305 as EN 16931 restricts it) and,
    # for exempt categories, the reason; rates written before these fields read as S without a reason
    vat_category: str = "S"
    exemption_reason_code: str | None = None  # a VATEX code, e.g. VATEX-EU-AE
    exemption_reason: str | None = None


@dataclass(frozen=True)
class ExchangeRate:
    currency: str
    rate_to_usd: Decimal
    source: str
    as_of: str
    updated_at: str


def rate_from_item(item: TaxRateItem) -> TaxRate:
    return TaxRate(
        id=item.tax_rate_id,
        display_name=item.display_name,
        percentage=Decimal(item.percentage),
        inclusive=bool(item.inclusive),
        country=item.country,
        jurisdiction=item.jurisdiction,
        description=item.description,
        active=bool(item.active),
        used=bool(item.used),
        created_at=item.created_at,
        archived_at=item.archived_at,
        vat_category=item.vat_category or "S",
        exemption_reason_code=item.exemption_reason_code,
        exemption_reason=item.exemption_reason,
    )


class TaxRateStore:
    """Reads; the writes are typed writes of the unit of work (store/writes/rates.py)."""

    def get(self, rate_id: str) -> TaxRate:
        try:
            return rate_from_item(TaxRateItem.get(*keys.tax_rate_key(rate_id), consistent_read=True))
        except DoesNotExist:
            raise NotFound(f"tax rate {rate_id} not found", code="tax_rate_not_found") from None

    def get_many(self, ids: list[str]) -> dict[str, TaxRate]:
        """Consistent reads: finalize must see a rate edited a moment ago, never the old percentage."""
        wanted = [keys.tax_rate_key(i) for i in ids]
        return {item.tax_rate_id: rate_from_item(item) for item in TaxRateItem.batch_get(wanted, consistent_read=True)}

    def list(self, *, active: bool | None = None) -> list[TaxRate]:
        rates = [rate_from_item(i) for i in TableItem.gsi2.query(keys.TAX_RATES_INDEX) if isinstance(i, TaxRateItem)]
        return [r for r in rates if active is None or r.active == active]


class ExchangeRateStore:
    """Reads; setting a rate is a typed write of the unit of work (store/writes/rates.py)."""

    def get(self, currency: str) -> ExchangeRate | None:
        try:
            item = ExchangeRateItem.get(*keys.exchange_rate_key(currency), consistent_read=True)
        except DoesNotExist:
            return None
        return exchange_rate_from_item(item)


def exchange_rate_from_item(item: ExchangeRateItem) -> ExchangeRate:
    return ExchangeRate(
        currency=item.currency,
        rate_to_usd=Decimal(item.rate_to_usd),
        source=item.source,
        as_of=item.as_of,
        updated_at=item.updated_at,
    )


def tax_rate_to_item(rate: TaxRate) -> TaxRateItem:
    return TaxRateItem(
        *keys.tax_rate_key(rate.id),
        tax_rate_id=rate.id,
        display_name=rate.display_name,
        percentage=str(rate.percentage),
        inclusive=rate.inclusive,
        country=rate.country,
        jurisdiction=rate.jurisdiction,
        description=rate.description,
        active=rate.active,
        used=rate.used,
        created_at=rate.created_at,
        archived_at=rate.archived_at,
        vat_category=rate.vat_category,
        exemption_reason_code=rate.exemption_reason_code,
        exemption_reason=rate.exemption_reason,
        gsi2pk=keys.TAX_RATES_INDEX,
        gsi2sk=f"{rate.created_at}#{rate.id}",
    )


def exchange_rate_to_item(rate: ExchangeRate) -> ExchangeRateItem:
    return ExchangeRateItem(
        *keys.exchange_rate_key(rate.currency),
        currency=rate.currency,
        rate_to_usd=str(rate.rate_to_usd),
        source=rate.source,
        as_of=rate.as_of,
        updated_at=rate.updated_at,
    )
