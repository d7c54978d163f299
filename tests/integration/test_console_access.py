"""Settings for admins: the people of the console's Cognito pool and the API keys.

Given users in each group, when an admin lists the people, adds one, disables one, creates an API key
and revokes it, then Cognito and the table change as the use cases say (the key works with the
authorizer's own check until revoked), the key's plaintext is shown once, and clerks and viewers get
the 403 page for every one of these pages and forms. Every form needs its CSRF token.
"""

from __future__ import annotations

import pytest

from tests.support import console as support
from tests.support.console import browser


def _form(page: str, **fields: str) -> dict[str, str]:
    return {"csrf": support.hidden(page, "csrf"), "idempotency_key": fields.pop("idem", "k1"), **fields}


def test_an_admin_sees_every_user_of_the_pool_with_their_groups_and_disables_one(console):
    idp, pool = console["idp"], console["pool_id"]
    support.add_user(idp, pool, "nogroup@acme.example", None)
    admin = browser(console, "admin@acme.example")
    status, page, _ = admin.get("/console/settings/access")
    assert status == 200
    for email in ("admin@acme.example", "clerk@acme.example", "viewer@acme.example", "nogroup@acme.example"):
        assert email in page, email
    assert 'aria-label="Disable admin@acme.example"' not in page, "no one disables themselves"

    status, _, headers = admin.request(
        "POST", "/console/settings/people-disable", _form(page, username="clerk@acme.example")
    )
    assert status == 303 and headers["Location"].endswith("/console/settings/access?done=people-disable")
    assert idp.admin_get_user(UserPoolId=pool, Username="clerk@acme.example")["Enabled"] is False
    assert browser(console).sign_in("clerk@acme.example") == 401, "a disabled person cannot sign in"
    _, page, _ = admin.get("/console/settings/access", done="people-disable")
    assert "Person disabled" in page and 'aria-label="Enable clerk@acme.example"' in page

    status, _, _ = admin.request(
        "POST", "/console/settings/people-enable", _form(page, idem="k2", username="clerk@acme.example")
    )
    assert status == 303 and idp.admin_get_user(UserPoolId=pool, Username="clerk@acme.example")["Enabled"]

    status, page, _ = admin.request(
        "POST", "/console/settings/people-disable", _form(page, idem="k3", username="admin@acme.example")
    )
    assert status == 422 and "yourself" in page
    status, page, _ = admin.request(
        "POST", "/console/settings/people-disable", _form(page, idem="k4", username="nobody@acme.example")
    )
    assert status == 404 and "Traceback" not in page


def test_an_admin_adds_a_person_to_a_group(console):
    idp, pool = console["idp"], console["pool_id"]
    admin = browser(console, "admin@acme.example")
    _, page, _ = admin.get("/console/settings/access")
    form = _form(page, email="Jo@Acme.example", group="viewer")
    assert admin.request("POST", "/console/settings/people", form)[0] == 303
    members = idp.list_users_in_group(UserPoolId=pool, GroupName="viewer")["Users"]
    emails = {a["Value"] for u in members for a in u["Attributes"] if a["Name"] == "email"}
    assert "jo@acme.example" in emails
    status, page, _ = admin.request("POST", "/console/settings/people", _form(page, idem="k2", email="jo", group="x"))
    assert status == 422 and "Nothing was changed" in page


def test_an_api_key_is_shown_once_works_until_revoked_and_a_replayed_form_does_not_show_it_again(console):
    from invoicing.root import get_services
    from invoicing.use_cases import api_keys

    repo = get_services().repo
    admin = browser(console, "admin@acme.example")
    _, page, _ = admin.get("/console/settings/access")
    form = _form(page, name="billing-run", scopes="invoices:read")
    status, shown, headers = admin.request("POST", "/console/settings/api-keys", form)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    key = support.hidden(shown.replace('id="new-key" class="secret"', 'name="new-key"'), "new-key")
    assert key.startswith(api_keys.KEY_PREFIX)
    principal = api_keys.authorize(repo, f"Bearer {key}")
    assert principal is not None and principal.scopes == ("invoices:read",)

    status, replay, _ = admin.request("POST", "/console/settings/api-keys", form)
    assert status == 200 and key not in replay and "was created and shown then" in replay
    assert [k.name for k in api_keys.list_api_keys(repo)] == ["billing-run"], "created once"
    _, page, _ = admin.get("/console/settings/access")
    assert key not in page and f"…{key[-4:]}" in page

    key_hash = api_keys.hash_key(key)
    status, _, _ = admin.request(
        "POST", "/console/settings/api-keys-revoke", _form(page, idem="r1", **{"key": key_hash})
    )
    assert status == 303 and api_keys.authorize(repo, f"Bearer {key}") is None
    _, page, _ = admin.get("/console/settings/access")
    assert "revoked" in page

    status, page, _ = admin.request(
        "POST", "/console/settings/api-keys-revoke", _form(page, idem="r2", **{"key": "nope"})
    )
    assert status == 422 and "Nothing was changed" in page
    status, page, _ = admin.request(
        "POST", "/console/settings/api-keys", _form(page, idem="c2", name="bad name!", scopes="invoices:read")
    )
    assert status == 422 and "letters, digits" in page


@pytest.mark.parametrize("who", ["clerk@acme.example", "viewer@acme.example"])
def test_clerks_and_viewers_get_the_403_page_for_people_and_api_keys(console, who):
    b = browser(console, who)
    status, page, _ = b.get("/console/settings/access")
    assert status == 403 and "Not allowed" in page
    _, page, _ = b.get("/console/settings")
    for section, fields in (
        ("people", {"email": "x@acme.example", "group": "admin"}),
        ("people-disable", {"username": "admin@acme.example"}),
        ("api-keys", {"name": "mine", "scopes": "invoices:write"}),
        ("api-keys-revoke", {"key": "0" * 64}),
    ):
        status, body, _ = b.request("POST", f"/console/settings/{section}", _form(page, **fields))
        assert status == 403 and "Not allowed" in body, section
    assert console["idp"].admin_get_user(UserPoolId=console["pool_id"], Username="admin@acme.example")["Enabled"]


def test_every_access_form_needs_its_csrf_token(console):
    admin = browser(console, "admin@acme.example")
    for section, fields in (
        ("people", {"email": "x@acme.example", "group": "admin"}),
        ("people-disable", {"username": "clerk@acme.example"}),
        ("api-keys", {"name": "mine", "scopes": "invoices:write"}),
        ("api-keys-revoke", {"key": "0" * 64}),
    ):
        status, body, _ = admin.request("POST", f"/console/settings/{section}", {"idempotency_key": "z", **fields})
        assert status == 403 and "Form refused" in body, section
    assert console["idp"].admin_get_user(UserPoolId=console["pool_id"], Username="clerk@acme.example")["Enabled"]
