"""Integration fixtures: moto with the tables built from template.yaml, and an in-process API caller.

`api(method, path, body=None, headers=None, query=None, principal=...)` sends the same REST (payload
1.0) event API Gateway would, with the authorizer context of the given principal, to the real
handler, and returns `(status, json_body, headers)`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.request import Request, urlopen

import pytest
from moto import mock_aws

from tests.conftest import ROOT
from tests.support.aws import create_template_resources


@dataclass
class Env:
    table_name: str
    idempotency_table_name: str
    bucket_name: str
    render_queue_url: str


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """A fresh moto account with every resource of template.yaml, and settings pointing at it."""
    from invoicing import root

    with mock_aws():
        physical = create_template_resources(ROOT / "template.yaml")
        env = {
            "TABLE_NAME": physical["InvoicesTable"],
            "IDEMPOTENCY_TABLE_NAME": physical["IdempotencyTable"],
            "BUCKET_NAME": physical["DocumentsBucket"],
            "RENDER_QUEUE_URL": physical["RenderQueue"],
            "STAGE": "test",
            "PUBLIC_BASE_URL": "https://pay.example.test",
            "WEBHOOK_SECRETS_KEY_ID": physical["WebhookSecretsKey"],
            "WEBHOOK_QUEUE_URL": physical["WebhookQueue"],
            "BILLING_RUN_QUEUE_URL": physical["BillingRunQueue"],
            "BILLING_RUN_START_QUEUE_URL": physical["BillingRunStartQueue"],
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        root.reset()
        _reset_idempotency()
        yield Env(env["TABLE_NAME"], env["IDEMPOTENCY_TABLE_NAME"], env["BUCKET_NAME"], env["RENDER_QUEUE_URL"])
        root.reset()
        _reset_idempotency()


def _reset_idempotency() -> None:
    # boto3 clients live as long as the process's root; one made while another test pointed
    # AWS_ENDPOINT_URL at its own (since stopped) moto server would keep calling that dead endpoint
    from invoicing import root

    root.reset()


@pytest.fixture(scope="module")
def served_aws():  # type: ignore[no-untyped-def]
    """Services over a moto *server* (one lock around dispatch: DynamoDB's per-item atomicity,
    unlike in-process moto, where concurrent threads can interleave inside one call), with every
    resource of template.yaml. For tests that race many threads against one table."""
    from local.aws import EmbeddedAWS
    from local.cfn import Template
    from local.resources import ResourceManager

    aws = EmbeddedAWS().start()
    _reset_moto(aws.url)
    template = Template(ROOT / "template.yaml", stage="test")
    ResourceManager(template, aws).create_all()
    saved = dict(os.environ)
    os.environ.update(aws.environment())
    os.environ["TABLE_NAME"] = str(template.ref("InvoicesTable"))
    os.environ["IDEMPOTENCY_TABLE_NAME"] = str(template.ref("IdempotencyTable"))
    os.environ["RENDER_QUEUE_URL"] = str(template.ref("RenderQueue"))
    os.environ["PUBLIC_BASE_URL"] = "https://pay.example.test"  # the production finalize issues pay links
    from invoicing import root
    from invoicing.root import get_services

    root.reset()
    _reset_idempotency()
    try:
        yield get_services()
    finally:
        root.reset()
        _reset_idempotency()
        os.environ.clear()
        os.environ.update(saved)
        _reset_moto(aws.url)
        aws.stop()


def _reset_moto(url: str) -> None:
    # moto's backends are per process: another module's server may have left its tables behind
    urlopen(Request(f"{url}/moto-api/reset", method="POST"), timeout=10).read()


@pytest.fixture
def services(aws: Env):  # type: ignore[no-untyped-def]
    from invoicing.root import get_services

    return get_services()


class LambdaContext:
    def __init__(self, name: str = "ApiFunction", timeout_s: int = 15) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "test"
        self._timeout_ms = timeout_s * 1000

    def get_remaining_time_in_millis(self) -> int:
        return self._timeout_ms


def rest_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    authorizer: dict[str, Any] | None = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": hdrs,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "test",
            "httpMethod": method,
            "path": f"/test{path}",
            "resourcePath": path,
            "accountId": "123456789012",
            "apiId": "local",
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": authorizer,
        },
        "body": text,
        "isBase64Encoded": False,
    }


def load_function(folder: str, module: str = "app") -> Any:
    """Import a function's handler module the way Lambda does (its folder on sys.path)."""
    import importlib
    import sys

    path = str(ROOT / "functions" / folder)
    if sys.path[0] != path:
        sys.path.insert(0, path)
    try:
        for name in [m for m in sys.modules if m == module or m.startswith(("routes", "schemas"))]:
            if getattr(sys.modules[name], "__file__", "") and not str(sys.modules[name].__file__).startswith(path):
                del sys.modules[name]
        return importlib.import_module(module)
    finally:
        sys.path.remove(path)


