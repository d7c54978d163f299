"""Shared helpers of the payment tests: invoices with links, the pay caller, settings changes, and a
moto that keeps DynamoDB's per-item atomicity under threads."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.integration.conftest import LambdaContext, load_function, rest_event

LINE = {"description": "Consulting <b>November</b>", "quantity": "1.5", "unit_amount_cents": 10000}  # 150.00


def open_invoice(api: Any, customer: dict[str, Any], line: dict[str, Any] | None = None, **extra: Any) -> dict:
    status, draft, _ = api("POST", "/invoices", {"customer_id": customer["id"], "lines": [line or LINE], **extra})
    assert status == 201, draft
    status, invoice, _ = api("POST", f"/invoices/{draft['id']}/finalize")
    assert status == 200, invoice
    return invoice


def without_nonce(html: str) -> str:
    """A page with its per-response CSP nonce blanked, so two answers can be compared."""
    return re.sub(r"nonce=\"[^\"]+\"", 'nonce=""', html)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.fixture
def serialized_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies a conditional write atomically per item; moto checks, then writes, without a
    lock. One lock around moto's dispatch restores that, so concurrency tests measure us, not moto."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def locked(self: Any, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", locked)


@pytest.fixture
def settings_env(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Change settings for one test: set the variables, then rebuild settings and services."""
    from invoicing import root

    def apply(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        root.reset()

    return apply


@pytest.fixture
def pay(aws: Any) -> Callable[..., tuple[int, str, dict[str, str]]]:
    """Call PayFunction like API Gateway would; returns (status, body text, headers)."""
    handler = load_function("pay")

    def call(
        method: str,
        token_or_path: str,
        *,
        form: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        ip: str = "198.51.100.23",
        headers: dict[str, str] | None = None,
        raw_body: str | None = None,
    ) -> tuple[int, str, dict[str, str]]:
        path = token_or_path if token_or_path.startswith("/") else f"/pay/{token_or_path}"
        hdrs = {"Accept": "text/html", **(headers or {})}
        body = raw_body
        if form is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(form)
        event = rest_event(method, path, headers=hdrs, query=query, raw_body=body)
        event["resource"] = (
            path
            if path.startswith("/webhooks/")
            else "/pay/{token}/pdf"
            if path.startswith("/pay/") and path.endswith("/pdf")
            else "/pay/{token}"
        )
        event["requestContext"]["resourcePath"] = event["resource"]
        event["requestContext"]["identity"]["sourceIp"] = ip
        response = handler.handle_pay_request(event, LambdaContext("PayFunction", 10))
        out_headers = dict(response.get("headers") or {})
        for key, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[key] = ", ".join(values)
        return response["statusCode"], response.get("body") or "", out_headers

    return call


def put_exchange_rate(api: Any, currency: str, rate: str) -> None:
    status, body, _ = api(
        "PUT", f"/exchange-rates/{currency}", {"rate_to_usd": rate, "source": "ecb", "as_of": "2026-11-24T00:00:00Z"}
    )
    assert status == 200, body
