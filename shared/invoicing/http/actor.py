"""Who is calling: the principal the authorizer put in the request context."""

from __future__ import annotations

from typing import Any

from invoicing.domain.events import Actor
from invoicing.errors import Forbidden


def actor_from_event(event: Any) -> Actor:
    ctx = event.request_context
    authorizer = ctx.authorizer.raw_event if hasattr(ctx.authorizer, "raw_event") else (ctx.authorizer or {})
    principal = authorizer.get("principal") or (
        f"api_key:{authorizer['principalId']}" if authorizer.get("principalId") else "anonymous"
    )
    return Actor(principal=str(principal), request_id=ctx.request_id or "")


def actor_middleware(app: Any, next_middleware: Any) -> Any:
    """Puts the caller into the resolver's context once per request, for every route to read."""
    app.append_context(actor=actor_from_event(app.current_event))
    return next_middleware(app)


def current_actor(router: Any) -> Actor:
    """The actor `actor_middleware` put into the context of the request being resolved."""
    actor = router.context.get("actor")
    if not isinstance(actor, Actor):  # a route reached without the middleware: a wiring bug
        raise RuntimeError("actor_middleware is not installed on this resolver")
    return actor


def require_scope(router: Any, scope: str) -> None:
    """403 `insufficient_scope` unless the caller's API key has `scope` (the authorizer's context)."""
    ctx = router.current_event.request_context
    authorizer = ctx.authorizer.raw_event if hasattr(ctx.authorizer, "raw_event") else (ctx.authorizer or {})
    if scope not in str(authorizer.get("scopes") or "").split():
        raise Forbidden(f"this API key lacks the {scope} scope", code="insufficient_scope")
