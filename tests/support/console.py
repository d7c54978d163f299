"""Shared helpers for the finance console's tests: users in a user pool, moto's JWKS, sealed cookies."""

from __future__ import annotations

import gzip
import json
import re
from importlib import resources
from typing import Any

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
