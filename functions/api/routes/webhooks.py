"""/events (the public event log) and /webhook-endpoints (signed outbound webhooks), docs/webhooks.md."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, Field, PlainValidator, WithJsonSchema

from invoicing.domain.webhooks import PUBLIC_TYPES, URL_MAX_LENGTH, URL_PATTERN
from invoicing.http.actor import current_actor
from invoicing.root import get_services
from invoicing.store.webhooks import Delivery, Endpoint
from invoicing.use_cases import webhooks as uc
from schemas import AwareInstant, Id, Patch, StartingAfter, Strict, error_responses

router = Router()

EventType = Literal[PUBLIC_TYPES]  # type: ignore[valid-type]


def _url(value: object) -> str:
    # the pattern itself is applied by the use case (it also knows the local stage's exception)
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


Url = Annotated[
    str,
    PlainValidator(_url),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": URL_MAX_LENGTH,
            "pattern": URL_PATTERN,
            "description": "https:// and a DNS name; on a local stack also http://127.0.0.1 or http://localhost",
        }
    ),
]
Description = Annotated[str, Field(max_length=500)]
AllEvents = Annotated[list[Literal["*"]], Field(min_length=1, max_length=1)]
SomeEvents = Annotated[list[EventType], Field(min_length=1, max_length=50)]  # type: ignore[valid-type]


class EventOut(BaseModel):
    id: str
    type: str
    created_at: str
    data: dict[str, Any] = Field(description='{"object": the object as the API returns it after the change}')
    sequence: int = Field(description="Per-object sequence: order an object's events by it (there is no global order)")


class EventPageOut(BaseModel):
    data: list[EventOut]
    has_more: bool
    next_cursor: str | None = Field(description="Pass as starting_after to get the next page")


class EndpointCreate(Strict):
    url: Url
    events: AllEvents | SomeEvents
    description: Description = ""


class EndpointUpdate(Patch):
    keep_on_null = frozenset({"url", "events", "description", "status"})

    url: Url | None = None
    events: AllEvents | SomeEvents | None = None
    description: Description | None = None
    status: Literal["enabled", "disabled"] | None = None


class EndpointOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str
    status: Literal["enabled", "disabled"]
    created_at: str
    updated_at: str


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="whsec_...: shown this once; store it now")


class EndpointList(BaseModel):
    data: list[EndpointOut]


class AttemptOut(BaseModel):
    at: str
    attempt: int | None = None
    status_code: int | None
    latency_ms: int
    error: str


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: list[AttemptOut]
    created_at: str
    updated_at: str


class DeliveryList(BaseModel):
    data: list[DeliveryOut]


class ReplayRequest(Strict):
    since: AwareInstant


class ReplayOut(BaseModel):
    replayed: int = Field(description="Failed deliveries sent again")


def event_out(e: Any) -> EventOut:
    return EventOut(**e.payload())


def endpoint_out(e: Endpoint) -> EndpointOut:
    return EndpointOut(**e.public())


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        event_id=d.event_id,
        event_type=d.event_type,
        status=d.status,  # type: ignore[arg-type]
        attempts=[
            AttemptOut(**{k: a.get(k) for k in ("at", "attempt", "status_code", "latency_ms", "error")})
            for a in d.attempts
        ],
        created_at=d.created_at,
        updated_at=d.updated_at,
    )


# ---------------------------------------------------------------- the event log
@router.get("/events", summary="Public events of the last 30 days, newest first", responses=error_responses(422))
def handle_list_events(
    type: Annotated[EventType | None, Query()] = None,  # type: ignore[valid-type]
    object_id: Annotated[Id | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: StartingAfter = None,
) -> EventPageOut:
    page = uc.list_events(
        get_services(), event_type=type, object_id=object_id, limit=limit, starting_after=starting_after
    )
    return EventPageOut(
        data=[event_out(e) for e in page.items], has_more=page.next_cursor is not None, next_cursor=page.next_cursor
    )


@router.get("/events/<event_id>", summary="One public event", responses=error_responses(404))
def handle_get_event(event_id: Annotated[Id, Path()]) -> EventOut:
    return event_out(uc.get_event(get_services(), event_id))


# ---------------------------------------------------------------- endpoints
@router.post(
    "/webhook-endpoints",
    summary="Register a webhook endpoint; the signing secret is in this response only",
    responses=error_responses(422, success=201),
)
def handle_create_webhook_endpoint(body: Annotated[EndpointCreate, Body()]) -> Response[EndpointWithSecret]:
    endpoint, secret = uc.create_endpoint(
        get_services(), current_actor(router), url=body.url, events=list(body.events), description=body.description
    )
    out = EndpointWithSecret(**endpoint.public(), secret=secret)
    return Response(status_code=201, body=out, content_type="application/json")


@router.get("/webhook-endpoints", summary="Webhook endpoints", responses=error_responses())
def handle_list_webhook_endpoints() -> EndpointList:
    return EndpointList(data=[endpoint_out(e) for e in uc.list_endpoints(get_services())])


@router.get("/webhook-endpoints/<endpoint_id>", summary="A webhook endpoint", responses=error_responses(404))
def handle_get_webhook_endpoint(endpoint_id: Annotated[Id, Path()]) -> EndpointOut:
    return endpoint_out(uc.get_endpoint(get_services(), endpoint_id))


@router.patch(
    "/webhook-endpoints/<endpoint_id>",
    summary="Change url, events, description or status (enabled/disabled)",
    responses=error_responses(404, 409, 422),
)
def handle_update_webhook_endpoint(
    endpoint_id: Annotated[Id, Path()], body: Annotated[EndpointUpdate, Body()]
) -> EndpointOut:
    return endpoint_out(
        uc.update_endpoint(get_services(), current_actor(router), endpoint_id, uc.UpdateEndpoint(**body.changes()))
    )


@router.delete(
    "/webhook-endpoints/<endpoint_id>", summary="Delete a webhook endpoint", responses=error_responses(404, success=204)
)
def handle_delete_webhook_endpoint(endpoint_id: Annotated[Id, Path()]) -> Response[None]:
    uc.delete_endpoint(get_services(), current_actor(router), endpoint_id)
    return Response(status_code=204, body=None)


@router.post(
    "/webhook-endpoints/<endpoint_id>/rotate-secret",
    summary="A new signing secret (shown once); the old one keeps signing alongside for 24 h",
    responses=error_responses(404, 409),
)
def handle_rotate_webhook_secret(endpoint_id: Annotated[Id, Path()]) -> EndpointWithSecret:
    endpoint, secret = uc.rotate_secret(get_services(), current_actor(router), endpoint_id)
    return EndpointWithSecret(**endpoint.public(), secret=secret)


@router.get(
    "/webhook-endpoints/<endpoint_id>/deliveries",
    summary="Deliveries to this endpoint, newest first, each with its attempts",
    responses=error_responses(404),
)
def handle_list_webhook_deliveries(
    endpoint_id: Annotated[Id, Path()], limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> DeliveryList:
    return DeliveryList(data=[delivery_out(d) for d in uc.list_deliveries(get_services(), endpoint_id, limit)])


@router.post(
    "/webhook-endpoints/<endpoint_id>/deliveries/<delivery_id>/retry",
    summary="Send a delivery again now",
    responses=error_responses(404, 409, success=202),
)
def handle_retry_webhook_delivery(
    endpoint_id: Annotated[Id, Path()], delivery_id: Annotated[Id, Path()]
) -> Response[DeliveryOut]:
    delivery = uc.retry_delivery(get_services(), current_actor(router), endpoint_id, delivery_id)
    return Response(status_code=202, body=delivery_out(delivery), content_type="application/json")


@router.post(
    "/webhook-endpoints/<endpoint_id>/replay",
    summary="Send again every delivery that failed since a time",
    responses=error_responses(404, 409, 422, success=202),
)
def handle_replay_webhook_deliveries(
    endpoint_id: Annotated[Id, Path()], body: Annotated[ReplayRequest, Body()]
) -> Response[ReplayOut]:
    count = uc.replay(get_services(), current_actor(router), endpoint_id, body.since)
    return Response(status_code=202, body=ReplayOut(replayed=count), content_type="application/json")
