"""TaxRate and ExchangeRate records: reads, and the writes of the rates API (keys: store/keys.py)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from invoicing.errors import Conflict, NotFound
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
    def put(self, rate: TaxRate) -> None:
        TaxRateItem(
            *keys.tax_rate_key(rate.id),
            tax_rate_id=rate.id,
            display_name=rate.display_name,
            percentage=str(rate.percentage),
            inclusive=rate.inclusive,
            country=rate.country,
            jurisdiction=rate.jurisdiction,
            description=rate.description,
            active=rate.active,
            used=False,
            created_at=rate.created_at,
            vat_category=rate.vat_category,
            exemption_reason_code=rate.exemption_reason_code,
            exemption_reason=rate.exemption_reason,
            gsi2pk=keys.TAX_RATES_INDEX,
            gsi2sk=f"{rate.created_at}#{rate.id}",
        ).save(condition=TableItem.pk.does_not_exist())

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

    def update(self, rate_id: str, changes: dict[str, Any], *, allow_if_used: bool = False) -> TaxRate:
        """Edits only while unused (the condition is checked by DynamoDB, so a finalization that marks
        the rate used wins against a concurrent edit). Archiving (active, archived_at) passes
        `allow_if_used=True`. A None value removes the attribute."""
        actions = [
            getattr(TaxRateItem, k).remove() if v is None else getattr(TaxRateItem, k).set(v)
            for k, v in changes.items()
        ]
        condition = TableItem.pk.exists()
        if not allow_if_used:
            condition = condition & (TaxRateItem.used == False)  # noqa: E712 (a DynamoDB condition, not a bool test)
        item = TaxRateItem(*keys.tax_rate_key(rate_id))
        try:
            item.update(actions=actions, condition=condition)  # returns ALL_NEW into `item`
        except UpdateError as exc:
            if not _is_condition_failure(exc):
                raise
            current = self.get(rate_id)  # NotFound (404) when the rate does not exist
            if current.used:
                raise Conflict(
                    "this tax rate has been used on an invoice; archive it and create a new one", code="tax_rate_in_use"
                ) from exc
            raise
        return rate_from_item(item)


def _is_condition_failure(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


class ExchangeRateStore:
    def put(self, rate: ExchangeRate) -> None:
        ExchangeRateItem(
            *keys.exchange_rate_key(rate.currency),
            currency=rate.currency,
            rate_to_usd=str(rate.rate_to_usd),
            source=rate.source,
            as_of=rate.as_of,
            updated_at=rate.updated_at,
        ).save()

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
