"""API Gateway REST API emulation: routes, Lambda authorizers, proxy events (payload 1.0), responses."""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .functions import FunctionError

# ------------------------------------------------------------------------------------------- routes


@dataclass
class HttpRequest:
    method: str
    path: str  # raw path, percent-encoded as received
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    source_ip: str = "127.0.0.1"

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        value = None
        for key, item in self.headers:
            if key.lower() == lowered:
                value = item
        return value


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Route:
    path: str  # resource path as in the template, e.g. /invoices/{invoice_id}
    method: str  # upper case, or ANY
    function_id: str
    api_id: str = "Api"  # logical id of the API
    event_id: str = ""
    authorizer: str | None = None  # None: no authorizer; else a name in the API's Authorizers

    @property
    def segments(self) -> list[str]:
        return [s for s in self.path.strip("/").split("/") if s]


def _segment_kind(segment: str) -> int:
    if segment.startswith("{") and segment.endswith("+}"):
        return 2
    if segment.startswith("{") and segment.endswith("}"):
        return 1
    return 0


def match_path(route_path: str, path: str) -> dict[str, str] | None:
    """Path parameters if ``path`` (decoded) matches the resource path ``route_path``, else None."""
    pattern = [s for s in route_path.strip("/").split("/") if s]
    parts = [s for s in path.strip("/").split("/")] if path.strip("/") else []
    params: dict[str, str] = {}
    for index, segment in enumerate(pattern):
        kind = _segment_kind(segment)
        if kind == 2:
            if index != len(pattern) - 1 or index >= len(parts):
                return None
            params[segment[1:-2]] = "/".join(parts[index:])
            return params
        if index >= len(parts):
            return None
        if kind == 1:
            if parts[index] == "":
                return None
            params[segment[1:-1]] = parts[index]
        elif parts[index] != segment:
            return None
    return params if len(parts) == len(pattern) else None


class Router:
    """API Gateway's matching: literal segments beat ``{param}``, which beats greedy ``{proxy+}``."""

    def __init__(self, routes: list[Route] | None = None) -> None:
        self.routes: list[Route] = list(routes or [])

    def add(self, route: Route) -> None:
        self.routes.append(route)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        method = method.upper()
        best: tuple[tuple[int, ...], Route, dict[str, str]] | None = None
        for route in self.routes:
            if route.method not in (method, "ANY"):
                continue
            params = match_path(route.path, path)
            if params is None:
                continue
            kinds = tuple(_segment_kind(s) for s in route.segments)
            # a specific method beats ANY on the same resource
            key = (*kinds, 1 if route.method == "ANY" else 0)
            if best is None or key < best[0]:
                best = (key, route, params)
        return None if best is None else (best[1], best[2])


# ------------------------------------------------------------------------------------------- policy


def _wildcard(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class PolicyError(ValueError):
    """The authorizer returned something that is not a usable IAM policy."""


def evaluate_policy(policy: Any, method_arn: str, action: str = "execute-api:Invoke") -> bool:
    """IAM evaluation for one request: an explicit Deny wins, then any Allow, else an implicit deny."""
    if not isinstance(policy, dict):
        raise PolicyError("policyDocument must be an object")
    statements = policy.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise PolicyError("policyDocument.Statement is missing")
    allowed = False
    for statement in statements:
        if not isinstance(statement, dict):
            raise PolicyError("a Statement must be an object")
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"bad Effect {effect!r}")
        if "Action" in statement:
            action_hit = any(_wildcard(str(a), ignore_case=True).match(action) for a in _as_list(statement["Action"]))
        elif "NotAction" in statement:
            action_hit = not any(
                _wildcard(str(a), ignore_case=True).match(action) for a in _as_list(statement["NotAction"])
            )
        else:
            raise PolicyError("a Statement needs Action")
        if "Resource" in statement:
            resource_hit = any(_wildcard(str(r)).match(method_arn) for r in _as_list(statement["Resource"]))
        elif "NotResource" in statement:
            resource_hit = not any(_wildcard(str(r)).match(method_arn) for r in _as_list(statement["NotResource"]))
        else:
            raise PolicyError("a Statement needs Resource")
        if action_hit and resource_hit:
            if effect == "Deny":
                return False
            allowed = True
    return allowed


# ------------------------------------------------------------------------------------------- config


@dataclass
class AuthorizerConfig:
    name: str
    function_id: str
    payload_type: str = "TOKEN"  # SAM's default
    identity_headers: list[str] = field(default_factory=list)
    identity_query_strings: list[str] = field(default_factory=list)
    identity_stage_variables: list[str] = field(default_factory=list)
    validation_expression: str | None = None
    ttl: int = 300


