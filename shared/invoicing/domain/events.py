"""The audit trail: every state change writes one of these in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass, field

from invoicing.ids import new_id


@dataclass(frozen=True)
class Actor:
    """Who did it: an API key's name (`api_key:<name>`), or `system:<job>` for scheduled work."""

    principal: str
    request_id: str = ""

    @classmethod
    def system(cls, job: str, request_id: str = "") -> Actor:
        return cls(principal=f"system:{job}", request_id=request_id)


@dataclass(frozen=True)
class InvoiceEvent:
    id: str
    invoice_id: str
    type: str
    actor: str
    at: str
    request_id: str = ""
    from_status: str | None = None
    to_status: str | None = None
    data: dict[str, object] = field(default_factory=dict)


def new_event(
    invoice_id: str,
    type_: str,
    actor: Actor,
    at: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    data: dict[str, object] | None = None,
) -> InvoiceEvent:
    """An audit event with a new id; ids sort by creation, so events made in order list in order."""
    return InvoiceEvent(
        id=new_id("evt"),
        invoice_id=invoice_id,
        type=type_,
        actor=actor.principal,
        at=at,
        request_id=actor.request_id,
        from_status=from_status,
        to_status=to_status,
        data=data or {},
    )
