"""Public events and webhook endpoints: pure rules (no AWS, no network).

- Which audit event types are public, and under which public type (`public_type`).
- The public event: `{"id", "type", "created_at", "data": {"object"}, "sequence"}` (`OutboxEvent.payload`).
- Endpoint URLs: https only (plain http to 127.0.0.1/localhost only when the stage is local), and
  which resolved addresses a delivery must refuse (`refused_address`).
- The retry schedule with jitter (`next_delay`).
"""

from __future__ import annotations

import ipaddress
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from invoicing.domain.events import InvoiceEvent

EVENT_TTL_DAYS = 30
SECRET_OVERLAP = timedelta(hours=24)
DISABLE_AFTER_FAILING = timedelta(days=5)

PUBLIC_TYPES: tuple[str, ...] = (
    "invoice.created",
    "invoice.updated",
    "invoice.deleted",
    "invoice.finalized",
    "invoice.payment_recorded",
    "invoice.paid",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.pdf_rendered",
    "credit_note.created",
    "credit_note.voided",
    "refund.succeeded",
    "refund.failed",
    "reminder.sent",
    "customer.created",
    "customer.updated",
    "webhook_endpoint.disabled",
)

# audit type -> public type; audit types not listed here stay internal (payment links, balance moves)
_PUBLIC_OF_AUDIT: dict[str, str] = {
    **{t: t for t in PUBLIC_TYPES},
    "invoice.line_added": "invoice.updated",
    "invoice.line_updated": "invoice.updated",
    "invoice.line_deleted": "invoice.updated",
    "invoice.credit_note_issued": "credit_note.created",
    "invoice.credit_note_voided": "credit_note.voided",
    "invoice.reminder_sent": "reminder.sent",
}
# a refund's audit events say what became of it (data: status, previous_status, attempt)
REFUND_AUDIT_TYPES = ("invoice.refund_updated", "invoice.refund_retried", "invoice.refund_completed")
# the object a public event is about, by the first part of its type, and where its id is in the data
_SUBJECT_ID_IN_DATA = {"credit_note": "credit_note_id", "refund": "refund_id", "reminder": "reminder_id"}
# credit notes have no version: issued, then at most once void; their sequence is this "version"
CREDIT_NOTE_VERSION = {"issued": 1, "void": 2}
# a reminder publishes one event in its life, when it is sent: its sequence is this "version"
SENT_REMINDER_VERSION = 1


def public_type(audit_type: str) -> str | None:
    """The public type of an audit type that always publishes the same type (refund events depend on
    what became of the refund: `public_type_of`)."""
    return _PUBLIC_OF_AUDIT.get(audit_type)


def public_type_of(event: InvoiceEvent) -> str | None:
    """The public type of one audit event, or None when it stays internal.

    - A payment that settles the invoice is `invoice.paid`, any other `invoice.payment_recorded`.
    - A refund event is `refund.succeeded` when the refund became succeeded, `refund.failed` when it
      became failed or an attempt (a retry) failed again; other refund moves (pending, in flight) stay
      internal."""
    if event.type in REFUND_AUDIT_TYPES:
        status, previous = event.data.get("status"), event.data.get("previous_status")
        if status == "succeeded" and previous != "succeeded":
            return "refund.succeeded"
        if status == "failed" and (previous != "failed" or "attempt" in event.data):
            return "refund.failed"
        return None
    public = _PUBLIC_OF_AUDIT.get(event.type)
    if public == "invoice.payment_recorded" and event.to_status == "paid":
        return "invoice.paid"  # the payment that settles the invoice
    return public


def subject_id(event: InvoiceEvent, object_type: str) -> str | None:
    """The id of the `object_type` an audit event is about (the invoice's, or its credit note's or
    refund's, named in its data)."""
    if object_type == "invoice":
        return event.invoice_id
    value = event.data.get(_SUBJECT_ID_IN_DATA.get(object_type, ""))
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class OutboxEvent:
    """One public event, written with the change it reports (the outbox record)."""

    id: str  # the audit event's id (evt_...): the webhook-id of every delivery of it
    type: str
    object_type: str
    object_id: str
    created_at: str
    sequence: int
    object: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "created_at": self.created_at,
            "data": {"object": self.object},
            "sequence": self.sequence,
        }


