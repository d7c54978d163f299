"""Who is calling: the principal the authorizer put in the request context."""

from __future__ import annotations

from typing import Any

from invoicing.domain.events import Actor


def actor_from_event(event: Any) -> Actor:
    ctx = event.request_context
    authorizer = ctx.authorizer.raw_event if hasattr(ctx.authorizer, "raw_event") else (ctx.authorizer or {})
    principal = authorizer.get("principal") or (
        f"api_key:{authorizer['principalId']}" if authorizer.get("principalId") else "anonymous"
    )
    return Actor(principal=str(principal), request_id=ctx.request_id or "")
