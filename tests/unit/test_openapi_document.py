"""The OpenAPI document's `servers` entry: where the caller reached the API, per request."""

from __future__ import annotations

import importlib.util
from typing import Any

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("api_openapi", ROOT / "functions" / "api" / "openapi.py")
assert _spec and _spec.loader
openapi = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(openapi)


def event(path: str, context_path: str, domain: str, proto: str | None) -> dict[str, Any]:
    headers = {"Host": domain, **({"X-Forwarded-Proto": proto} if proto else {})}
    context = {"path": context_path, "domainName": domain, "stage": "prod"}
    return {"path": path, "headers": headers, "requestContext": context}


def test_on_the_execute_api_url_the_stage_is_the_prefix():
    # Given API Gateway's event for https://abc.execute-api.../prod/openapi.json
    given = event("/openapi.json", "/prod/openapi.json", "abc.execute-api.eu-west-1.amazonaws.com", "https")
    # Then the server is the stage's base URL
    assert openapi.server_url(given) == "https://abc.execute-api.eu-west-1.amazonaws.com/prod"


def test_locally_and_on_a_custom_domain_there_is_no_prefix():
    # Given the local stack (requestContext.path is the path the client requested) and a custom domain
    local = event("/docs", "/docs", "127.0.0.1:3000", "http")
    custom = event("/openapi.json", "/openapi.json", "api.example.test", None)
    # Then the server is the bare host, with the scheme the client used (https when not forwarded)
    assert openapi.server_url(local) == "http://127.0.0.1:3000"
    assert openapi.server_url(custom) == "https://api.example.test"


def test_a_base_path_mapping_keeps_its_prefix():
    given = event("/invoices", "/billing/invoices", "api.example.test", "https")
    assert openapi.server_url(given) == "https://api.example.test/billing"
