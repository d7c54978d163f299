"""Bench: a bulk billing run through POST /billing-runs on the local stack, against single calls.

    make bench-billing-run [INVOICES=10000 CUSTOMERS=1000 SINGLE=500]   (not part of `make test`)
    python -m scripts.bench_billing_run --invoices 10000 --customers 1000 --single 500 [--url URL --key KEY]

Without --url it starts the stack `make dev` runs (`python -m local`, DynamoDB Local when present) on
a free port. Then, in the same stack:
1. SINGLE invoices as a client makes them one at a time: POST /invoices then POST /finalize, over 4
   client threads (each its own customer range): invoices/s;
   (every invoice has 10 lines, the shape of issue #20's run);
2. INVOICES invoices over CUSTOMERS customers as runs of RUN_SIZE (1,000; --run-size) (POST /billing-runs, finalize=true),
   timed from the first POST until every run is complete: invoices/s;
3. checks: every run completed without failure; the runs' counts add up to INVOICES created and
   finalized; each customer's invoices in the table (GET /invoices) are exactly the ones the results
   name, with numbers 1..n, no duplicate, none missing.
Prints the figures and their ratio; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import requests

# drafts per POST: the API's limit (a POST of 1,000 answers in about 3 s on the local stack here)
RUN_SIZE = 1000
THREADS = 4
LINES = 10


class Api:
    def __init__(self, url: str, key: str) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.local = threading.local()

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202)) -> Any:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        for attempt in range(5):
            r = session.request(method, f"{self.url}{path}", json=body, headers=self.headers, timeout=300)
            if r.status_code in ok:
                return r.json() if r.content else None
            if r.status_code in (409, 429, 503) and attempt < 4:  # a client's retry of a busy counter
                time.sleep(0.2 * (attempt + 1))
                continue
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        raise AssertionError("unreachable")


def _parallel(items: list[Any], work: Any, threads: int = THREADS) -> list[Any]:
    out: list[Any] = [None] * len(items)
    it = iter(range(len(items)))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run() -> None:
        while not errors:
            with lock:
                i = next(it, None)
            if i is None:
                return
            try:
                out[i] = work(items[i])
            except BaseException as exc:
                errors.append(exc)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return out


def _draft(customer_id: str, sub: str, month: int) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "subscription_id": sub,
        "period_start": f"2026-{month:02d}-01",
        "period_end": f"2026-{month:02d}-28",
        # 10 lines, the shape of issue #20's run (and of `python -m bench heat`)
        "lines": [
            {"description": f"Usage item {k + 1}", "quantity": str(k + 1), "unit_amount_cents": 250 * (k + 1)}
            for k in range(LINES)
        ],
    }


def bench(api: Api, invoices: int, customers: int, single: int, run_size: int = RUN_SIZE) -> int:
    tag = str(int(time.time()))
    print(f"creating {customers} customers ...", flush=True)
    ids = _parallel(
        list(range(customers)),
        lambda i: api.call("POST", "/customers", {"name": f"Bench {tag} {i}", "email": f"b{i}@bench.test"})["id"],
    )
    singles = _parallel(
        list(range(THREADS)),
        lambda i: api.call("POST", "/customers", {"name": f"Single {tag} {i}", "email": f"s{i}@bench.test"})["id"],
    )

    # 1. single calls
    def one(i: int) -> None:
        inv = api.call("POST", "/invoices", _draft(singles[i % THREADS], f"single_{tag}_{i}", 11))
        api.call("POST", f"/invoices/{inv['id']}/finalize", {})

    started = time.perf_counter()
    _parallel(list(range(single)), one)
    single_rate = single / (time.perf_counter() - started)
    print(f"single POST /invoices + /finalize: {single} invoices, {single_rate:.1f} invoices/s", flush=True)

    # 2. the bulk run: drafts round-robin over the customers, so each customer has invoices/customers
    drafts = [_draft(ids[i % customers], f"sub_{tag}_{i}", 12) for i in range(invoices)]
    started = time.perf_counter()
    runs = [
        api.call("POST", "/billing-runs", {"invoices": drafts[s : s + run_size], "finalize": True})["id"]
        for s in range(0, invoices, run_size)
    ]
    submitted = time.perf_counter() - started
    pending = set(runs)
    done: dict[str, Any] = {}
    while pending:
        for run_id in list(pending):
            run = api.call("GET", f"/billing-runs/{run_id}")
            if run["status"] in ("completed", "completed_with_failures"):
                done[run_id] = run
                pending.discard(run_id)
        if pending:
            time.sleep(1)
    elapsed = time.perf_counter() - started
    bulk_rate = invoices / elapsed
    print(
        f"bulk POST /billing-runs: {invoices} invoices over {customers} customers in {len(runs)} runs: "
        f"submitted in {submitted:.1f} s, complete in {elapsed:.1f} s, {bulk_rate:.1f} invoices/s",
        flush=True,
    )

    # 3. checks
    problems: list[str] = []
    totals: dict[str, int] = defaultdict(int)
    for run in done.values():
        for name, value in run["counts"].items():
            totals[name] += value
        if run["status"] != "completed":
            problems.append(f"run {run['id']} {run['status']}: {run['failures'][:3]}")
    if totals["created"] != invoices or totals["finalized"] != invoices or totals["processed"] != invoices:
        problems.append(f"counts {dict(totals)} != {invoices} created and finalized")
    by_customer: dict[str, dict[str, str]] = defaultdict(dict)  # customer -> invoice id -> number
    for run_id in runs:
        start: int | None = 0
        while start is not None:
            page = api.call("GET", f"/billing-runs/{run_id}/results?starting_at={start}&limit=1000")
            for r in page["data"]:
                by_customer[r["customer_id"]][r["invoice_id"]] = r["number"]
            start = page["next_starting_at"]

    def table(customer_id: str) -> dict[str, str]:
        found: dict[str, str] = {}
        cursor = ""
        while True:
            page = api.call("GET", f"/invoices?customer_id={customer_id}&limit=100{cursor}")
            found.update({i["id"]: i["invoice_number"] for i in page["data"]})
            if not page["has_more"]:
                return found
            cursor = f"&starting_after={page['next_cursor']}"

    tables = _parallel(ids, table)
    duplicates = missing = 0
    for customer_id, in_table in zip(ids, tables, strict=True):
        if in_table != by_customer[customer_id]:
            problems.append(f"customer {customer_id}: table and results differ")
        seq = sorted(int(n.rsplit("-", 1)[1]) for n in in_table.values())
        duplicates += len(seq) - len(set(seq))
        missing += len(set(range(1, len(seq) + 1)) - set(seq))
    print(
        f"checks: {duplicates} duplicate and {missing} missing numbers over {customers} customers; "
        f"counts {dict(totals)}"
    )
    if duplicates or missing:
        problems.append(f"{duplicates} duplicate, {missing} missing numbers")
    print(f"ratio bulk / single: {bulk_rate / single_rate:.2f}x")
    for p in problems:
        print("FAIL", p)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--single", type=int, default=500)
    parser.add_argument("--run-size", type=int, default=RUN_SIZE, help="drafts per POST /billing-runs (<= 1000)")
    parser.add_argument("--url", help="a running stack's API URL (default: start one)")
    parser.add_argument("--key", help="its API key, with the billing_runs:write scope")
    args = parser.parse_args(argv)
    if args.url:
        return bench(Api(args.url, args.key or ""), args.invoices, args.customers, args.single, args.run_size)
    from local.testing import start_local_stack

    stack = start_local_stack(timeout=120)
    try:
        print(f"local stack at {stack.api_url} (DynamoDB: {stack.dynamodb_engine})", flush=True)
        return bench(Api(stack.api_url, stack.api_key or ""), args.invoices, args.customers, args.single, args.run_size)
    finally:
        stack.stop()
        stack.cleanup()


if __name__ == "__main__":
    sys.exit(main())
