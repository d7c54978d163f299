"""Access: every admin route in template.yaml needs a valid key (401) with the right scope (403).

The authorizer function runs for real against moto; its policy is evaluated like API Gateway does.
"""

from __future__ import annotations

import pytest

from local.apigw import evaluate_policy
from tests.integration.conftest import LambdaContext, load_function
from tests.support.routes import template_routes

ADMIN_ROUTES = [r for r in template_routes() if r.authorized]
PUBLIC_ROUTES = [r for r in template_routes() if not r.authorized]


def method_arn(route):
    return f"arn:aws:execute-api:us-east-1:123456789012:abc123/test/{route.method}{route.sample_path()}"


def authorizer_event(route, authorization=None):
    headers = {"Authorization": authorization} if authorization is not None else {}
    return {
        "type": "REQUEST",
        "methodArn": method_arn(route),
        "resource": route.path,
        "path": route.sample_path(),
        "httpMethod": route.method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {"requestId": "r", "stage": "test", "httpMethod": route.method},
    }


@pytest.fixture
def authorizer(aws):
    return load_function("authorizer").handle_authorize_request


@pytest.fixture
def keys(aws):
    from invoicing.root import get_services
    from invoicing.use_cases.api_keys import create_api_key, hash_key, revoke_api_key

    full = create_api_key("full-access")
    read_only = create_api_key("reader", ["invoices:read"])
    write_only = create_api_key("writer", ["invoices:write"])
    revoked = create_api_key("revoked")
    revoke_api_key(hash_key(revoked), get_services().repo)
    return {"full": full, "read": read_only, "write": write_only, "revoked": revoked}


def decide(authorizer, route, authorization):
    """401, 403 or 200 (allowed), as API Gateway would answer before the integration runs."""
    try:
        result = authorizer(authorizer_event(route, authorization), LambdaContext("AuthorizerFunction"))
    except Exception as exc:
        assert str(exc) == "Unauthorized"
        return 401
    return 200 if evaluate_policy(result["policyDocument"], method_arn(route)) else 403


def test_the_template_has_admin_and_public_routes():
    assert len(ADMIN_ROUTES) >= 20
    assert {r.path for r in PUBLIC_ROUTES} >= {"/openapi.json", "/docs"}


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_admin_route_access(authorizer, keys, route):
    assert decide(authorizer, route, None) == 401
    assert decide(authorizer, route, "") == 401
    assert decide(authorizer, route, "Bearer inv_wrong") == 401
    assert decide(authorizer, route, f"Basic {keys['full']}") == 401
    assert decide(authorizer, route, f"Bearer {keys['revoked']}") == 401
    assert decide(authorizer, route, f"Bearer {keys['full']}") == 200
    if route.method == "GET":
        assert decide(authorizer, route, f"Bearer {keys['read']}") == 200
        assert decide(authorizer, route, f"Bearer {keys['write']}") == 403
    else:
        assert decide(authorizer, route, f"Bearer {keys['read']}") == 403
        assert decide(authorizer, route, f"Bearer {keys['write']}") == 200


def test_principal_reaches_the_handler(authorizer, keys):
    route = ADMIN_ROUTES[0]
    result = authorizer(authorizer_event(route, f"Bearer {keys['full']}"), LambdaContext("AuthorizerFunction"))
    assert result["principalId"] == "full-access"
    assert result["context"] == {"principal": "api_key:full-access", "scopes": "invoices:read invoices:write"}


def test_keys_are_stored_only_as_hashes(aws, keys):
    import boto3

    items = boto3.client("dynamodb").scan(TableName=aws.table_name)["Items"]  # test-only inspection
    text = repr(items)
    for key in keys.values():
        assert key not in text and key[-12:] not in text


def test_no_key_appears_in_logs(authorizer, keys, capsys):
    route = ADMIN_ROUTES[0]
    for key in keys.values():
        decide(authorizer, route, f"Bearer {key}")
    out = capsys.readouterr()
    for key in keys.values():
        assert key not in out.out and key not in out.err


def test_two_revocations_at_once_keep_the_first_revocation_time(aws, monkeypatch):
    # Given a key, and a revocation that read it unrevoked just before another revocation committed
    from invoicing import clock
    from invoicing.root import get_services
    from invoicing.use_cases.api_keys import create_api_key, hash_key, revoke_api_key

    repo = get_services().repo
    key_hash = hash_key(create_api_key("twice"))
    read, first = repo.get_api_key, []

    def read_then_revoke(h):
        key = read(h)
        if not first:
            first.append(None)
            first[0] = revoke_api_key(h, repo).revoked_at
            monkeypatch.setattr(clock, "now", lambda: clock.parse_iso("2030-01-01T00:00:00Z"))
        return key

    monkeypatch.setattr(repo, "get_api_key", read_then_revoke)
    # When the late revocation commits
    late = revoke_api_key(key_hash, repo)
    # Then it does not overwrite the first revocation's time, and answers with it
    monkeypatch.undo()
    assert late.revoked_at == first[0] == repo.get_api_key(key_hash).revoked_at
    assert not late.revoked_at.startswith("2030")
