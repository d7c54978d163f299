"""API Gateway emulation without sockets: routing, policies, events, authorizers, responses."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from local.apigw import (
    ApiConfig,
    ApiGateway,
    AuthorizerConfig,
    HttpRequest,
    PolicyError,
    Route,
    Router,
    evaluate_policy,
    match_path,
)
from local.functions import FunctionError

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/local/GET/invoices/inv_1"


# ------------------------------------------------------------------------------------ route matching
def test_match_path_parameters_and_greedy() -> None:
    assert match_path("/invoices", "/invoices") == {}
    assert match_path("/invoices/{id}", "/invoices/inv_1") == {"id": "inv_1"}
    assert match_path("/invoices/{id}", "/invoices") is None
    assert match_path("/invoices/{id}", "/invoices/a/b") is None
    assert match_path("/files/{proxy+}", "/files/a/b/c.pdf") == {"proxy": "a/b/c.pdf"}
    assert match_path("/files/{proxy+}", "/files") is None
    assert match_path("/", "/") == {}


def test_router_prefers_literals_then_params_then_greedy() -> None:
    router = Router(
        [
            Route("/items/{proxy+}", "ANY", "Greedy"),
            Route("/items/{id}", "GET", "Param"),
            Route("/items/special", "GET", "Literal"),
            Route("/items/{id}/sub", "GET", "ParamSub"),
            Route("/items/{id}", "ANY", "ParamAny"),
        ]
    )

    def target(method: str, path: str) -> str | None:
        found = router.match(method, path)
        return None if found is None else found[0].function_id

    assert target("GET", "/items/special") == "Literal"
    assert target("GET", "/items/42") == "Param"
    assert target("DELETE", "/items/42") == "ParamAny"
    assert target("GET", "/items/42/sub") == "ParamSub"
    assert target("GET", "/items/42/other") == "Greedy"
    assert target("POST", "/items/special") == "ParamAny"
    assert target("GET", "/elsewhere") is None
    assert router.match("GET", "/items/42")[1] == {"id": "42"}  # type: ignore[index]


# ------------------------------------------------------------------------------------------- policy
def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_policy_allow_with_wildcards() -> None:
    prefix = "arn:aws:execute-api:us-east-1:123456789012:abc123"
    assert evaluate_policy(_policy({"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{prefix}/*"}), ARN)
    assert evaluate_policy(
        _policy({"Effect": "Allow", "Action": "execute-api:*", "Resource": f"{prefix}/local/GET/invoices/*"}), ARN
    )
    assert evaluate_policy(
        _policy({"Effect": "Allow", "Action": ["*"], "Resource": [f"{prefix}/local/???/invoices/inv_?"]}), ARN
    )
    assert not evaluate_policy(
        _policy({"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{prefix}/local/POST/*"}), ARN
    )
    assert not evaluate_policy(
        _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}), ARN
    )  # action does not match


def test_policy_explicit_deny_wins_and_no_allow_denies() -> None:
    allow = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:*/*/GET/*"}
    assert not evaluate_policy(_policy(allow, deny), ARN)
    assert not evaluate_policy(_policy(), ARN)
    assert evaluate_policy({"Statement": allow}, ARN)  # a single statement object is allowed


@pytest.mark.parametrize(
    "policy",
    [
        None,
        "x",
        {"Statement": "x"},
        {"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Resource": "*"}]},
    ],
)
def test_malformed_policies_raise(policy: Any) -> None:
    with pytest.raises(PolicyError):
        evaluate_policy(policy, ARN)


# ------------------------------------------------------------------------------------------ gateway
class FakeFunctions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.authorizer_result: Any = None
        self.authorizer_error: str | None = None
        self.response: Any = {"statusCode": 200, "body": "ok"}

    def __call__(self, function_id: str, event: Any) -> Any:
        self.calls.append((function_id, event))
        if function_id == "Auth":
            if self.authorizer_error:
                raise FunctionError("Exception", self.authorizer_error)
            return self.authorizer_result
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


def _allow(resource: str = "*", context: dict[str, Any] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "principalId": "user-1",
        "policyDocument": _policy({"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": resource}),
    }
    if context is not None:
        result["context"] = context
    return result


@pytest.fixture
def fns() -> FakeFunctions:
    return FakeFunctions()


@pytest.fixture
def gateway(fns: FakeFunctions) -> ApiGateway:
    api = ApiConfig(
        logical_id="Api",
        api_id="abc123",
        stage="local",
        default_authorizer="Keys",
        authorizers={
            "Keys": AuthorizerConfig("Keys", "Auth", payload_type="REQUEST", identity_headers=["Authorization"], ttl=0)
        },
        gateway_responses={
            "UNAUTHORIZED": {"StatusCode": 401, "ResponseTemplates": {"application/json": '{"e": "unauth"}'}},
            "MISSING_AUTHENTICATION_TOKEN": {
                "StatusCode": 404,
                "ResponseTemplates": {"application/json": '{"e": $context.error.messageString}'},
                "ResponseParameters": {"Headers": {"Access-Control-Allow-Origin": "'*'"}},
            },
            "DEFAULT_5XX": {"ResponseTemplates": {"application/json": '{"e": "5xx"}'}},
        },
    )
    router = Router(
        [
            Route("/invoices/{invoice_id}", "GET", "Fn", authorizer="Keys"),
            Route("/invoices", "POST", "Fn", authorizer="Keys"),
            Route("/public", "ANY", "Fn", authorizer=None),
        ]
    )
    return ApiGateway({"Api": api}, router, fns, port=3000)


def _request(method: str, path: str, *, query: str = "", headers: Any = (), body: bytes = b"") -> HttpRequest:
    return HttpRequest(method, path, query, list(headers), body, "10.1.2.3")


def test_proxy_event_shape(gateway: ApiGateway, fns: FakeFunctions) -> None:
    fns.authorizer_result = _allow(context={"user": "u", "n": 3, "admin": True})
    response = gateway.handle(
        _request(
            "GET",
            "/invoices/inv%201",
            query="a=1&a=2&b=&c=x%20y",
            headers=[("Authorization", "Bearer k"), ("X-Multi", "1"), ("X-Multi", "2"), ("User-Agent", "t")],
        )
    )
    assert response.status == 200
    (auth_id, auth_event), (fn_id, event) = fns.calls
    assert auth_id == "Auth" and fn_id == "Fn"
    assert event["resource"] == "/invoices/{invoice_id}"
    assert event["path"] == "/invoices/inv 1"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"invoice_id": "inv 1"}
    assert event["queryStringParameters"] == {"a": "2", "b": "", "c": "x y"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""], "c": ["x y"]}
    assert event["headers"]["X-Multi"] == "2"
    assert event["multiValueHeaders"]["X-Multi"] == ["1", "2"]
    assert event["headers"]["X-Forwarded-For"] == "10.1.2.3"
    assert event["stageVariables"] is None
    assert event["body"] is None and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["accountId"] == "123456789012"
    assert ctx["apiId"] == "abc123"
    assert ctx["stage"] == "local"
    assert ctx["resourcePath"] == "/invoices/{invoice_id}"
    assert ctx["path"] == "/invoices/inv 1"  # as requested: the local URL has no stage prefix
    assert ctx["httpMethod"] == "GET"
    assert ctx["identity"]["sourceIp"] == "10.1.2.3"
    assert ctx["identity"]["userAgent"] == "t"
    assert isinstance(ctx["requestTimeEpoch"], int) and ctx["requestId"]
    # authorizer context: values are strings, plus the principal
    assert ctx["authorizer"]["user"] == "u"
    assert ctx["authorizer"]["n"] == "3"
    assert ctx["authorizer"]["admin"] == "true"
    assert ctx["authorizer"]["principalId"] == "user-1"
    # the REQUEST authorizer's own event
    assert auth_event["type"] == "REQUEST"
    assert auth_event["methodArn"] == "arn:aws:execute-api:us-east-1:123456789012:abc123/local/GET/invoices/inv 1"
    assert auth_event["headers"]["Authorization"] == "Bearer k"
    assert auth_event["pathParameters"] == {"invoice_id": "inv 1"}
    assert auth_event["requestContext"]["resourcePath"] == "/invoices/{invoice_id}"


def test_bodies_text_and_binary(gateway: ApiGateway, fns: FakeFunctions) -> None:
    gateway.handle(
        _request("POST", "/public", headers=[("Content-Type", "application/json")], body=b'{"a": "\xc3\xa9"}')
    )
    event = fns.calls[-1][1]
    assert event["body"] == '{"a": "é"}' and event["isBase64Encoded"] is False
    raw = bytes(range(256))
    gateway.handle(_request("POST", "/public", headers=[("Content-Type", "application/pdf")], body=raw))
    event = fns.calls[-1][1]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw
    gateway.handle(_request("POST", "/public", headers=[("Content-Type", "text/plain")], body=b"\xff\xfe"))
    assert fns.calls[-1][1]["isBase64Encoded"] is True  # not UTF-8: base64 anyway


def test_missing_identity_source_is_401_without_calling_the_authorizer(gateway: ApiGateway, fns: FakeFunctions) -> None:
    response = gateway.handle(_request("GET", "/invoices/x"))
    assert response.status == 401
    assert response.json() == {"e": "unauth"}
    assert response.header("x-amzn-ErrorType") == "UnauthorizedException"
    assert fns.calls == []


def test_authorizer_outcomes(gateway: ApiGateway, fns: FakeFunctions) -> None:
    auth = [("Authorization", "Bearer k")]
    fns.authorizer_error = "Unauthorized"
    assert gateway.handle(_request("GET", "/invoices/x", headers=auth)).status == 401
    fns.authorizer_error = "database down"
    response = gateway.handle(_request("GET", "/invoices/x", headers=auth))
    assert response.status == 500 and response.json() == {"e": "5xx"}  # DEFAULT_5XX template
    fns.authorizer_error = None
    fns.authorizer_result = {"no": "policy"}
    assert gateway.handle(_request("GET", "/invoices/x", headers=auth)).status == 500
    fns.authorizer_result = _allow(resource="arn:aws:execute-api:*:*:abc123/local/GET/*")
    assert gateway.handle(_request("GET", "/invoices/x", headers=auth)).status == 200
    response = gateway.handle(_request("POST", "/invoices", headers=auth))
    assert response.status == 403  # the policy only allows GET
    assert response.header("x-amzn-ErrorType") == "AccessDeniedException"
    assert "explicit deny" in response.json()["Message"]  # API Gateway's default body
    fns.authorizer_result = _allow(context={"bad": {"nested": 1}})
    assert gateway.handle(_request("GET", "/invoices/x", headers=auth)).status == 500
    calls_before = len(fns.calls)
    assert gateway.handle(_request("GET", "/public")).status == 200  # Authorizer: NONE
    assert [c[0] for c in fns.calls[calls_before:]] == ["Fn"]


def test_authorizer_results_are_cached_for_the_ttl(fns: FakeFunctions) -> None:
    api = ApiConfig(
        "Api",
        "abc123",
        "local",
        authorizers={"K": AuthorizerConfig("K", "Auth", "REQUEST", ["Authorization"], ttl=300)},
    )
    gateway = ApiGateway({"Api": api}, Router([Route("/a/{x}", "GET", "Fn", authorizer="K")]), fns)
    fns.authorizer_result = _allow(resource="arn:aws:execute-api:*:*:abc123/local/GET/a/1")
    for path, status in [("/a/1", 200), ("/a/1", 200), ("/a/2", 403)]:
        assert gateway.handle(_request("GET", path, headers=[("Authorization", "k")])).status == status
    assert [c[0] for c in fns.calls].count("Auth") == 1  # the cached policy is evaluated per method ARN


def test_no_route_is_missing_authentication_token(gateway: ApiGateway) -> None:
    response = gateway.handle(_request("GET", "/nowhere"))
    assert response.status == 404
    assert response.json() == {"e": "Missing Authentication Token"}
    assert response.header("Access-Control-Allow-Origin") == "*"
    assert gateway.handle(_request("DELETE", "/invoices")).status == 404  # wrong method, same answer


def test_token_authorizer(fns: FakeFunctions) -> None:
    api = ApiConfig(
        "Api",
        "abc123",
        "local",
        authorizers={
            "T": AuthorizerConfig("T", "Auth", "TOKEN", ["Authorization"], validation_expression="Bearer .+", ttl=0)
        },
    )
    gateway = ApiGateway({"Api": api}, Router([Route("/a", "GET", "Fn", authorizer="T")]), fns)
    fns.authorizer_result = _allow()
    assert gateway.handle(_request("GET", "/a", headers=[("Authorization", "Basic x")])).status == 401
    assert gateway.handle(_request("GET", "/a", headers=[("Authorization", "Bearer x")])).status == 200
    assert fns.calls[0][1] == {
        "type": "TOKEN",
        "authorizationToken": "Bearer x",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/local/GET/a",
    }


def test_function_responses(gateway: ApiGateway, fns: FakeFunctions) -> None:
    fns.response = {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "X-Num": 5, "Set-Cookie": "ignored=1"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-List": ["x", "y"]},
        "body": "created",
    }
    response = gateway.handle(_request("GET", "/public"))
    assert response.status == 201 and response.body == b"created"
    assert [v for k, v in response.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    assert response.header("X-Num") == "5"
    assert [v for k, v in response.headers if k == "X-List"] == ["x", "y"]
    fns.response = {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
    assert gateway.handle(_request("GET", "/public")).body == b"\x00\x01"


@pytest.mark.parametrize(
    "bad",
    [
        FunctionError("RuntimeError", "boom"),
        None,
        {"body": "no status"},
        {"statusCode": "abc"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "!!", "isBase64Encoded": True},
        {"statusCode": 200, "headers": {"X": {"nested": 1}}},
    ],
)
def test_handler_errors_and_malformed_responses_are_502(gateway: ApiGateway, fns: FakeFunctions, bad: Any) -> None:
    fns.response = bad
    response = gateway.handle(_request("GET", "/public"))
    assert response.status == 502
    assert json.loads(response.body) == {"message": "Internal server error"}