@dataclass
class ApiConfig:
    logical_id: str
    api_id: str
    stage: str
    default_authorizer: str | None = None
    authorizers: dict[str, AuthorizerConfig] = field(default_factory=dict)
    gateway_responses: dict[str, Any] = field(default_factory=dict)
    binary_media_types: list[str] = field(default_factory=list)
    stage_variables: dict[str, str] | None = None


# default status codes and bodies of API Gateway's gateway responses
_GATEWAY_DEFAULTS: dict[str, tuple[int, str, str]] = {
    "UNAUTHORIZED": (401, '{"message":"Unauthorized"}', "UnauthorizedException"),
    "ACCESS_DENIED": (
        403,
        '{"Message":"User is not authorized to access this resource with an explicit deny"}',
        "AccessDeniedException",
    ),
    "MISSING_AUTHENTICATION_TOKEN": (
        403,
        '{"message":"Missing Authentication Token"}',
        "MissingAuthenticationTokenException",
    ),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, '{"message": null}', "AuthorizerConfigurationException"),
    "AUTHORIZER_FAILURE": (500, '{"message": null}', "AuthorizerFailureException"),
    "INVALID_API_KEY": (403, '{"message":"Forbidden"}', "ForbiddenException"),
    "THROTTLED": (429, '{"message":"Too Many Requests"}', "TooManyRequestsException"),
    "REQUEST_TOO_LARGE": (413, '{"message":"Request Too Long"}', "RequestTooLongException"),
}

_DEFAULT_BINARY_TYPES = (
    "application/octet-stream",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "image/*",
    "audio/*",
    "video/*",
    "font/*",
    "multipart/form-data",
)

MAX_PAYLOAD = 10 * 1024 * 1024


def _media_type_matches(content_type: str, patterns: list[str] | tuple[str, ...]) -> bool:
    ctype = content_type.split(";", 1)[0].strip().lower()
    if not ctype:
        return False
    for pattern in patterns:
        pattern = pattern.replace("~1", "/").lower()  # SAM/OpenAPI escape for "/"
        if _wildcard(pattern).match(ctype):
            return True
    return False


# ------------------------------------------------------------------------------------------ gateway

Invoker = Callable[[str, Any], Any]


