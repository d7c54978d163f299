"""The admin API speaks JSON: a request body must be JSON, and say so or say nothing.

Powertools' validation reads the body by Content-Type, before any middleware runs: a form-encoded
body (what `curl -d` sends by default) was parsed as form fields and failed with a confusing
"name: Field required", `APPLICATION/JSON` (media types are case-insensitive) and any other type got
a 415 outside our error shape. So the REST event is looked at first: a JSON media type in any case or
with parameters (`Application/JSON; charset=utf-8`, `application/merge-patch+json`) is normalized to
`application/json`; a body without a Content-Type is read as JSON; anything else is answered with a
clear 415 `unsupported_media_type` in the `{"error": {...}}` shape.

A JSON body must also be UTF-8 (RFC 8259). API Gateway hands bytes that are not UTF-8 on base64
encoded, and Powertools decodes them with `.decode("utf-8")`: a UnicodeDecodeError, a 502. Such a
body is answered here with the 422 any other unreadable JSON gets.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

JSON = "application/json"


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def is_json_media_type(value: str) -> bool:
    media = _media_type(value)
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


def check_json_body(event: dict[str, Any]) -> dict[str, Any] | None:
    """Normalize a JSON Content-Type in place; a REST proxy response (415) for any other type."""
    if not event.get("body"):
        return None
    headers = event.get("headers") or {}
    multi = event.get("multiValueHeaders") or {}
    values = [str(v) for k, v in headers.items() if k.lower() == "content-type" and v is not None]
    values += [str(v) for k, vs in multi.items() if k.lower() == "content-type" for v in (vs or [])]
    if not values:
        return None
    if not all(is_json_media_type(v) for v in values):
        offered = next((_media_type(v) for v in values if not is_json_media_type(v)), "")
        message = f"the request body must be JSON (Content-Type: {JSON}), not {offered or 'empty'}"
        return _refusal(415, "unsupported_media_type", message, "Content-Type", "unsupported")
    for name in [k for k in headers if k.lower() == "content-type"]:
        headers[name] = JSON
    for name in [k for k in multi if k.lower() == "content-type"]:
        multi[name] = [JSON]
    return None


def _refusal(status: int, code: str, message: str, field: str, reason: str) -> dict[str, Any]:
    body = {"error": {"code": code, "message": message, "details": [{"field": field, "reason": reason}]}}
    return {
        "statusCode": status,
        "multiValueHeaders": {"Content-Type": [JSON], "Cache-Control": ["no-store"]},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def check_utf8_body(event: dict[str, Any]) -> dict[str, Any] | None:
    """A base64-encoded body is decoded in place when it is UTF-8 text; a 422 REST response when not."""
    if not event.get("isBase64Encoded") or not event.get("body"):
        return None
    try:
        text = base64.b64decode(event["body"], validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return _refusal(422, "validation_error", "the body is not valid JSON (not UTF-8 text)", "body", "not UTF-8")
    event["body"], event["isBase64Encoded"] = text, False
    return None
