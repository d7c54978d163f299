"""Section 5: throughput of the local stack (`python -m local`, what `make dev` runs) over HTTP.

A bounded load loop, not a soak test: a fixed number of requests per case, spread over 4 client
threads with keep-alive sessions, against the stack started as a subprocess on a free port of
127.0.0.1. It measures the LOCAL runtime (the API Gateway emulation, the authorizer and the API
function invoked in-process, DynamoDB Local, or moto serializing every request with
``LOCAL_DYNAMODB=moto``), not AWS.

Baseline in the same run: a route that does not exist, answered by the gateway emulation itself
(404, no authorizer, no function): the HTTP floor of the local runtime.

Growth: after the fixed cases, drafts are created until the table holds GROWTH invoices (10,000; QUICK
1,000; env BENCH_LOCAL_INVOICES), then FINALIZE of them are finalized (1,000; QUICK 100; env
BENCH_LOCAL_FINALIZE). Both rows
compare the p50 of the first 10% of their requests with the last 10% (flat: at most 1.5x).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.runner import Report, Row, median, p95

SECTION = "5 local stack"
THREADS = 4
FLOOR = "floor: unknown route (gateway 404)"
GROWTH, GROWTH_QUICK = 10_000, 1_000
FINALIZE, FINALIZE_QUICK = 1_000, 100
FINALIZE_RETRIES = 5  # a 409 concurrent_modification is retried, as a client would (the tests do too)


def _load(
    session_factory: Callable[[], Any], send: Callable[[Any, int], int], total: int
) -> tuple[float, list[float], Counter[str]]:
    """`total` requests over THREADS threads. Returns (requests/s, latencies in s in the order the
    requests started, failures by status/error)."""
    timed: list[tuple[float, float]] = []
    failures: Counter[str] = Counter()
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        session = session_factory()
        own: list[tuple[float, float]] = []
        bad: Counter[str] = Counter()
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            started = time.perf_counter()
            try:
                status = send(session, index)
                if status >= 400:
                    bad[str(status)] += 1
            except Exception as exc:
                bad[type(exc).__name__] += 1
            own.append((started, time.perf_counter() - started))
        with lock:
            timed.extend(own)
            failures.update(bad)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return total / wall, [latency for _, latency in sorted(timed)], failures


def run(report: Report, quick: bool) -> None:
    if importlib.util.find_spec("local.testing") is None:
        report.note("local stack: skipped: local/testing.py (the local runtime's launcher) does not exist yet")
        return
    import requests

    from local.testing import free_port, start_local_stack

    total = 100 if quick else 300
    growth = int(os.environ.get("BENCH_LOCAL_INVOICES") or (GROWTH_QUICK if quick else GROWTH))
    finalizations = min(growth, int(os.environ.get("BENCH_LOCAL_FINALIZE") or (FINALIZE_QUICK if quick else FINALIZE)))
    try:
        # no SQS pollers: the PDF jobs finalize enqueues wait in the queue, so the figures are the API's
        stack = start_local_stack(
            ["--no-schedules", "--no-queues", "--log-level", "WARNING"], port=free_port(), timeout=90
        )
    except RuntimeError as exc:
        report.note(f"local stack: skipped: it did not start: {str(exc)[-500:]}")
        return
    try:
        base = stack.api_url.rstrip("/")
        headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}

        def session() -> requests.Session:
            s = requests.Session()
            s.headers.update(headers)
            return s

        setup = session()
        made = setup.post(
            f"{base}/customers",
            json={"name": "Contoso Retail AG", "email": "ap@contoso.example", "currency": "USD"},
            timeout=30,
        )
        made.raise_for_status()
        customer_id = made.json()["id"]
        lines = [
            {"description": "Platform subscription, Business plan", "quantity": "1", "unit_amount_cents": 24900},
            {"description": "Additional seats", "quantity": "12", "unit_amount_cents": 1500},
            {"description": "Priority support retainer", "quantity": "1", "unit_amount_cents": 49000},
        ]
        created = setup.post(f"{base}/invoices", json={"customer_id": customer_id, "lines": lines}, timeout=30)
        created.raise_for_status()
        invoice_id = created.json()["id"]

        cases: list[tuple[str, Callable[[Any, int], int]]] = [
            (FLOOR, lambda s, i: 0 if s.get(f"{base}/no-such-route", timeout=30).status_code == 404 else 500),
            ("get invoice (3 lines)", lambda s, i: s.get(f"{base}/invoices/{invoice_id}", timeout=30).status_code),
            (
                "create draft (3 lines)",
                lambda s, i: (
                    s.post(
                        f"{base}/invoices", json={"customer_id": customer_id, "lines": lines}, timeout=30
                    ).status_code
                ),
            ),
        ]
        results: dict[str, tuple[float, list[float], Counter[str]]] = {}
        for name, send in cases:
            _load(session, send, 8)  # warm-up: the first invocation of each handler imports it
            results[name] = _load(session, send, total)

        # growth: drafts until the table holds `growth` invoices, then finalize some of them
        made_so_far = 1 + 8 + total  # the setup draft, the warm-up and the measured creates
        drafts: list[str] = []
        drafts_lock = threading.Lock()

        def create_and_keep(s: Any, i: int) -> int:
            response = s.post(f"{base}/invoices", json={"customer_id": customer_id, "lines": lines}, timeout=30)
            if response.status_code == 201 and i < finalizations:
                with drafts_lock:
                    drafts.append(response.json()["id"])
            return int(response.status_code)

        grow_name = f"create draft, table growing to {growth:,} invoices"
        results[grow_name] = _load(session, create_and_keep, max(growth - made_so_far, finalizations))
        retries: Counter[str] = Counter()

        def finalize(s: Any, i: int) -> int:
            for _attempt in range(FINALIZE_RETRIES):
                response = s.post(f"{base}/invoices/{drafts[i]}/finalize", timeout=30)
                if response.status_code != 409:
                    break
                with drafts_lock:
                    retries["409"] += 1
            return int(response.status_code)

        _load(session, lambda s, i: finalize(s, i), min(8, len(drafts)))  # warm-up (imports)
        fin_name = f"finalize, {growth:,} invoices in the table"
        results[fin_name] = _load(session, lambda s, i: finalize(s, i + 8), len(drafts) - 8)

        floor_rps = results[FLOOR][0]
        floor_p50_ms = median(results[FLOOR][1]) * 1000
        if floor_p50_ms > 30:
            report.note(
                f"local stack: the gateway's own 404 takes {floor_p50_ms:.0f} ms per request on keep-alive: the "
                "Nagle/delayed-ACK stall (headers and body go out in two small writes, the client delays its ACK "
                "~40 ms). `disable_nagle_algorithm = True` on the request handler class of local/server.py cuts it "
                "to ~1 ms (measured); every figure of this section carries the stall until then."
            )
        for name, (rps, latencies, failures) in results.items():
            ms = [x * 1000 for x in latencies]
            tenth = max(len(ms) // 10, 1)
            first, last = median(ms[:tenth]), median(ms[-tenth:])
            trend = f"p50 of the first 10% {first:.0f} ms, of the last 10% {last:.0f} ms: {last / first:.2f}x"
            if name == fin_name and retries:
                trend += f"; {retries['409']} retries after 409"
            growing = name in (grow_name, fin_name)
            report.add(
                Row(
                    SECTION,
                    name,
                    rps,
                    None,
                    "req/s",
                    len(ms),
                    baseline="" if name == FLOOR else "floor",
                    ratio=None if name == FLOOR else rps / floor_rps,
                    target="last 10% p50 <= 1.5x first 10%" if growing else "",
                    met=(last <= 1.5 * first) if growing else None,
                    note=f"{THREADS} threads, DynamoDB: {stack.dynamodb_engine}; latency p50 {median(ms):.1f} ms, "
                    f"p95 {p95(ms):.1f} ms ({trend}); " + (f"failed: {dict(failures)}" if failures else "0 failed"),
                )
            )
    finally:
        stack.stop()
    report.note(
        "local stack: measures the LOCAL runtime (API Gateway emulation + authorizer + handler in-process + "
        f"DynamoDB: {stack.dynamodb_engine}) on this machine, not AWS: Lambda scales out per request instead."
    )
