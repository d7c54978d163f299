"""Partition heat of a billing run, on paper (docs/performance.md, "Partition heat").

A simulated run of INVOICES invoices over CUSTOMERS customers with LINES lines each goes through the
REAL use cases (`create_invoice`, `finalize_invoice`) and the REAL unit of work; only the database is
replaced: reads come from memory (`SimRepository`) and each TransactWriteItems is captured at the wire
(`CapturingTransaction._commit`) and applied to an in-memory table, so every key and every attribute is
the one production would write. No database is hit.

For every write it records the partition key written, on the table and on each GSI, and the write's
cost in WCU by DynamoDB's rules: item size = attribute names + values (strings in UTF-8 bytes,
numbers about 1 byte per 2 digits + 1, maps/lists 3 bytes + 1 per element), 1 WCU per started KB,
an update costs the larger of the item before and after; an index write costs by the size of the
projected index entry (ALL: the item; INCLUDE/KEYS_ONLY: keys + the projected attributes), a changed
index key is a delete on the old index partition plus a put on the new one, and an update that
changes no projected attribute writes nothing to that index. Reads: 1 RCU per started 4 KB of a
strongly consistent read, per partition read.

From 1,000 WCU/s and 3,000 RCU/s per partition key, the system-wide ceiling is the run's size
divided by the time the hottest key needs for its share: ceiling = invoices * 1000 / WCU(hottest).

    python -m bench heat                      # a 1,500-invoice sample of the run's shape (~40 s)
    HEAT_INVOICES=100000 python -m bench heat  # the full 100,000 over 10,000 customers (~18 min)
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SECTION = "8 partition heat"
WCU_PER_PARTITION = 1000
RCU_PER_PARTITION = 3000
TARGET = 3000.0  # finalizations/s on paper (issue #20)
BASE_KEYS = ("pk", "sk")


# ---------------------------------------------------------------- DynamoDB item size rules
def value_size(value: dict[str, Any]) -> int:
    (kind, v), *_ = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = v.lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(v) if isinstance(v, bytes) else len(str(v)) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(value_size(x) + 1 for x in v)
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: x}) for x in v)
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any], only: Iterable[str] | None = None) -> int:
    names = item.keys() if only is None else [n for n in only if n in item]
    return sum(len(n.encode()) + value_size(item[n]) for n in names)


def units(size: int, per: int) -> int:
    return max(1, math.ceil(size / per))


# ---------------------------------------------------------------- indexes, as the template declares them
@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    include: tuple[str, ...] = ()

    def entry(self, item: dict[str, Any]) -> dict[str, Any] | None:
        if self.hash_key not in item or self.range_key not in item:
            return None  # sparse: not on this index
        if self.projection == "ALL":
            return item
        names = {*BASE_KEYS, self.hash_key, self.range_key, *self.include}
        return {n: v for n, v in item.items() if n in names}


def template_indexes(projection: str | None = None) -> list[Index]:
    """The table's GSIs from template.yaml; `projection="ALL"` is the same indexes all projecting ALL."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    out = []
    for gsi in template["Resources"]["InvoicesTable"]["Properties"]["GlobalSecondaryIndexes"]:
        key = {k["KeyType"]: k["AttributeName"] for k in gsi["KeySchema"]}
        proj = gsi["Projection"]
        out.append(
            Index(
                gsi["IndexName"],
                key["HASH"],
                key["RANGE"],
                projection or proj["ProjectionType"],
                () if projection else tuple(proj.get("NonKeyAttributes", ())),
            )
        )
    return out