class ApiGateway:
    """Turns HTTP requests into Lambda proxy events (REST, payload 1.0) and handler results back."""

    def __init__(
        self,
        apis: dict[str, ApiConfig],
        router: Router,
        invoke: Invoker,
        *,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        host: str = "127.0.0.1",
        port: int = 3000,
    ) -> None:
        self.apis = apis
        self.router = router
        self.invoke = invoke
        self.region = region
        self.account_id = account_id
        self.host = host
        self.port = port
        self._auth_cache: dict[tuple[Any, ...], tuple[float, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()

    # ---------------------------------------------------------------- gateway responses
    def gateway_response(
        self, api: ApiConfig | None, response_type: str, request_id: str, message: str | None = None
    ) -> HttpResponse:
        status, body, error_type = _GATEWAY_DEFAULTS.get(response_type, (500, '{"message": null}', "Error"))
        configured = (api.gateway_responses if api else {}) or {}
        family = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        spec = configured.get(response_type) or configured.get(family)
        default_message = json.loads(body)
        text = message if message is not None else default_message.get("message", default_message.get("Message"))
        headers: list[tuple[str, str]] = []
        if spec:
            if spec.get("StatusCode"):
                status = int(spec["StatusCode"])
            templates = spec.get("ResponseTemplates") or {}
            template = templates.get("application/json")
            if template is None and templates:
                template = next(iter(templates.values()))
            if template is not None:
                body = template
            params = spec.get("ResponseParameters") or {}
            for name, value in (params.get("Headers") or {}).items():
                headers.append((name, str(value).strip("'")))
            for key, value in params.items():
                if key.startswith("gatewayresponse.header."):
                    headers.append((key.split(".", 2)[2], str(value).strip("'")))
        body = (
            body.replace("$context.error.messageString", json.dumps(text))
            .replace("$context.error.message", "" if text is None else str(text))
            .replace("$context.error.responseType", response_type)
            .replace("$context.requestId", request_id)
        )
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", error_type),
            *headers,
        ]
        return HttpResponse(status, headers, body.encode())

    # ---------------------------------------------------------------- main entry
    def handle(self, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        now = time.time()
        decoded_path = urllib.parse.unquote(request.path.split("?", 1)[0]) or "/"
        if len(decoded_path) > 1:
            decoded_path = decoded_path.rstrip("/") or "/"
        found = self.router.match(request.method, decoded_path)
        if found is None:
            api = next(iter(self.apis.values()), None)
            return self.gateway_response(api, "MISSING_AUTHENTICATION_TOKEN", request_id)
        route, path_params = found
        api = self.apis.get(route.api_id) or ApiConfig(route.api_id, "localapi", "local")
        if len(request.body) > MAX_PAYLOAD:
            return self.gateway_response(api, "REQUEST_TOO_LARGE", request_id)

        event = self._proxy_event(request, decoded_path, route, path_params, api, request_id, now)

        if route.authorizer:
            outcome = self._authorize(api, route, event, request, request_id)
            if isinstance(outcome, HttpResponse):
                return outcome
            event["requestContext"]["authorizer"] = outcome
        try:
            result = self.invoke(route.function_id, event)
        except FunctionError:
            return self._internal_error(request_id)
        return self._proxy_response(result, request_id)

    # ---------------------------------------------------------------- events
    def _proxy_event(
        self,
        request: HttpRequest,
        path: str,
        route: Route,
        path_params: dict[str, str],
        api: ApiConfig,
        request_id: str,
        now: float,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            existing = next((k for k in multi_headers if k.lower() == name.lower()), name)
            multi_headers.setdefault(existing, []).append(value)
            headers[existing] = value
        forwarded = {
            "X-Forwarded-For": request.source_ip,
            "X-Forwarded-Port": str(self.port),
            "X-Forwarded-Proto": "http",
        }
        for name, value in forwarded.items():
            if not any(k.lower() == name.lower() for k in headers):
                headers[name] = value
                multi_headers[name] = [value]

        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for key, value in urllib.parse.parse_qsl(request.query, keep_blank_values=True):
            multi_query.setdefault(key, []).append(value)
            query[key] = value

        body: str | None = None
        is_b64 = False
        if request.body:
            content_type = request.header("content-type") or ""
            binary_types = api.binary_media_types or list(_DEFAULT_BINARY_TYPES)
            if _media_type_matches(content_type, binary_types):
                body, is_b64 = base64.b64encode(request.body).decode(), True
            else:
                try:
                    body = request.body.decode("utf-8")
                except UnicodeDecodeError:
                    body, is_b64 = base64.b64encode(request.body).decode(), True

        stamp = datetime.fromtimestamp(now, UTC)
        request_context: dict[str, Any] = {
            "accountId": self.account_id,
            "apiId": api.api_id,
            "domainName": f"{self.host}:{self.port}",
            "domainPrefix": self.host.split(".")[0],
            "extendedRequestId": request_id,
            "httpMethod": request.method.upper(),
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": request.source_ip,
                "user": None,
                "userAgent": request.header("user-agent"),
                "userArn": None,
                "clientCert": None,
            },
            # the path as the client requested it: on execute-api that starts with the stage, here (no
            # stage in the local URL) it is the path itself, as on a custom domain without a base path
            "path": path,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": stamp.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": api.api_id[:6],
            "resourcePath": route.path,
            "stage": api.stage,
        }
        return {
            "resource": route.path,
            "path": path,
            "httpMethod": request.method.upper(),
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_params or None,
            "stageVariables": api.stage_variables or None,
            "requestContext": request_context,
            "body": body,
            "isBase64Encoded": is_b64,
        }

    def method_arn(self, api: ApiConfig, method: str, path: str) -> str:
        return f"arn:aws:execute-api:{self.region}:{self.account_id}:{api.api_id}/{api.stage}/{method.upper()}{path}"

    # ---------------------------------------------------------------- authorizers
    def _authorize(
        self, api: ApiConfig, route: Route, event: dict[str, Any], request: HttpRequest, request_id: str
    ) -> dict[str, Any] | HttpResponse:
        config = api.authorizers.get(route.authorizer or "")
        if config is None:
            return self.gateway_response(api, "AUTHORIZER_CONFIGURATION_ERROR", request_id)
        method_arn = self.method_arn(api, request.method, event["path"])
        headers = event["headers"] or {}
        query = event["queryStringParameters"] or {}
        stage_vars = event["stageVariables"] or {}

        def header(name: str) -> str | None:
            return next((v for k, v in headers.items() if k.lower() == name.lower()), None)

        identity: list[str] = []
        if config.payload_type == "TOKEN":
            token = header(config.identity_headers[0] if config.identity_headers else "Authorization")
            if not token:
                return self.gateway_response(api, "UNAUTHORIZED", request_id)
            if config.validation_expression and not re.fullmatch(config.validation_expression, token):
                return self.gateway_response(api, "UNAUTHORIZED", request_id)
            identity = [token]
            auth_event: dict[str, Any] = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
        else:
            for name in config.identity_headers:
                value = header(name)
                if not value:
                    return self.gateway_response(api, "UNAUTHORIZED", request_id)
                identity.append(value)
            for name in config.identity_query_strings:
                if not query.get(name):
                    return self.gateway_response(api, "UNAUTHORIZED", request_id)
                identity.append(query[name])
            for name in config.identity_stage_variables:
                if not stage_vars.get(name):
                    return self.gateway_response(api, "UNAUTHORIZED", request_id)
                identity.append(stage_vars[name])
            auth_event = {
                "type": "REQUEST",
                "methodArn": method_arn,
                "resource": event["resource"],
                "path": event["path"],
                "httpMethod": event["httpMethod"],
                "headers": event["headers"],
                "multiValueHeaders": event["multiValueHeaders"],
                "queryStringParameters": event["queryStringParameters"],
                "multiValueQueryStringParameters": event["multiValueQueryStringParameters"],
                "pathParameters": event["pathParameters"],
                "stageVariables": event["stageVariables"],
                "requestContext": event["requestContext"],
            }

        cache_key = (api.logical_id, config.name, *identity) if identity and config.ttl > 0 else None
        result = None
        if cache_key is not None:
            with self._cache_lock:
                cached = self._auth_cache.get(cache_key)
            if cached and cached[0] > time.monotonic():
                result = cached[1]
        started = time.monotonic()
        if result is None:
            try:
                result = self.invoke(config.function_id, auth_event)
            except FunctionError as exc:
                if exc.message == "Unauthorized":
                    return self.gateway_response(api, "UNAUTHORIZED", request_id)
                return self.gateway_response(api, "AUTHORIZER_CONFIGURATION_ERROR", request_id)
            if not isinstance(result, dict) or "principalId" not in result or "policyDocument" not in result:
                return self.gateway_response(api, "AUTHORIZER_CONFIGURATION_ERROR", request_id)
            if cache_key is not None:
                with self._cache_lock:
                    self._auth_cache[cache_key] = (time.monotonic() + config.ttl, result)
        try:
            allowed = evaluate_policy(result["policyDocument"], method_arn)
        except PolicyError:
            return self.gateway_response(api, "AUTHORIZER_CONFIGURATION_ERROR", request_id)
        if not allowed:
            return self.gateway_response(api, "ACCESS_DENIED", request_id)
        context = result.get("context") or {}
        if not isinstance(context, dict):
            return self.gateway_response(api, "AUTHORIZER_CONFIGURATION_ERROR", request_id)
        authorizer: dict[str, Any] = {}
        for key, value in context.items():
            if isinstance(value, (dict, list)):
                # API Gateway rejects objects and arrays in an authorizer context
                return self.gateway_response(api, "AUTHORIZER_CONFIGURATION_ERROR", request_id)
            if isinstance(value, bool):
                authorizer[key] = "true" if value else "false"
            elif value is None:
                authorizer[key] = None
            else:
                authorizer[key] = str(value)
        authorizer["principalId"] = str(result["principalId"])
        authorizer["integrationLatency"] = int((time.monotonic() - started) * 1000)
        if result.get("usageIdentifierKey"):
            authorizer["usageIdentifierKey"] = result["usageIdentifierKey"]
        return authorizer

    # ---------------------------------------------------------------- responses
    @staticmethod
    def _internal_error(request_id: str) -> HttpResponse:
        return HttpResponse(
            502,
            [
                ("Content-Type", "application/json"),
                ("x-amzn-RequestId", request_id),
                ("x-amzn-ErrorType", "InternalServerErrorException"),
            ],
            b'{"message": "Internal server error"}',
        )

    def _proxy_response(self, result: Any, request_id: str) -> HttpResponse:
        if not isinstance(result, dict):
            return self._internal_error(request_id)
        status = result.get("statusCode")
        if isinstance(status, str) and status.isdigit():
            status = int(status)
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            return self._internal_error(request_id)
        headers: list[tuple[str, str]] = []
        single = result.get("headers") or {}
        multi = result.get("multiValueHeaders") or {}
        if not isinstance(single, dict) or not isinstance(multi, dict):
            return self._internal_error(request_id)
        for name, values in multi.items():
            if not isinstance(values, list):
                return self._internal_error(request_id)
            headers.extend((name, _header_str(v)) for v in values)
        for name, value in single.items():
            if isinstance(value, (dict, list)):
                return self._internal_error(request_id)
            lowered = name.lower()
            if lowered == "set-cookie" and any(existing.lower() == lowered for existing, _ in headers):
                continue  # multiValueHeaders already carry the cookies
            if any(existing.lower() == lowered and v == _header_str(value) for existing, v in headers):
                continue
            headers.append((name, _header_str(value)))
        body = result.get("body")
        if body is None:
            payload = b""
        elif not isinstance(body, str):
            return self._internal_error(request_id)
        elif result.get("isBase64Encoded"):
            try:
                payload = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                return self._internal_error(request_id)
        else:
            payload = body.encode("utf-8")
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        headers.append(("x-amzn-RequestId", request_id))
        return HttpResponse(status, headers, payload)


def _header_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
