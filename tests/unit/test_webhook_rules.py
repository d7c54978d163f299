"""Issue #17: the webhook rules that need no AWS: public types, the retry schedule, the SSRF guard
(literal addresses, names resolved at delivery, redirects), and signatures the official package verifies."""

from __future__ import annotations

import random
import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from invoicing.adapters import webhooks as adapter
from invoicing.domain import webhooks as rules
from invoicing.domain.events import InvoiceEvent


def test_line_edits_are_public_as_invoice_updated_and_internal_events_stay_internal():
    assert rules.public_type("invoice.line_added") == "invoice.updated"
    assert rules.public_type("invoice.credit_note_issued") == "credit_note.created"
    assert rules.public_type("invoice.payment_link_issued") is None


def _refund_event(type_: str, previous: str, status: str, **data: object) -> InvoiceEvent:
    return InvoiceEvent(
        "evt_1", "in_1", type_, "api_key:t", "2026-11-27T00:00:00.000Z",
        data={"refund_id": "re_1", "previous_status": previous, "status": status, **data},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("event", "public"),
    [
        (_refund_event("invoice.refund_completed", "pending", "succeeded"), "refund.succeeded"),
        (_refund_event("invoice.refund_updated", "pending", "succeeded"), "refund.succeeded"),
        (_refund_event("invoice.refund_updated", "pending", "failed", attempt=1), "refund.failed"),
        (_refund_event("invoice.refund_updated", "pending", "failed"), "refund.failed"),  # Stripe's webhook
        (_refund_event("invoice.refund_retried", "failed", "failed", attempt=2), "refund.failed"),  # failed again
        (_refund_event("invoice.refund_retried", "failed", "succeeded", attempt=2), "refund.succeeded"),
        (_refund_event("invoice.refund_updated", "pending", "pending", attempt=1), None),  # in flight
        (_refund_event("invoice.refund_updated", "succeeded", "succeeded"), None),
    ],
)
def test_a_refund_event_is_public_when_the_refund_succeeded_or_an_attempt_failed(event, public):
    assert rules.public_type_of(event) == public
    assert rules.subject_id(event, "refund") == "re_1"


def test_the_retry_schedule_runs_about_three_days_with_jitter_and_honours_retry_after():
    rng = random.Random(7)
    waits = [rules.next_delay(n, rng=rng) for n in range(1, rules.MAX_ATTEMPTS)]
    assert rules.next_delay(rules.MAX_ATTEMPTS) is None
    nominal = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    for wait, base in zip(waits, nominal, strict=True):
        assert wait is not None and 0.9 * base <= wait.total_seconds() <= 1.1 * base
    assert timedelta(days=2.7) < sum((w for w in waits if w), timedelta()) < timedelta(days=3.3)
    # a longer Retry-After wins; a shorter one does not hurry us
    assert rules.next_delay(1, retry_after=120, rng=rng) == timedelta(seconds=120)
    assert rules.next_delay(3, retry_after=1, rng=rng).total_seconds() > 1000  # type: ignore[union-attr]
    # the local stack's compressed schedule
    assert rules.next_delay(9, compress=3600, rng=rng).total_seconds() < 27  # type: ignore[union-attr]


def test_an_endpoint_failing_for_5_days_is_disabled():
    now = datetime(2026, 11, 27, tzinfo=UTC)
    assert rules.should_disable("2026-11-22T00:00:00.000Z", now)
    assert not rules.should_disable("2026-11-23T00:00:00.000Z", now)
    assert not rules.should_disable(None, now)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("10.0.0.1", "private"),
        ("192.168.1.5", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.10.10", "link-local"),
        ("100.64.0.1", "private"),
        ("93.184.216.34", None),
    ],
)
def test_resolved_addresses_are_checked(address, reason):
    assert rules.refused_address(address) == reason


def _resolving_to(monkeypatch, address: str) -> None:
    def fake(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(adapter.socket, "getaddrinfo", fake)


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.1", "127.0.0.1"])
def test_a_name_resolving_to_a_refused_address_is_not_called_outside_local(monkeypatch, address):
    _resolving_to(monkeypatch, address)
    result = adapter.post("https://hooks.example.com/x", "{}", {}, stage="prod", timeout=1)
    assert result.status_code is None and result.error.startswith("refused:")


def test_plain_http_is_refused_outside_the_local_stage():
    result = adapter.post("http://127.0.0.1:9/x", "{}", {}, stage="prod", timeout=1)
    assert result.status_code is None and "https" in result.error


class _Redirecting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        _Redirecting.hits.append(self.path)
        self.send_response(302 if self.path == "/start" else 200)
        self.send_header("location", "/elsewhere")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_redirects_are_not_followed():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/start"
        result = adapter.post(url, "{}", {}, stage="local", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert result.status_code == 302 and not result.ok
    assert "not followed" in result.error
    assert _Redirecting.hits == ["/start"]


def test_signatures_verify_with_the_official_package_and_both_secrets_sign_during_rotation():
    old, new = adapter.new_secret(), adapter.new_secret()
    now = datetime.now(UTC)
    secrets = adapter.SigningSecrets(new, old, (now + timedelta(hours=24)).isoformat())
    headers = adapter.signed_headers(secrets.active(now), "evt_1", now, '{"a":1}')
    assert Webhook(old).verify('{"a":1}', headers) == {"a": 1}
    assert Webhook(new).verify('{"a":1}', headers) == {"a": 1}
    # after the overlap only the new secret signs
    assert secrets.active(now + timedelta(hours=25)) == [new]
    assert new not in repr(secrets) and old not in repr(secrets)