# ---------------------------------------------------------------- the captured wire and a table in memory
_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b")


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def apply_update(item: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    """The item after an UpdateItem, for the top-level attributes PynamoDB's expressions name."""
    names = op.get("ExpressionAttributeNames", {})
    values = op.get("ExpressionAttributeValues", {})
    after = dict(item)
    expression = op["UpdateExpression"]
    pieces = _CLAUSE.split(expression)
    for verb, body in zip(pieces[1::2], pieces[2::2], strict=True):
        for part in _split_top(body):
            if verb == "REMOVE":
                after.pop(names.get(part, part), None)
            elif verb == "SET":
                path, _, expr = part.partition("=")
                name = names.get(path.strip(), path.strip())
                placeholders = re.findall(r":\w+", expr)
                if "." in path or "[" in path or not placeholders:
                    continue
                if expr.strip().startswith("if_not_exists") and name in after:
                    continue
                if "+" in expr or "-" in expr.replace(placeholders[-1], ""):
                    after.setdefault(name, values[placeholders[-1]])  # arithmetic: same size, about
                else:
                    after[name] = values[placeholders[-1]]
            elif verb == "ADD":
                path, value = part.split()
                after.setdefault(names.get(path, path), values[value])
    return after


@dataclass
class Heat:
    """WCU and RCU per (table or index, partition key), and write counts."""

    indexes: list[Index]
    items: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))  # pk -> sk -> item
    wcu: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    writes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    rcu: Counter[str] = field(default_factory=Counter)
    transactions: int = 0

    def _charge(self, where: str, pk: str, cost: int) -> None:
        self.wcu[where][pk] += cost
        self.writes[where][pk] += 1

    def write(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        base = after or before
        assert base is not None
        size = max(item_size(before or {}), item_size(after or {}))
        self._charge("table", base["pk"]["S"], units(size, 1024) * 2)  # transactional writes cost 2x
        for index in self.indexes:
            old = index.entry(before) if before else None
            new = index.entry(after) if after else None
            if old is None and new is None:
                continue
            if old is not None and new is not None and old == new:
                continue  # nothing projected changed: no index write
            old_pk = old[index.hash_key]["S"] if old else None
            new_pk = new[index.hash_key]["S"] if new else None
            if (
                old is not None
                and new is not None
                and old_pk == new_pk
                and old[index.range_key] == new[index.range_key]
            ):
                self._charge(index.name, new_pk or "", units(max(item_size(old), item_size(new)), 1024))
                continue
            if old is not None:
                self._charge(index.name, old_pk or "", units(item_size(old), 1024))
            if new is not None:
                self._charge(index.name, new_pk or "", units(item_size(new), 1024))

    def commit(self, tx: Any) -> None:
        self.transactions += 1
        for op in tx._put_items:
            item = op["Item"]
            part = self.items[item["pk"]["S"]]
            self.write(part.get(item["sk"]["S"]), item)
            part[item["sk"]["S"]] = item
        for op in tx._update_items:
            part, sk = self.items[op["Key"]["pk"]["S"]], op["Key"]["sk"]["S"]
            before = part.get(sk)
            after = apply_update(before or dict(op["Key"]), op)
            self.write(before, after)
            part[sk] = after
        for op in tx._delete_items:
            before = self.items[op["Key"]["pk"]["S"]].pop(op["Key"]["sk"]["S"], None)
            if before is not None:
                self.write(before, None)

    def read(self, pk: str, sizes: Iterable[int]) -> None:
        self.rcu[pk] += units(sum(sizes), 4096)


# ---------------------------------------------------------------- the use cases' reads, from memory
class SimRepository:
    """What `create_invoice` and `finalize_invoice` read, served from memory; their unit of work is the
    real one, with a transaction that hands its wire items to `Heat` instead of DynamoDB."""

    def __init__(self, heat: Heat) -> None:
        self.heat = heat
        self.customers: dict[str, Any] = {}
        self.invoices: dict[str, Any] = {}
        self.sequences: Counter[str] = Counter()

    def transaction(self) -> Any:
        from invoicing.store.transaction import Transaction

        heat = self.heat

        class CapturingTransaction(Transaction):
            def _commit(self) -> Any:
                heat.commit(self)
                return {}

        return CapturingTransaction(connection=None)

    def uow(self) -> Any:
        from invoicing.store.uow import UnitOfWork

        return UnitOfWork(self)

    def get_billing_run_invoice_id(self, pk: str) -> str | None:
        self.heat.read(pk, [0])
        return None

    def get_customer(self, customer_id: str) -> Any:
        from invoicing.store import keys

        pk, sk = keys.customer_key(customer_id)
        self.heat.read(pk, [item_size(self.heat.items[pk][sk])])
        return self.customers[customer_id]

    def get_invoice(self, invoice_id: str, *, consistent: bool = True) -> Any:
        from invoicing.store import keys

        pk = keys.invoice_pk(invoice_id)
        self.heat.read(pk, (item_size(i) for s, i in self.heat.items[pk].items() if s < keys.LINES_END))
        return self.invoices[invoice_id]

    def finalize_inputs(self, customer_id: str, year: int, rate_ids: list[str], currency: str | None) -> Any:
        from invoicing.store import keys
        from invoicing.store.repository import FinalizeInputs

        pk, sk = keys.customer_key(customer_id)
        self.heat.read(pk, [item_size(self.heat.items[pk][sk]), 60])  # + the sequence item
        return FinalizeInputs(self.customers[customer_id], self.sequences[customer_id] + 1, {}, None)

    def get_sequence(self, customer_id: str, kind: str, year: int) -> int:
        return self.sequences[customer_id] + 1


class NoTax:
    def calculate(self, invoice: Any, lines: list[Any], customer: Any) -> dict[str, Any]:
        from invoicing.domain.invoice import LineTax

        return {line.id: LineTax.none() for line in lines}


class NoQueue:
    def send(self, body: dict[str, Any]) -> str:
        return "m"


@dataclass(frozen=True)
class Scenario:
    name: str
    shards: int
    projection: str | None  # None: the template's own projections; "ALL": every index projects ALL


def simulate(invoices: int, customers: int, lines: int, scenario: Scenario) -> dict[str, Any]:
    """Creates the customers, then creates and finalizes every invoice (round robin over customers)."""
    from invoicing.domain.customer import Customer
    from invoicing.domain.events import Actor
    from invoicing.domain.invoice import Address
    from invoicing.services import Services
    from invoicing.settings import Settings
    from invoicing.store import keys
    from invoicing.use_cases.finalize import finalize_invoice
    from invoicing.use_cases.invoices import CreateInvoice, LineInput, create_invoice

    keys.configure_index_shards(scenario.shards)
    heat = Heat(template_indexes(scenario.projection))
    repo = SimRepository(heat)
    svc = Services(
        settings=Settings(stage="test", public_base_url="https://pay.example.test"),
        repo=repo,  # type: ignore[arg-type]
        tax_rates=None,  # type: ignore[arg-type]
        exchange_rates=None,  # type: ignore[arg-type]
        tax=NoTax(),  # type: ignore[arg-type]
        documents=None,  # type: ignore[arg-type]
        render_queue=NoQueue(),  # type: ignore[arg-type]
        payment_store=None,  # type: ignore[arg-type]
        credit_note_store=None,  # type: ignore[arg-type]
        refund_store=None,  # type: ignore[arg-type]
    )
    actor = Actor("api_key:billing-run")
    at = "2026-12-01T00:00:00.000Z"
    for c in range(customers):
        customer = Customer(
            id=f"cus_{c:08d}",
            name=f"Customer {c} GmbH",
            email=f"ap{c}@customer.example",
            address=Address(line1="Hauptstr. 1", city="Berlin", postal_code="10115", country="DE"),
            currency="USD",
            locale="de_DE",
            timezone="Europe/Berlin",
            tax_id="",
            reminders_enabled=True,
            balances={},
            metadata={},
            created_at=at,
            updated_at=at,
        )
        repo.customers[customer.id] = customer
        with repo.uow() as tx:
            tx.add_customer(customer)
    customer_writes = {k: sum(v.values()) for k, v in heat.wcu.items()}
    heat.wcu.clear()
    heat.writes.clear()
    heat.rcu.clear()
    line_inputs = tuple(
        LineInput(description=f"Subscription item {n}: monthly plan", quantity=Decimal("1"), unit_amount_cents=1990)
        for n in range(lines)
    )
    for i in range(invoices):
        cid = f"cus_{i % customers:08d}"
        draft, _ = create_invoice(
            svc,
            actor,
            CreateInvoice(
                customer_id=cid,
                lines=line_inputs,
                subscription_id=f"sub_{i:08d}",
                period_start=date(2026, 12, 1),
                period_end=date(2026, 12, 31),
            ),
        )
        repo.invoices[draft.id] = draft
        finalized = finalize_invoice(svc, actor, draft.id).invoice
        repo.invoices[draft.id] = replace(finalized)
        repo.sequences[cid] += 1
    return {"heat": heat, "customer_wcu": customer_writes, "invoices": invoices}


def summarize(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per table and index: total WCU, the hottest key, its share, and the ceiling it sets."""
    heat: Heat = result["heat"]
    invoices = result["invoices"]
    out = []
    for where, per_key in sorted(heat.wcu.items(), key=lambda kv: kv[0] != "table"):
        total = sum(per_key.values())
        hottest, hottest_wcu = per_key.most_common(1)[0]
        out.append(
            {
                "where": where,
                "wcu": total,
                "wcu_per_invoice": total / invoices,
                "hottest": hottest,
                "share": hottest_wcu / total,
                "ceiling": invoices * WCU_PER_PARTITION / hottest_wcu,
            }
        )
    hottest_read, read_units = heat.rcu.most_common(1)[0]
    out.append(
        {
            "where": "reads",
            "wcu": sum(heat.rcu.values()),
            "wcu_per_invoice": sum(heat.rcu.values()) / invoices,
            "hottest": hottest_read,
            "share": read_units / sum(heat.rcu.values()),
            "ceiling": invoices * RCU_PER_PARTITION / read_units,
        }
    )
    return out


def _shape(key: str) -> str:
    """A key's shape for the report: ids and dates replaced, shard numbers kept."""
    key = re.sub(r"(in|cus|evt|sub|pl)_[0-9A-Za-z]+", r"\1_…", key)
    return re.sub(r"\d{4}-\d{2}-\d{2}", "{date}", key)


def run(report: Any, quick: bool) -> None:
    import time

    from bench.runner import Row
    from invoicing.store import keys

    # The real use cases cost ~12 ms an invoice here, so the run is a SAMPLE with the shape
    # (10 invoices a customer, 10 lines): every per-invoice and per-customer key gets exactly the WCU
    # it gets in the 100,000-invoice run, and a shared key's share converges on 1/N (the sample's
    # hottest shard is a slight overestimate: conservative). HEAT_INVOICES=100000 runs the full size.
    invoices = int(os.environ.get("HEAT_INVOICES") or (300 if quick else 1_500))
    customers, lines = max(1, invoices // 10), 10
    configured = keys.index_shards()
    scenarios = [
        Scenario("before: N=1, every index ALL", 1, "ALL"),
        Scenario(f"after: N={keys.DEFAULT_INDEX_SHARDS}, template projections", keys.DEFAULT_INDEX_SHARDS, None),
    ]
    try:
        for scenario in scenarios:
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # Powertools' metrics flush EMF lines to stdout
                summary = summarize(simulate(invoices, customers, lines, scenario))
            took = time.perf_counter() - started
            ceiling = min(s["ceiling"] for s in summary)
            limit = min(summary, key=lambda s: s["ceiling"])
            report.add(
                Row(
                    section=SECTION,
                    case=f"{scenario.name}: ceiling (finalizations/s)",
                    unit="1/s",
                    median=ceiling,
                    p95=ceiling,
                    n=invoices,
                    target=f">= {TARGET:.0f}/s",
                    met=ceiling >= TARGET,
                )
            )
            report.note(
                f"heat {scenario.name} ({invoices:,} invoices, {customers:,} customers, {lines} lines; {took:.1f} s): "
                f"limit {limit['where']} key {_shape(limit['hottest'])}; "
                + "; ".join(
                    f"{s['where']} {s['wcu_per_invoice']:.1f} {'RCU' if s['where'] == 'reads' else 'WCU'}/invoice, "
                    f"hottest {_shape(s['hottest'])} {s['share']:.2%} -> {s['ceiling']:,.0f}/s"
                    for s in summary
                )
            )
    finally:
        keys.configure_index_shards(configured)
