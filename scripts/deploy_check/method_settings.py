"""API Gateway stage MethodSettings paths: neither cfn-lint nor cloudformation-validate checks them.

A method setting's ResourcePath is a `/` followed by the resource path with each of its `/` written
as `~1` (JSON-pointer style): `/pay/{token}` is `/~1pay~1{token}`. `/*` means every resource and
`/` the root resource.
API Gateway rejects anything else when it creates the stage, long after `sam deploy` started.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

STAGE_TYPES = ("AWS::ApiGateway::Stage", "AWS::Serverless::Api")


@dataclass(frozen=True)
class BadPath:
    resource: str
    method: str
    path: str
    expected: str


def encoded(path: str) -> str:
    """The form API Gateway expects for a resource path such as /pay/{token}."""
    if path_ok(path):
        return path
    return "/" + ("/" + path.lstrip("/")).replace("/", "~1")


def path_ok(path: Any) -> bool:
    if not isinstance(path, str):
        return True  # an intrinsic: nothing to check before deployment
    if path in ("/", "/*"):
        return True
    return path.startswith("/~1") and "/" not in path[1:]


def method_setting_paths(template: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") not in STAGE_TYPES:
            continue
        settings = (resource.get("Properties") or {}).get("MethodSettings") or []
        for setting in settings if isinstance(settings, list) else []:
            if isinstance(setting, dict) and "ResourcePath" in setting:
                yield logical_id, str(setting.get("HttpMethod", "*")), setting["ResourcePath"]


def bad_paths(template: Mapping[str, Any]) -> list[BadPath]:
    return [
        BadPath(resource, method, path, encoded(path))
        for resource, method, path in method_setting_paths(template)
        if not path_ok(path)
    ]
