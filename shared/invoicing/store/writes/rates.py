"""Typed writes of tax rates: a rate's first use, in the transaction of the invoice that uses it."""

from __future__ import annotations

from collections.abc import Callable

from pynamodb.expressions.condition import Condition

from invoicing.errors import Conflict
from invoicing.store import keys
from invoicing.store.models import TableItem, TaxRateItem
from invoicing.store.tax_rates import TaxRate
from invoicing.store.transaction import Transaction
from invoicing.store.writes.base import THEN, Guard, WriteSet


class RatesMoved(Conflict):
    """A rate read for this transaction was edited (or first used elsewhere) before it committed:
    the tax computed from it may be stale, so the caller reads again."""

    code = "concurrent_modification"


class RateWrites(WriteSet):
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
