"""Post-deploy smoke test: one invoice through its whole life against a running stack.

    make smoke URL=https://abc123.execute-api.eu-central-1.amazonaws.com/prod KEY=inv_...
    SMOKE_API_KEY=inv_... python scripts/smoke.py --url http://127.0.0.1:3000 [--timeout 90]

Steps (each prints `ok <step> (<ms> ms)` or `FAIL <step> ...` and exits 1):
create-customer, create-draft, add-line, finalize (with an Idempotency-Key), pdf (waits for the
rendered PDF, at most --timeout seconds, and checks it starts with %PDF), pay-page (the `payment_url`
the finalize response returned, exactly as returned), record-payment, events (finalized + paid).

What it creates is marked as smoke data: the customer's name starts with `smoke-test` and the customer
and invoice carry the metadata `smoke_test=true`. At the end it cleans up what the API allows: a
draft it created and did not finalize is deleted, an open invoice's payment link is revoked. A
finalized invoice is never deleted (the audit trail keeps it), and customers have no delete route.

The API key is read from --key or the environment variable SMOKE_API_KEY and is never printed; the
pay URL is printed with its token redacted. Only `requests` and the standard library are used.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

import requests

DEFAULT_TIMEOUT = 90.0
REQUEST_TIMEOUT = 30.0
POLL_INTERVAL = 1.0
# API Gateway and Lambda answer these while cold or throttled; the request is repeated (every POST
# carries an Idempotency-Key, so a repeat never does the work twice)
TRANSIENT_STATUS = {429, 500, 502, 503, 504}
RETRIES = 3
PAY_TOKEN = re.compile(r"(/pay/)([^/?#]+)")


class SmokeFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


def redact_pay_url(url: str) -> str:
    """The pay URL with its token (the capability to see and pay the invoice) replaced."""
    return PAY_TOKEN.sub(r"\1<redacted>", url)


class Smoke:
    def __init__(self, base_url: str, api_key: str, timeout: float, out: Callable[[str], None] = print) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.request_timeout = min(REQUEST_TIMEOUT, max(timeout, 1.0))
        self._secrets = [api_key]
        self._out = out
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.session.headers["User-Agent"] = "invoice-service-smoke/1"
        self.run_id = uuid.uuid4().hex[:8]
        self.customer_id: str | None = None
        self.invoice_id: str | None = None
        self.invoice_number: str | None = None
        self.status: str | None = None
        self.payment_url = ""

    # ------------------------------------------------------------ output
    def say(self, line: str) -> None:
        """Every printed line passes here: no secret (the key, a pay token) is ever printed."""
        for secret in self._secrets:
            if secret:
                line = line.replace(secret, "<redacted>")
        self._out(PAY_TOKEN.sub(r"\1<redacted>", line))

    def step(self, name: str, action: Callable[[], str]) -> None:
        started = time.monotonic()
        try:
            detail = action()
        except SmokeFailed:
            raise
        except requests.RequestException as exc:
            raise SmokeFailed(name, f"request failed: {type(exc).__name__}: {exc}") from None
        ms = round((time.monotonic() - started) * 1000)
        self.say(f"ok {name} ({ms} ms)" + (f" {detail}" if detail else ""))

    # ------------------------------------------------------------ HTTP
    def call(
        self,
        step: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        expect: tuple[int, ...],
        idempotency_key: str | None = None,
    ) -> tuple[int, Any]:
        """One API call; transient answers are repeated a few times (POSTs only with an Idempotency-Key)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        repeatable = method in ("GET", "DELETE") or idempotency_key is not None
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES or not repeatable
            try:
                response = self.session.request(
                    method, self.base_url + path, json=body, headers=headers, timeout=self.request_timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last:
                    raise SmokeFailed(step, f"{method} {path}: {type(exc).__name__}: {exc}") from None
                time.sleep(1 + attempt)
                continue
            in_progress = response.status_code == 409 and _error_code(response) == "idempotency_in_progress"
            if (response.status_code in TRANSIENT_STATUS or in_progress) and not last:
                time.sleep(1 + attempt)
                continue
            if response.status_code not in expect:
                raise SmokeFailed(step, f"{method} {path} answered {response.status_code}: {_excerpt(response)}")
            return response.status_code, (response.json() if response.content else None)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ steps
    def create_customer(self) -> str:
        _, customer = self.call(
            "create-customer",
            "POST",
            "/customers",
            {
                "name": f"smoke-test {self.run_id}",
                "email": "smoke-test@example.com",
                "currency": "USD",
                "reminders_enabled": False,
                "metadata": {"smoke_test": "true", "smoke_run": self.run_id},
            },
            expect=(201,),
            idempotency_key=f"smoke-customer-{self.run_id}",
        )
        if customer.get("metadata", {}).get("smoke_test") != "true":
            raise SmokeFailed("create-customer", f"the customer does not keep its metadata: {customer.get('metadata')}")
        self.customer_id = customer["id"]
        return f"customer {self.customer_id}"

    def create_draft(self) -> str:
        _, draft = self.call(
            "create-draft",
            "POST",
            "/invoices",
            {
                "customer_id": self.customer_id,
                "memo": "smoke-test: created by scripts/smoke.py",
                "metadata": {"smoke_test": "true", "smoke_run": self.run_id},
            },
            expect=(201,),
            idempotency_key=f"smoke-draft-{self.run_id}",
        )
        self.invoice_id, self.status = draft["id"], draft["status"]
        if self.status != "draft":
            raise SmokeFailed("create-draft", f"expected a draft, got status {self.status!r}")
        return f"invoice {self.invoice_id}"

    def add_line(self) -> str:
        _, draft = self.call(
            "add-line",
            "POST",
            f"/invoices/{self.invoice_id}/lines",
            {"description": "smoke-test line", "quantity": "1", "unit_amount_cents": 100},
            expect=(201,),
            idempotency_key=f"smoke-line-{self.invoice_id}",
        )
        if draft["total_cents"] <= 0:
            raise SmokeFailed("add-line", f"expected a positive total, got {draft['total_cents']}")
        return f"total {draft['total_cents']} {draft['currency']}"

    def finalize(self) -> str:
        _, invoice = self.call(
            "finalize",
            "POST",
            f"/invoices/{self.invoice_id}/finalize",
            expect=(200,),
            idempotency_key=f"smoke-finalize-{self.invoice_id}",
        )
        self.status, self.invoice_number = invoice["status"], invoice.get("invoice_number")
        payment_url = invoice.get("payment_url")
        token = PAY_TOKEN.search(payment_url or "")
        if token:
            self._secrets.append(token.group(2))
        if self.status != "open" or not self.invoice_number:
            raise SmokeFailed("finalize", f"expected an open invoice with a number, got status {self.status!r}")
        if not payment_url:
            raise SmokeFailed("finalize", "the finalize response has no payment_url")
        self.payment_url = payment_url
        return f"{self.invoice_number}, pay link {redact_pay_url(payment_url)}"

    def pdf(self) -> str:
        deadline = time.monotonic() + self.timeout
        while True:
            status, body = self.call("pdf", "GET", f"/invoices/{self.invoice_id}/pdf", expect=(200, 409))
            if status == 200:
                break
            if (body or {}).get("error", {}).get("code") != "pdf_not_ready":
                raise SmokeFailed("pdf", f"GET /invoices/{self.invoice_id}/pdf answered 409: {body}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SmokeFailed("pdf", f"the PDF was not rendered within {self.timeout:g} s (--timeout)")
            time.sleep(min(POLL_INTERVAL, remaining))
        # a pre-signed S3 URL: no API key goes there
        download = requests.get(body["url"], timeout=self.request_timeout)
        if download.status_code != 200 or not download.content.startswith(b"%PDF"):
            raise SmokeFailed(
                "pdf", f"download answered {download.status_code}, starts with {download.content[:8]!r}, not %PDF"
            )
        return f"{len(download.content)} bytes"

    def pay_page(self) -> str:
        # exactly the URL the API returned (its base is the API's business), without the API key
        page = requests.get(self.payment_url, timeout=self.request_timeout, allow_redirects=False)
        content_type = page.headers.get("Content-Type", "")
        if page.status_code != 200 or not content_type.startswith("text/html"):
            raise SmokeFailed(
                "pay-page", f"{redact_pay_url(self.payment_url)} answered {page.status_code} {content_type}"
            )
        if self.invoice_number not in page.text:
            raise SmokeFailed("pay-page", f"the pay page does not mention {self.invoice_number}")
        return redact_pay_url(self.payment_url)

    def record_payment(self) -> str:
        _, invoice = self.call("record-payment", "GET", f"/invoices/{self.invoice_id}", expect=(200,))
        due = invoice["amount_remaining_cents"]
        _, recorded = self.call(
            "record-payment",
            "POST",
            f"/invoices/{self.invoice_id}/payments",
            {"amount_cents": due, "method": "other", "reference": f"smoke-test {self.run_id}"},
            expect=(201,),
            idempotency_key=f"smoke-payment-{self.invoice_id}",
        )
        self.status = recorded["invoice"]["status"]
        if self.status != "paid":
            raise SmokeFailed("record-payment", f"expected the invoice paid, got status {self.status!r}")
        return f"{due} {invoice['currency']}, invoice paid"

    def events(self) -> str:
        _, events = self.call("events", "GET", f"/invoices/{self.invoice_id}/events", expect=(200,))
        trail = [(event["type"], event.get("to_status")) for event in events["data"]]
        # the payment that settles an invoice is `invoice.payment_recorded` with to_status paid
        # (`invoice.paid` only when nothing was due at finalization)
        finalized = any(kind == "invoice.finalized" for kind, _ in trail)
        paid = any(to_status == "paid" for _, to_status in trail)
        if not (finalized and paid):
            missing = [name for name, seen in (("finalized", finalized), ("paid", paid)) if not seen]
            raise SmokeFailed("events", f"no {' and no '.join(missing)} event in {trail}")
        return f"{len(trail)} events, finalized and paid"

    # ------------------------------------------------------------ clean-up
    def cleanup(self) -> None:
        """Remove what the API lets us remove; say what stays. Never raises."""
        try:
            if self.invoice_id and self.status == "draft":
                deleted = self.session.delete(
                    f"{self.base_url}/invoices/{self.invoice_id}", timeout=self.request_timeout
                )
                if deleted.status_code == 204:
                    self.say(f"cleanup: draft {self.invoice_id} deleted")
                    self.invoice_id = None
                else:
                    self.say(f"cleanup: draft {self.invoice_id} not deleted (DELETE answered {deleted.status_code})")
            elif self.invoice_id and self.status == "open":
                revoked = self.session.delete(
                    f"{self.base_url}/invoices/{self.invoice_id}/payment-link", timeout=self.request_timeout
                )
                self.say(f"cleanup: payment link of {self.invoice_id} revoked ({revoked.status_code})")
        except requests.RequestException as exc:
            self.say(f"cleanup: failed ({type(exc).__name__})")
        if self.invoice_id:
            self.say(
                f"cleanup: invoice {self.invoice_number or self.invoice_id} ({self.invoice_id}, {self.status}) stays: "
                "finalized invoices are never deleted; it carries metadata smoke_test=true"
            )
            if self.status == "open":
                self.say(f"cleanup: it is still open: void it with POST /invoices/{self.invoice_id}/void if unwanted")
        if self.customer_id:
            self.say(f"cleanup: customer {self.customer_id} stays (the API has no customer delete); smoke_test=true")

    def run(self) -> int:
        steps: list[tuple[str, Callable[[], str]]] = [
            ("create-customer", self.create_customer),
            ("create-draft", self.create_draft),
            ("add-line", self.add_line),
            ("finalize", self.finalize),
            ("pdf", self.pdf),
            ("pay-page", self.pay_page),
            ("record-payment", self.record_payment),
            ("events", self.events),
        ]
        self.say(f"smoke test against {self.base_url} (run {self.run_id})")
        try:
            for name, action in steps:
                self.step(name, action)
        except SmokeFailed as exc:
            self.say(f"FAIL {exc.step}: {exc.reason}")
            self.cleanup()
            return 1
        self.cleanup()
        self.say("smoke test passed")
        return 0


def _error_code(response: requests.Response) -> str | None:
    try:
        return response.json().get("error", {}).get("code")
    except ValueError:
        return None


def _excerpt(response: requests.Response) -> str:
    if "json" in response.headers.get("Content-Type", ""):
        return response.text[:500]
    return f"({response.headers.get('Content-Type', 'no content type')}, {len(response.content)} bytes)"


def fail_usage(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("SMOKE_URL"), help="the API's base URL (the ApiUrl output)")
    parser.add_argument(
        "--key",
        default=os.environ.get("SMOKE_API_KEY"),
        help="API key with invoices:read and invoices:write (default: env SMOKE_API_KEY; prefer the environment, "
        "a command line is visible to other users of the machine)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds to wait for the PDF to be rendered (default %(default)g); also bounds each request",
    )
    args = parser.parse_args(argv)
    if not args.url or not re.match(r"^https?://[^/\s]+", args.url):
        fail_usage(parser, "--url must be the API's http(s) base URL (make smoke URL=https://...)")
    if not args.key:
        fail_usage(parser, "an API key is required: --key or SMOKE_API_KEY (make smoke KEY=...)")
    if args.timeout <= 0:
        fail_usage(parser, "--timeout must be > 0")
    return Smoke(args.url, args.key, args.timeout).run()


if __name__ == "__main__":
    sys.exit(main())
