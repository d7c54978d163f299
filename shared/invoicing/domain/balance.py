"""The customer balance: credit from credit notes, spent on new invoices at finalization."""

from __future__ import annotations

from dataclasses import dataclass

from invoicing.domain.credit import BalanceTransaction


@dataclass(frozen=True)
class BalanceChange:
    """Move the customer's balance in `txn.currency` from `old_cents` to `old_cents + txn.amount_cents`,
    with its ledger entry. The write is conditioned on `old_cents`: a balance is never spent twice."""

    old_cents: int
    txn: BalanceTransaction

    @property
    def new_cents(self) -> int:
        return self.old_cents + self.txn.amount_cents