@pytest.fixture
def api(aws: Env) -> Callable[..., tuple[int, Any, dict[str, str]]]:
    handler_module = load_function("api")

    def call(
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        principal: str = "tester",
        raw_body: str | None = None,
        scopes: str = "invoices:read invoices:write billing_runs:write",
    ):
        authorizer = {
            "principalId": principal,
            "principal": f"api_key:{principal}",
            "scopes": scopes,
        }
        event = rest_event(
            method, path, body=body, headers=headers, query=query, authorizer=authorizer, raw_body=raw_body
        )
        response = handler_module.handle_api_request(event, LambdaContext())
        text = response.get("body")
        headers = dict(response.get("headers") or {})
        for key, values in (response.get("multiValueHeaders") or {}).items():
            headers[key] = ", ".join(values)
        # JSON is parsed; any other body (the e-invoice XML) is returned as its text
        is_json = headers.get("Content-Type", "application/json").startswith("application/json")
        payload = (json.loads(text) if is_json else text) if text else None
        return response["statusCode"], payload, headers

    return call


@pytest.fixture
def customer(api) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    status, body, _ = api(
        "POST",
        "/customers",
        {
            "name": "Acme GmbH",
            "email": "billing@acme.test",
            "address": {"line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"},
        },
    )
    assert status == 201, body
    return body


# ---------------------------------------------------------------- the finance console
@pytest.fixture
def console(aws, monkeypatch):  # type: ignore[no-untyped-def]
    import boto3

    from tests.conftest import ROOT
    from tests.support import console as support
    from tests.support.aws import IDENTITY_TYPES, create_template_resources

    create_template_resources(ROOT / "template.yaml", IDENTITY_TYPES)
    idp = boto3.client("cognito-idp", region_name="us-east-1")
    pool_id = idp.list_user_pools(MaxResults=10)["UserPools"][0]["Id"]
    client_id = idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=10)["UserPoolClients"][0]["ClientId"]
    secret_arn = boto3.client("secretsmanager", region_name="us-east-1").list_secrets()["SecretList"][0]["ARN"]
    monkeypatch.setenv("CONSOLE_USER_POOL_ID", pool_id)
    monkeypatch.setenv("CONSOLE_CLIENT_ID", client_id)
    monkeypatch.setenv("CONSOLE_SESSION_SECRET_ARN", secret_arn)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    app = load_function("console")
    import auth
    from joserfc.jwk import KeySet

    from invoicing import root

    root.reset()
    keys = KeySet.import_key_set(support.moto_jwks())
    monkeypatch.setattr(auth._jwks, "key_set", lambda url, refresh=False: keys)
    for group in support.GROUPS:
        support.add_user(idp, pool_id, f"{group}@acme.example", group)
    yield {"app": app, "idp": idp, "pool_id": pool_id, "client_id": client_id, "auth": auth}
    root.reset()


# ---------------------------------------------------------------- webhooks (issue #17)
@pytest.fixture
def local_stage(aws, monkeypatch):  # type: ignore[no-untyped-def]
    """The local stage (http://127.0.0.1 endpoints allowed) with the compressed retry schedule."""
    from invoicing import root

    monkeypatch.setenv("STAGE", "local")
    monkeypatch.setenv("WEBHOOK_RETRY_COMPRESSION", "100000")
    root.reset()
    yield aws
    root.reset()


@pytest.fixture
def pipeline(local_stage):  # type: ignore[no-untyped-def]
    import os

    from tests.support.webhooks import Pipeline

    return Pipeline(local_stage.table_name, os.environ["WEBHOOK_QUEUE_URL"], load_function, LambdaContext("Webhooks"))


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    """A webhook receiver on 127.0.0.1 verifying every delivery with standardwebhooks."""
    from tests.support.webhooks import Receiver

    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def german_seller(aws: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seller's e-invoice terms set (tests/support/builders.py GERMAN_SELLER_ENV), as the Seller*
    template parameters would set them."""
    from invoicing import root
    from tests.support.builders import GERMAN_SELLER_ENV

    for key, value in GERMAN_SELLER_ENV.items():
        monkeypatch.setenv(key, value)
    root.reset()
