"""The public base URL of the pay pages: where a payment link points.

No function may read it from the API resource itself: the API references the functions that serve it,
so a function referencing the API is a dependency cycle that CloudFormation refuses (docs/decisions.md).
In order of precedence:

1. the ``PublicBaseUrl`` template parameter (a custom domain), when the deployer set one;
2. inside an API request, the URL the client used: ``X-Forwarded-Proto`` + ``requestContext.domainName``
   + the path prefix API Gateway added (the stage on ``execute-api``, a base path on a custom domain);
3. outside a request (the reminder worker), the SSM parameter the stack writes once the API exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from invoicing.errors import ServiceUnavailable

_request_base_url: ContextVar[str | None] = ContextVar("request_base_url", default=None)
_parameter_cache: dict[str, str] = {}


def _header(headers: Any, name: str) -> str:
    for key, value in (headers or {}).items():
        if str(key).lower() == name:
            return str(value or "")
    return ""


def base_url_of_request(event: dict[str, Any]) -> str | None:
    """The base URL a client reached this API through, from an API Gateway REST (payload 1.0) event."""
    context = event.get("requestContext") or {}
    domain = str(context.get("domainName") or "")
    if not domain or "/" in domain:
        return None
    proto = _header(event.get("headers"), "x-forwarded-proto").split(",")[0].strip().lower()
    scheme = proto if proto in ("http", "https") else "https"
    if ".execute-api." in domain:  # the API's own URL always starts with the stage
        prefix = "/" + str(context.get("stage") or "")
    else:  # a custom domain: whatever base path the mapping added in front of the resource path
        requested = str(context.get("path") or "")
        resource_path = str(event.get("path") or "")
        prefix = requested[: -len(resource_path)] if resource_path and requested.endswith(resource_path) else ""
    return f"{scheme}://{domain}{prefix.rstrip('/')}"


@contextmanager
def request_base_url(event: dict[str, Any]) -> Iterator[None]:
    """Within this block, payment links point where this request came in (see the module docstring)."""
    token = _request_base_url.set(base_url_of_request(event))
    try:
        yield
    finally:
        _request_base_url.reset(token)


def _read_parameter(name: str) -> str:
    if name not in _parameter_cache:
        from aws_lambda_powertools.utilities.parameters import get_parameter

        try:
            _parameter_cache[name] = str(get_parameter(name, max_age=3600)).rstrip("/")
        except Exception as exc:  # no parameter, or no access: no link can be made now; the job retries
            raise ServiceUnavailable("the public base URL is not available yet") from exc
    return _parameter_cache[name]


def public_base_url(configured: str, parameter_name: str = "") -> str:
    """The base URL for links; ``configured`` is the PublicBaseUrl parameter, ``parameter_name`` the SSM one."""
    if configured:
        return configured.rstrip("/")
    from_request = _request_base_url.get()
    if from_request:
        return from_request
    if parameter_name:
        return _read_parameter(parameter_name)
    raise ServiceUnavailable("no public base URL: set PublicBaseUrl, or call from an API request")


def pay_url(configured: str, parameter_name: str, token: str) -> str:
    """The public pay page of a link's token."""
    return f"{public_base_url(configured, parameter_name)}/pay/{token}"
