"""Access through the whole local stack (API Gateway emulation + the real authorizer + its local AWS), over HTTP.

- Every admin route of template.yaml answers 401 to a revoked key and 403 to a key without the
  route's scope (GET needs invoices:read, everything else invoices:write), in our error shape.
- The public routes expose nothing without a valid token: a made-up, truncated or revoked pay token
  gets the one neutral page (no number, no name, no amount), and so does the webhook without a valid
  signature.
- No API key and no payment token appears in any log line of the stack (its output log), except the
  dev banner that prints the stack's own local key on purpose (`make dev` shows it to the user).

Keys are made with invoicing.use_cases.api_keys.create_api_key against the stack's own table
(AWS_ENDPOINT_URL_DYNAMODB = local_stack.dynamodb_url, TABLE_NAME from /_local/resources).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.routes import template_routes

pytestmark = pytest.mark.e2e

ADMIN_ROUTES = [r for r in template_routes() if r.authorized]
PAY_ROUTES = [r for r in template_routes() if not r.authorized and r.function == "PayFunction"]
# the finance console authenticates itself (a Cognito session cookie), so API Gateway lets them through
CONSOLE_ROUTES = [r for r in template_routes() if r.function == "ConsoleFunction"]


@pytest.fixture(scope="module")
def keys(local_stack) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """Keys in the stack's own table: full, read-only, write-only, and a revoked full key."""
    from invoicing import root
    from invoicing.root import get_services
    from invoicing.use_cases.api_keys import create_api_key, hash_key, revoke_api_key

    resources = requests.get(f"{local_stack.api_url}/_local/resources", timeout=10).json()["resources"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", local_stack.moto_url)
        patch.setenv("AWS_ENDPOINT_URL_DYNAMODB", local_stack.dynamodb_url)
        patch.setenv("TABLE_NAME", resources["InvoicesTable"]["name"])
        root.reset()
        try:
            made = {
                "full": create_api_key("e2e-full"),
                "read": create_api_key("e2e-reader", ["invoices:read"]),
                "write": create_api_key("e2e-writer", ["invoices:write"]),
                "revoked": create_api_key("e2e-revoked"),
            }
            revoke_api_key(hash_key(made["revoked"]), get_services().repo)
        finally:
            root.reset()
    yield made
    # rebind the models to whatever the next test's settings say
    root.reset()


def sample_path(route: Any) -> str:
    return re.sub(
        r"\{(\w+)\}", lambda m: {"currency": "EUR"}.get(m.group(1), f"{m.group(1).split('_')[0]}_x1"), route.path
    )


def call(local_stack, route, key: str | None) -> requests.Response:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = None if route.method in ("GET", "DELETE") else {}
    return requests.request(
        route.method, local_stack.api_url + sample_path(route), json=body, headers=headers, timeout=30
    )


def test_every_admin_route_refuses_a_revoked_key_and_a_missing_scope(local_stack, keys):
    answers: dict[str, tuple[int, int]] = {}
    for route in ADMIN_ROUTES:
        revoked = call(local_stack, route, keys["revoked"])
        assert revoked.status_code == 401, (route.method, route.path, revoked.text)
        assert revoked.json()["error"]["code"] == "unauthorized"
        other_scope = keys["write"] if route.method == "GET" else keys["read"]
        denied = call(local_stack, route, other_scope)
        assert denied.status_code == 403, (route.method, route.path, denied.text)
        assert denied.json()["error"]["code"] == "forbidden"
        answers[f"{route.method} {route.path}"] = (revoked.status_code, denied.status_code)
    # the same keys do pass the authorizer where their scope fits (control)
    assert (
        requests.get(
            f"{local_stack.api_url}/invoices?status=open",
            headers={"Authorization": f"Bearer {keys['read']}"},
            timeout=30,
        ).status_code
        == 200
    )
    assert len(answers) == len(ADMIN_ROUTES) >= 25
    print(f"\naccess e2e: {len(answers)} admin routes x (revoked key -> 401, missing scope -> 403): all as required")


@pytest.fixture(scope="module")
def paid_link(local_stack, keys) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """An open invoice with a payment link, made through the stack's API."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {keys['full']}"
    api = local_stack.api_url
    customer = session.post(f"{api}/customers", json={"name": "Secretive GmbH", "email": "ap@secret.test"}, timeout=30)
    assert customer.status_code == 201, customer.text
    line = {"description": "Confidential work", "quantity": "1", "unit_amount_cents": 123456}
    draft = session.post(f"{api}/invoices", json={"customer_id": customer.json()["id"], "lines": [line]}, timeout=30)
    assert draft.status_code == 201, draft.text
    invoice = session.post(f"{api}/invoices/{draft.json()['id']}/finalize", timeout=30)
    assert invoice.status_code == 200, invoice.text
    body = invoice.json()
    assert body["payment_url"], body
    return {"invoice": body, "token": body["payment_url"].rsplit("/", 1)[1], "session": session}


def _exposes_nothing(text: str, invoice: dict[str, Any]) -> bool:
    secrets_of_invoice = (invoice["invoice_number"], "Secretive", "Confidential", "1,234.56", "1234.56", invoice["id"])
    return not any(s in text for s in secrets_of_invoice)


def test_public_routes_expose_nothing_without_a_valid_token_or_signature(local_stack, paid_link):
    api, invoice, token = local_stack.api_url, paid_link["invoice"], paid_link["token"]
    assert PAY_ROUTES, "PayFunction has no routes in template.yaml"
    # control: the real token shows the invoice
    page = requests.get(f"{api}/pay/{token}", timeout=30)
    assert page.status_code == 200 and invoice["invoice_number"] in page.text
    # made-up, truncated and altered tokens get the neutral page, on GET and POST
    bogus = [
        secrets.token_urlsafe(len(token) * 3 // 4),
        token[:-1],
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        "x",
    ]
    for attempt in bogus:
        for method in ("GET", "POST"):
            response = requests.request(method, f"{api}/pay/{attempt}", data={"amount_cents": "123456"}, timeout=30)
            assert response.status_code in (404, 429), (method, response.status_code)
            assert _exposes_nothing(response.text, invoice), (method, attempt)
    # the webhook without a (valid) signature answers nothing about any invoice
    for headers in ({}, {"Stripe-Signature": "t=1,v1=deadbeef"}):
        hook = requests.post(
            f"{api}/webhooks/stripe",
            data='{"type": "checkout.session.completed", "data": {"object": {"id": "cs_1"}}}',
            headers={"Content-Type": "application/json", **headers},
            timeout=30,
        )
        assert hook.status_code in (400, 401, 404), hook.status_code
        assert _exposes_nothing(hook.text, invoice)
    # a revoked link is as dead as a made-up one
    revoked = paid_link["session"].delete(f"{api}/invoices/{invoice['id']}/payment-link", timeout=30)
    assert revoked.status_code == 204, revoked.text
    after = requests.get(f"{api}/pay/{token}", timeout=30)
    assert after.status_code == 404 and _exposes_nothing(after.text, invoice)


def test_every_console_route_wants_a_session(local_stack, keys):
    """Without a session cookie (an API key does not count): a GET is sent to the login page, a POST
    answers 401 (403 for the login form itself, which lacks its CSRF token), and nothing is shown."""
    assert len(CONSOLE_ROUTES) >= 10
    walked = 0
    for route in CONSOLE_ROUTES:
        url = local_stack.api_url + sample_path(route)
        for headers in ({}, {"Authorization": f"Bearer {keys['full']}"}):
            answer = requests.request(route.method, url, headers=headers, data={}, allow_redirects=False, timeout=30)
            if route.path == "/console/static/{name}":
                assert answer.status_code == 404, answer.status_code  # no such asset; real ones are public
            elif route.path == "/console/login":
                assert answer.status_code == (200 if route.method == "GET" else 403), answer.status_code
            elif route.method == "GET":
                assert answer.status_code == 303, (route.path, answer.status_code)
                assert answer.headers["Location"].startswith("/console/login?next="), answer.headers["Location"]
            else:
                assert answer.status_code == 401, (route.path, answer.status_code)
            walked += 1
    print(f"\nconsole access e2e: {walked} requests to {len(CONSOLE_ROUTES)} console routes without a session")


def test_no_key_or_payment_token_in_any_log_line(local_stack, keys, paid_link, capsys):
    # let the stack's output catch up with the requests above
    requests.get(f"{local_stack.api_url}/_local/health", timeout=10)
    log = local_stack.log()
    assert log, "the stack's output log is empty"
    secrets_to_hide = {**keys, "payment token": paid_link["token"]}
    for name, secret in secrets_to_hide.items():
        assert secret not in log, f"the {name} appears in the stack's log"
        assert secret not in capsys.readouterr().out
    # the stack's own dev key is printed by its banner, on purpose, and nowhere else
    if local_stack.api_key:
        lines = [line for line in log.splitlines() if local_stack.api_key in line]
        assert all(line.lstrip().startswith(("API key", "curl ")) for line in lines), lines
    print(f"\nlogs e2e: {len(log.splitlines())} log lines searched for {len(secrets_to_hide)} secrets: 0 found")
