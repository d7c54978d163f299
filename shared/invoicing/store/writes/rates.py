"""Typed writes of the rates: a new tax rate, an edit of one, an exchange rate set, and a tax rate's
first use (in the transaction of the invoice that uses it).

A rate's terms change only while no finalized invoice used it: the edit is conditioned on `used`
being false, and the first use on the terms the tax was computed from, so whichever commits first
wins and the other is refused (409 tax_rate_in_use, or finalize reads again)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pynamodb.expressions.condition import Condition

from invoicing.errors import Conflict, NotFound
from invoicing.store import keys
from invoicing.store.models import TableItem, TaxRateItem
from invoicing.store.tax_rates import ExchangeRate, TaxRate, exchange_rate_to_item, tax_rate_to_item
from invoicing.store.transaction import Transaction
from invoicing.store.writes.base import FIRST, THEN, Guard, WriteSet


class RatesMoved(Conflict):
    """A rate read for this transaction was edited (or first used elsewhere) before it committed:
    the tax computed from it may be stale, so the caller reads again."""

    code = "concurrent_modification"


class TaxRateInUse(Conflict):
    code = "tax_rate_in_use"


class RateWrites(WriteSet):
    def add_tax_rate(self, rate: TaxRate) -> None:
        """A new rate, never used (its id is new: a clash means the id was reused)."""
        item = tax_rate_to_item(replace(rate, used=False))

        def op(tx: Transaction) -> None:
            tx.save(item, condition=TableItem.pk.does_not_exist())

        self._add(op, Guard(keys.tax_rate_key(rate.id), FIRST, lambda: Conflict(f"tax rate {rate.id} already exists")))

    def edit_tax_rate(self, after: TaxRate, fields: list[str], *, terms: bool) -> None:
        """Writes `fields` of `after` (None removes the attribute). `terms`: the change touches what an
        invoice's tax was computed from, so it applies only while the rate is unused (TaxRateInUse
        otherwise); archiving alone applies always."""
        key = keys.tax_rate_key(after.id)
        item = tax_rate_to_item(after)
        actions = [
            getattr(TaxRateItem, f).remove()
            if getattr(item, f) is None
            else getattr(TaxRateItem, f).set(getattr(item, f))
            for f in fields
        ]
        condition = TableItem.pk.exists()
        if terms:
            condition = condition & (TaxRateItem.used == False)  # noqa: E712 (a DynamoDB condition, not a bool test)

        def op(tx: Transaction) -> None:
            tx.update(TaxRateItem(*key), actions=actions, condition=condition)

        self._add(op, Guard(key, FIRST, _in_use if terms else _gone(after.id)))

    def set_exchange_rate(self, rate: ExchangeRate) -> None:
        """Sets (or replaces) a currency's rate to USD: the last write wins, as a fresh quote should."""
        item = exchange_rate_to_item(rate)

        def op(tx: Transaction) -> None:
            tx.save(item)

        self._add(op)

    def use_rates(self, rates: list[TaxRate]) -> None:
        """Marks each rate that is not used yet as used: from then on it is frozen (never edited,
        only archived). Conditioned on its terms being the ones the tax was computed from and on it
        being still unused, so an edit that slipped in between cancels the whole transaction. A rate
        already used is written nothing: only its first use costs a write, so a popular rate never
        becomes a hot item every finalization writes."""
        for rate in rates:
            if rate.used:
                continue
            key = keys.tax_rate_key(rate.id)
            condition = (
                TableItem.pk.exists()
                & (TaxRateItem.used == False)  # noqa: E712 (a DynamoDB condition, not a bool test)
                & (TaxRateItem.percentage == str(rate.percentage))
                & (TaxRateItem.inclusive == rate.inclusive)
            )

            def op(tx: Transaction, key: keys.Key = key, condition: Condition = condition) -> None:
                tx.update(TaxRateItem(*key), actions=[TaxRateItem.used.set(True)], condition=condition)

            self._add(op, Guard(key, THEN, _moved(rate.id)))


def _moved(rate_id: str) -> Callable[[], Exception]:
    return lambda: RatesMoved(f"tax rate {rate_id} changed meanwhile; read it again")


def _in_use() -> Exception:
    return TaxRateInUse("this tax rate has been used on an invoice; archive it and create a new one")


def _gone(rate_id: str) -> Callable[[], Exception]:
    return lambda: NotFound(f"tax rate {rate_id} not found", code="tax_rate_not_found")