def outbox_events(
    events: tuple[InvoiceEvent, ...], *, object_type: str, object_id: str, obj: dict[str, Any], version: int
) -> list[OutboxEvent]:
    """The public events among one change's audit events, about one object (`obj`, as the API returns
    it after the change). The per-object sequence is `version * 100 + n`: the object's version orders
    its changes (each change is conditioned on the version before it), `n` orders the events of one
    change, so receivers can order by it without a global order."""
    out: list[OutboxEvent] = []
    for event in events:
        public = public_type_of(event)
        if public is None or not public.startswith(f"{object_type}."):
            continue  # another object's event (a credit note's, a refund's): published with that object
        if subject_id(event, object_type) != object_id:
            continue
        out.append(
            OutboxEvent(
                id=event.id,
                type=public,
                object_type=object_type,
                object_id=object_id,
                created_at=event.at,
                sequence=version * 100 + len(out),
                object=obj,
            )
        )
    return out


def expires_at(created_at: datetime) -> int:
    """The TTL (epoch seconds) of an outbox record: the event log keeps 30 days."""
    return int((created_at + timedelta(days=EVENT_TTL_DAYS)).timestamp())


# ---------------------------------------------------------------- endpoints
class EndpointUrlRefused(ValueError):
    pass


# The rule for endpoint URLs, also the API document's pattern (no look-arounds: JSON Schema reads it).
# A host is a DNS name ending in an alphabetic label, so never an IP literal; what a name resolves to
# is checked at every delivery (`refused_address`), where it matters.
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
_PORT = r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
_PATH = r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(?:\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?"
URL_PATTERN = rf"^https://{_HOST}{_PORT}{_PATH}$"
URL_MAX_LENGTH = 2048
# the local stack's receivers: plain http to this machine, and only when the stage is local
LOCAL_URL_PATTERN = rf"^http://(?:127\.0\.0\.1|localhost){_PORT}{_PATH}$"


def check_endpoint_url(url: str, *, stage: str) -> None:
    if len(url) > URL_MAX_LENGTH:
        raise EndpointUrlRefused(f"url is longer than {URL_MAX_LENGTH} characters")
    if stage == "local" and re.fullmatch(LOCAL_URL_PATTERN, url):
        return
    if not re.fullmatch(URL_PATTERN, url):
        raise EndpointUrlRefused(
            "url must be https:// and a DNS name (no IP address, no user info, no fragment); "
            "http://127.0.0.1 or localhost only on a local stack"
        )


_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def refused_address(address: str) -> str | None:
    """Why a delivery may not connect to this resolved address, or None when it may."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA:
        return "metadata"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified or not ip.is_global:
        return "private"
    return None


def subscribed(events: tuple[str, ...], event_type: str) -> bool:
    return "*" in events or event_type in events


# ---------------------------------------------------------------- retries
# after attempt n fails, wait RETRY_SCHEDULE[n] (attempt 1 is at once): about 3 days in all
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1


def next_delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    compress: float = 1.0,
    rng: random.Random | None = None,
) -> timedelta | None:
    """How long to wait after failed attempt `attempt` (1-based), or None when retries ran out.

    +-10 % jitter spreads endpoints that failed together; a `Retry-After` longer than the schedule's
    wait is honoured (never shorter: a receiver cannot make us hammer it). `compress` divides every
    wait (the local stack's compressed schedule)."""
    if attempt >= MAX_ATTEMPTS:
        return None
    base = RETRY_SCHEDULE[attempt - 1].total_seconds() / compress
    jitter = (rng or random).uniform(-0.1, 0.1) * base
    wait = base + jitter
    if retry_after is not None and retry_after > wait:
        wait = retry_after
    return timedelta(seconds=wait)


def should_disable(first_failure_at: str | None, now: datetime) -> bool:
    """An endpoint whose every delivery failed for 5 days is disabled."""
    if not first_failure_at:
        return False
    since = datetime.fromisoformat(first_failure_at.replace("Z", "+00:00")).astimezone(UTC)
    return now - since >= DISABLE_AFTER_FAILING
