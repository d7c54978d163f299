"""Webhook adapters: signing secrets sealed with KMS, and the signed, SSRF-guarded HTTP POST.

Secrets: an endpoint's signing secrets (the current one and, for 24 h after a rotation, the previous
one) are one JSON document encrypted with the stack's KMS key (`WebhookSecretsKey`), with the
endpoint id as encryption context, so a ciphertext copied onto another endpoint does not decrypt.
Plain secrets live only in memory, never in a log line, an exception message or a delivery record.

Sending: the URL's host is resolved here, at every delivery, and every address it resolves to is
checked (`domain.webhooks.refused_address`); the connection then goes to the checked address (the
Host header and TLS name stay the URL's), so a second resolution cannot swap in another address.
Redirects are not followed: a 3xx is a failed attempt.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from invoicing.adapters.aws import aws_client
from invoicing.domain.webhooks import refused_address

SECRET_PREFIX = "whsec_"
TIMEOUT_SECONDS = 15.0
ERROR_EXCERPT = 200


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class SigningSecrets:
    """The secret that signs, and the previous one until `previous_until` (ISO time) after a rotation."""

    current: str
    previous: str | None = None
    previous_until: str | None = None

    def active(self, now: datetime) -> list[str]:
        out = [self.current]
        if self.previous and self.previous_until and now < _aware(self.previous_until):
            out.append(self.previous)
        return out

    def __repr__(self) -> str:  # never the secrets themselves, whatever prints this
        return "SigningSecrets(<redacted>)"


def _aware(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class SecretBox(Protocol):
    def seal(self, endpoint_id: str, value: SigningSecrets) -> str: ...

    def open(self, endpoint_id: str, ciphertext: str) -> SigningSecrets: ...


class KmsSecretBox:
    """Seals with KMS. Opened secrets are kept per (endpoint, ciphertext) in this process, so a worker
    calls KMS once per endpoint and rotation, not once per delivery (a rotation is a new ciphertext)."""

    CACHE_SIZE = 256

    def __init__(self, key_id: str, region: str) -> None:
        self.key_id = key_id
        self.region = region
        self._opened: dict[tuple[str, str], SigningSecrets] = {}

    def seal(self, endpoint_id: str, value: SigningSecrets) -> str:
        if not self.key_id:
            raise RuntimeError("WEBHOOK_SECRETS_KEY_ID is not set: webhook secrets cannot be stored")
        plain = json.dumps(
            {"current": value.current, "previous": value.previous, "previous_until": value.previous_until}
        ).encode()
        blob = aws_client("kms", self.region).encrypt(
            KeyId=self.key_id, Plaintext=plain, EncryptionContext={"endpoint_id": endpoint_id}
        )["CiphertextBlob"]
        return base64.b64encode(blob).decode()

    def open(self, endpoint_id: str, ciphertext: str) -> SigningSecrets:
        cached = self._opened.get((endpoint_id, ciphertext))
        if cached is not None:
            return cached
        plain = aws_client("kms", self.region).decrypt(
            CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext={"endpoint_id": endpoint_id}
        )["Plaintext"]
        data = json.loads(plain)
        opened = SigningSecrets(data["current"], data.get("previous"), data.get("previous_until"))
        if len(self._opened) >= self.CACHE_SIZE:
            self._opened.clear()
        self._opened[(endpoint_id, ciphertext)] = opened
        return opened


def signed_headers(secrets_: list[str], event_id: str, at: datetime, body: str) -> dict[str, str]:
    """Standard Webhooks headers; one `v1,` signature per active secret, space separated."""
    signatures = " ".join(Webhook(s).sign(msg_id=event_id, timestamp=at, data=body) for s in secrets_)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": "invoicing-webhooks/1",
    }


@dataclass(frozen=True)
class SendResult:
    status_code: int | None  # None: no response (refused, DNS, connect, timeout)
    latency_ms: int
    error: str  # an excerpt of the response body or the failure, never a header we sent
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Refused(Exception):
    """The URL may not be called (SSRF guard)."""


def resolve_checked(host: str, port: int, *, allow_loopback: bool) -> str:
    """One address of `host` that the guard allows; every resolved address must pass (a name that
    resolves to a public and a private address is refused as a whole)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Refused(f"cannot resolve {host}") from exc
    addresses = sorted({str(info[4][0]) for info in infos})
    for address in addresses:
        reason = refused_address(address)
        if reason == "loopback" and allow_loopback:
            continue
        if reason:
            raise Refused(f"{host} resolves to a {reason} address")
    if not addresses:
        raise Refused(f"cannot resolve {host}")
    return addresses[0]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to a checked address while verifying TLS for the URL's host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def post(url: str, body: str, headers: dict[str, str], *, stage: str, timeout: float = TIMEOUT_SECONDS) -> SendResult:
    """POST once, no redirects, after the SSRF check of every resolved address."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    local_http = stage == "local" and not https and host in ("127.0.0.1", "localhost")
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    if not https and not local_http:
        return SendResult(None, 0, "refused: url is not https")
    try:
        address = resolve_checked(host, port, allow_loopback=local_http)
    except Refused as exc:
        return SendResult(None, took(), f"refused: {exc}")
    conn: http.client.HTTPConnection
    if https:
        conn = _PinnedHTTPSConnection(host, address, port, timeout)
    else:
        conn = _PinnedHTTPConnection(host, address, port, timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", path, body=body.encode(), headers=headers)
        response = conn.getresponse()
        excerpt = response.read(ERROR_EXCERPT * 4).decode("utf-8", "replace")[:ERROR_EXCERPT]
        status = response.status
        if 300 <= status < 400:
            excerpt = f"redirect to {response.getheader('location', '')[:100]} not followed"
        return SendResult(
            status, took(), "" if 200 <= status < 300 else excerpt, _retry_after(response.getheader("retry-after"))
        )
    except (OSError, http.client.HTTPException) as exc:
        return SendResult(None, took(), f"{type(exc).__name__}: {str(exc)[:ERROR_EXCERPT]}")
    finally:
        conn.close()


def describe(result: SendResult) -> dict[str, Any]:
    return {"status_code": result.status_code, "latency_ms": result.latency_ms, "error": result.error}


class DeliveryQueue:
    """The delivery queue: one message per endpoint and event (and per retry), with an SQS delay of at
    most 15 minutes; longer waits are chained by the worker (`use_cases.webhooks.deliver`)."""

    MAX_DELAY = 900

    def __init__(self, queue_url: str, region: str) -> None:
        self.queue_url = queue_url
        self.region = region

    def send(self, body: dict[str, Any], delay_seconds: int = 0) -> None:
        if not self.queue_url:
            raise RuntimeError("WEBHOOK_QUEUE_URL is not set")
        aws_client("sqs", self.region).send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(body),
            DelaySeconds=max(0, min(self.MAX_DELAY, int(delay_seconds))),
        )


class EventBus:
    """The stack's EventBridge bus: source `invoicing`, detail-type = the public event type."""

    def __init__(self, bus_name: str, region: str) -> None:
        self.bus_name = bus_name
        self.region = region

    def publish(self, events: list[dict[str, Any]]) -> None:
        entries = [
            {"Source": "invoicing", "DetailType": e["type"], "Detail": json.dumps(e), "EventBusName": self.bus_name}
            for e in events
        ]
        for start in range(0, len(entries), 10):  # PutEvents takes 10 entries per call
            response = aws_client("events", self.region).put_events(Entries=entries[start : start + 10])
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"EventBridge refused {response['FailedEntryCount']} events")
