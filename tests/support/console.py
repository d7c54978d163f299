"""Shared helpers for the finance console's tests: users in a user pool, moto's JWKS, sealed cookies."""

from __future__ import annotations

import gzip
import json
import re
from importlib import resources
from typing import Any
from urllib.parse import urlencode

GROUPS = ("viewer", "clerk", "admin")
PASSWORD = "Console-Test-Pw-1"


def moto_jwks() -> dict[str, Any]:
    """The public JWKS moto signs every pool's tokens with (what moto's server serves per pool)."""
    data = resources.files("moto.cognitoidp").joinpath("resources/jwks-public.json.gz").read_bytes()
    return dict(json.loads(gzip.decompress(data)))


def add_user(idp: Any, pool_id: str, email: str, group: str | None, password: str = PASSWORD) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=email,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=password, Permanent=True)
    if group:
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=group)


def id_token(idp: Any, client_id: str, email: str, password: str = PASSWORD) -> str:
    answer = idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": email, "PASSWORD": password}
    )
    return str(answer["AuthenticationResult"]["IdToken"])


def other_pool(idp: Any) -> tuple[str, str]:
    """(pool id, client id) of a second user pool, like another stack's, with a clerk in it."""
    pool_id = idp.create_user_pool(PoolName="another-stack-console", UsernameAttributes=["email"])["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="other", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.create_group(UserPoolId=pool_id, GroupName="clerk")
    return pool_id, client_id


def hidden(html: str, name: str) -> str:
    """The value of the first hidden input ``name`` of a page."""
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


class Browser:
    """A cookie jar and the console's handler: what a browser sends, as API Gateway's REST event."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.cookies: dict[str, str] = {}
        # the console's language and formats follow Accept-Language; a test may set another
        self.accept_language = "en-US,en;q=0.9"

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, Any] | list[tuple[str, str]] | None = None,
        *,
        query: dict[str, str] | None = None,
        csrf: bool = True,
    ) -> tuple[int, str, dict[str, Any]]:
        headers = {"Accept-Language": self.accept_language, "X-Forwarded-Proto": "https"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(form)
        from tests.integration.conftest import LambdaContext, rest_event

        event = rest_event(method, path, headers=headers, query=query, raw_body=body)
        event["requestContext"]["domainName"] = "abc123.execute-api.us-east-1.amazonaws.com"
        response = self.handler(event, LambdaContext("ConsoleFunction"))
        out_headers = dict(response.get("headers") or {})
        for key, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[key] = values if key.lower() == "set-cookie" else ", ".join(values)
        for cookie in out_headers.get("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response["statusCode"], response.get("body") or "", out_headers

    def get(self, path: str, **query: str) -> tuple[int, str, dict[str, Any]]:
        return self.request("GET", path, query=query or None)

    def sign_in(self, email: str, password: str = PASSWORD) -> int:
        _, page, _ = self.get("/console/login")
        status, _, headers = self.request(
            "POST",
            "/console/login",
            {
                "csrf": hidden(page, "csrf"),
                "step": "password",
                "email": email,
                "password": password,
                "next": "/console/invoices",
            },
        )
        return status


def browser(console: dict[str, Any], email: str | None = None) -> Browser:
    b = Browser(console["app"].handle_console_request)
    if email:
        assert b.sign_in(email) == 303
    return b
