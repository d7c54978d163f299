"""The finance console in process: its real handler, moto's Cognito, DynamoDB and idempotency table.

Given users of the template's user pool in each group, when they sign in through the login form and
use the pages, then rights, CSRF, sessions, idempotent forms and error pages behave as issue #16 says.
The JWKS is moto's own public key set (what moto's server serves per pool); the HTTP fetch of it is
exercised by the browser tests against `make dev`'s stack.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support import console as support
from tests.support.builders import draft_of, open_invoice_of
from tests.support.console import browser
from tests.support.routes import template_routes

CONSOLE_ROUTES = [r for r in template_routes() if r.function == "ConsoleFunction"]


def test_the_template_routes_the_console_and_every_route_needs_a_session(console):
    assert len(CONSOLE_ROUTES) >= 10
    b = browser(console)
    for route in CONSOLE_ROUTES:
        path = route.sample_path()
        if route.path == "/console/login":
            continue  # the way in
        if route.path == "/console/static/{name}":
            assert b.request("GET", "/console/static/nothing.0.css")[0] == 404
            continue
        status, body, headers = b.request(route.method, path, {} if route.method == "POST" else None)
        if route.method == "GET":
            assert status == 303, (route.path, status, body[:200])
            assert headers["Location"].startswith("/test/console/login?next="), headers["Location"]
        else:
            assert status == 401, (route.path, status, body[:200])
            assert "sign in" in body.lower()


def test_sign_in_lands_on_the_invoices_and_the_cookie_is_strict(console):
    b = browser(console)
    _, page, headers = b.get("/console/login")
    login_cookie = next(c for c in headers["Set-Cookie"] if c.startswith("console_login="))
    assert "HttpOnly" in login_cookie and "SameSite=Strict" in login_cookie and "Secure" in login_cookie
    status, _, headers = b.request(
        "POST",
        "/console/login",
        {
            "csrf": support.hidden(page, "csrf"),
            "step": "password",
            "email": "clerk@acme.example",
            "password": support.PASSWORD,
            "next": "/console/reports",
        },
    )
    assert status == 303 and headers["Location"] == "/test/console/reports"
    session_cookie = next(c for c in headers["Set-Cookie"] if c.startswith("console_session="))
    assert all(flag in session_cookie for flag in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/"))
    status, page, headers = b.get("/console/invoices")
    assert status == 200 and "clerk@acme.example" in page
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["Cache-Control"] == "no-store"


def test_a_wrong_password_is_a_401_in_plain_words_and_no_session(console):
    b = browser(console)
    assert b.sign_in("clerk@acme.example", "not-the-password") == 401
    assert "console_session" not in b.cookies
    assert b.get("/console/invoices")[0] == 303


def test_the_login_form_without_its_csrf_token_is_refused(console):
    b = browser(console)
    b.get("/console/login")
    status, body, _ = b.request(
        "POST", "/console/login", {"step": "password", "email": "clerk@acme.example", "password": support.PASSWORD}
    )
    assert status == 403 and "console_session" not in b.cookies


def test_next_never_leaves_the_console(console):
    b = browser(console)
    _, page, _ = b.get("/console/login")
    status, _, headers = b.request(
        "POST",
        "/console/login",
        {
            "csrf": support.hidden(page, "csrf"),
            "step": "password",
            "email": "clerk@acme.example",
            "password": support.PASSWORD,
            "next": "//evil.example/console/",
        },
    )
    assert status == 303 and headers["Location"] == "/test/console/invoices"


def test_a_clerk_finalizes_pays_and_credits_and_the_audit_trail_names_the_person(console):
    from invoicing.root import get_services
    from invoicing.use_cases import invoices

    svc = get_services()
    customer = _customer(svc)
    draft = draft_of(svc, customer.id, 12000)
    b = browser(console, "clerk@acme.example")
    status, page, _ = b.get(f"/console/invoices/{draft.id}")
    assert status == 200 and 'action="/test/console/invoices/' + draft.id + '/finalize"' in page
    status, _, headers = b.request(
        "POST",
        f"/console/invoices/{draft.id}/finalize",
        {"csrf": support.hidden(page, "csrf"), "idempotency_key": "k1"},
    )
    assert status == 303, _
    _, page, _ = b.get(f"/console/invoices/{draft.id}")
    form = {
        "csrf": support.hidden(page, "csrf"),
        "idempotency_key": "pay1",
        "amount": "50.00",
        "method": "bank_transfer",
        "reference": "wire 1",
    }
    assert b.request("POST", f"/console/invoices/{draft.id}/payments", form)[0] == 303
    assert b.request("POST", f"/console/invoices/{draft.id}/payments", form)[0] == 303  # a double click
    invoice = invoices.get_invoice(svc, draft.id)
    assert invoice.amount_paid_cents == 5000, "the second POST of the same form ran nothing"
    actors = {e.type: e.actor for e in invoices.list_events(svc, draft.id)}
    assert actors["invoice.finalized"] == "console:clerk@acme.example"
    assert actors["invoice.payment_recorded"] == "console:clerk@acme.example"
    _, page, _ = b.get(f"/console/invoices/{draft.id}")
    assert "$120.00" in page, "amounts in the person's locale (en-US)"
    b.accept_language = "de-DE,de;q=0.9"
    _, page, _ = b.get(f"/console/invoices/{draft.id}")
    assert "120,00\xa0$" in page, "amounts in the person's locale (de-DE)"
    assert '<html lang="de-DE"' in page and ">Rechnungen</a>" in page and ">Abmelden</button>" in page


def test_bad_input_is_a_4xx_next_to_the_field_and_nothing_is_written(console):
    from invoicing.root import get_services
    from invoicing.use_cases import payments

    svc = get_services()
    invoice = open_invoice_of(svc, _customer(svc).id, 1000)
    b = browser(console, "clerk@acme.example")
    _, page, _ = b.get(f"/console/invoices/{invoice.id}")
    csrf = support.hidden(page, "csrf")
    for amount, status_wanted in (("abc", 422), ("0.001", 422), ("99999", 409), ("", 422)):
        status, body, _ = b.request(
            "POST",
            f"/console/invoices/{invoice.id}/payments",
            {"csrf": csrf, "idempotency_key": f"k{amount}x", "amount": amount, "method": "cash"},
        )
        assert status == status_wanted, (amount, status, body[:300])
        assert "Nothing was changed" in body and "Traceback" not in body
    status, body, _ = b.request(
        "POST",
        f"/console/invoices/{invoice.id}/payments",
        {"csrf": csrf, "idempotency_key": "kx", "amount": "1", "method": "bitcoin"},
    )
    assert status == 422 and 'id="err-payments-method"' in body
    assert payments.list_payments(svc, invoice.id) == []


def test_a_viewer_sees_no_actions_and_a_hand_made_post_gets_the_403_page(console):
    from invoicing.root import get_services
    from invoicing.use_cases import invoices

    svc = get_services()
    draft = draft_of(svc, _customer(svc).id, 1000)
    b = browser(console, "viewer@acme.example")
    status, page, _ = b.get(f"/console/invoices/{draft.id}")
    assert status == 200 and "/finalize" not in page and "Actions" not in page
    status, body, _ = b.request(
        "POST", f"/console/invoices/{draft.id}/finalize", {"csrf": support.hidden(page, "csrf"), "idempotency_key": "k"}
    )
    assert status == 403 and "Not allowed" in body
    assert invoices.get_invoice(svc, draft.id).is_draft
    assert b.get("/console/invoices/new")[0] == 403


def test_a_form_without_its_csrf_token_gets_403_and_nothing_changes(console):
    from invoicing.root import get_services
    from invoicing.use_cases import invoices

    svc = get_services()
    draft = draft_of(svc, _customer(svc).id, 1000)
    b = browser(console, "admin@acme.example")
    for form in ({"idempotency_key": "k"}, {"idempotency_key": "k", "csrf": "forged"}):
        status, body, _ = b.request("POST", f"/console/invoices/{draft.id}/finalize", form)
        assert status == 403 and "Form refused" in body
    assert invoices.get_invoice(svc, draft.id).is_draft


def test_a_session_of_another_user_pool_is_refused_even_when_sealed_with_our_key(console):
    auth = console["auth"]
    idp = console["idp"]
    pool_id, client_id = support.other_pool(idp)
    support.add_user(idp, pool_id, "mallory@other.example", "clerk")
    foreign = support.id_token(idp, client_id, "mallory@other.example")
    config = auth.get_config()
    now = int(time.time())
    cookie = auth.seal(auth.session_key(config), {"t": foreign, "s": now, "a": now, "n": "x"})
    b = browser(console)
    b.cookies["console_session"] = cookie
    status, _, headers = b.get("/console/invoices")
    assert status == 303 and "/console/login" in headers["Location"]
    with pytest.raises(auth.SessionRefused, match="another user pool"):
        auth.verify_id_token(config, foreign)
    # and our own pool's token passes the same check (control)
    own = support.id_token(idp, console["client_id"], "viewer@acme.example")
    assert auth.verify_id_token(config, own)["email"] == "viewer@acme.example"


def test_idle_absolute_forged_and_expired_sessions_are_refused(console):
    auth = console["auth"]
    config = auth.get_config()
    key = auth.session_key(config)
    token = support.id_token(console["idp"], console["client_id"], "clerk@acme.example")
    now = time.time()
    session = auth.new_session(config, token, now=now)
    assert auth.open_session(config, key, auth.seal(key, session), now=now + 60).email == "clerk@acme.example"
    with pytest.raises(auth.SessionRefused, match="idle"):
        auth.open_session(config, key, auth.seal(key, session), now=now + config.idle_minutes * 60 + 1)
    busy = {**session, "a": int(now + config.session_hours * 3600)}
    with pytest.raises(auth.SessionRefused, match="absolute"):
        auth.open_session(config, key, auth.seal(key, busy), now=now + config.session_hours * 3600 + 1)
    with pytest.raises(auth.SessionRefused, match="seal"):
        auth.open_session(config, key, auth.seal(b"another key", session), now=now)
    with pytest.raises(auth.SessionRefused, match="expired"):
        auth.verify_id_token(config, token, now=now + 2 * 3600)
    header, payload, signature = token.split(".")
    with pytest.raises(auth.SessionRefused):
        auth.verify_id_token(config, f"{header}.{payload[:-4]}AAAA.{signature}")
    unsigned = auth._b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    with pytest.raises(auth.SessionRefused, match="RS256"):
        auth.verify_id_token(config, f"{unsigned}.{payload}.")


def test_logout_ends_the_session(console):
    b = browser(console, "viewer@acme.example")
    _, page, _ = b.get("/console/invoices")
    status, _, headers = b.request("POST", "/console/logout", {"csrf": support.hidden(page, "csrf")})
    assert status == 303 and "signed_out=1" in headers["Location"]
    assert "console_session" not in b.cookies
    assert b.get("/console/invoices")[0] == 303


def test_the_csv_export_keeps_its_filters_and_neutralises_formulas(console):
    from invoicing.root import get_services

    svc = get_services()
    customer = _customer(svc, name="=HYPERLINK(1)")
    open_invoice_of(svc, customer.id, 2500)
    draft_of(svc, customer.id, 700)
    b = browser(console, "viewer@acme.example")
    status, body, headers = b.get("/console/invoices.csv", status="open")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    rows = body.strip().splitlines()
    assert len(rows) == 2 and rows[1].split(",")[2] == "open" and "'=HYPERLINK(1)" in rows[1]


def test_static_assets_are_content_hashed_and_cached_for_a_year(console):
    import views

    b = browser(console)
    for name, hashed in views.asset_names().items():
        status, body, headers = b.get(f"/console/static/{hashed}")
        assert status == 200 and "immutable" in headers["Cache-Control"], name
        assert body == (views.STATIC / name).read_text(encoding="utf-8"), "served as text, not base64"
    assert "htmx.min.js" in views.asset_names(), "make console-assets fetches htmx from npm"


def _customer(svc: Any, name: str = "Acme GmbH") -> Any:
    from invoicing.use_cases import customers

    return customers.create_customer(svc, name=name, email="ap@acme.test", currency="USD")


def test_an_admin_sets_tax_and_exchange_rates_and_adds_a_person_and_a_clerk_may_not(console):
    from invoicing.root import get_services
    from invoicing.use_cases import rates

    admin = browser(console, "admin@acme.example")
    _, page, _ = admin.get("/console/settings")
    csrf = support.hidden(page, "csrf")
    form = {"csrf": csrf, "idempotency_key": "t1", "display_name": "VAT", "percentage": "19", "country": "DE"}
    assert admin.request("POST", "/console/settings/tax-rates", form)[0] == 303
    status, body, _ = admin.request(
        "POST", "/console/settings/tax-rates", {**form, "idempotency_key": "t2", "percentage": "abc"}
    )
    assert status == 422 and "Nothing was changed" in body
    assert [r.display_name for r in rates.list_tax_rates(get_services())] == ["VAT"]
    fx = {"csrf": csrf, "idempotency_key": "x1", "currency": "EUR", "rate_to_usd": "1.08", "source": "ECB"}
    assert admin.request("POST", "/console/settings/exchange-rates", fx)[0] == 303
    assert str(rates.get_exchange_rate(get_services(), "EUR").rate_to_usd) == "1.08"
    person = {"csrf": csrf, "idempotency_key": "p1", "email": "new.clerk@acme.example", "group": "clerk"}
    assert admin.request("POST", "/console/settings/people", person)[0] == 303
    _, page, _ = admin.get("/console/settings")
    assert "1.08" in page and "/console/settings/access" in page
    _, page, _ = admin.get("/console/settings/access")
    assert "new.clerk@acme.example" in page

    clerk = browser(console, "clerk@acme.example")
    status, page, _ = clerk.get("/console/settings")
    assert status == 200 and "/console/settings/access" not in page and "new.clerk@acme.example" not in page
    assert clerk.get("/console/settings/access")[0] == 403
    form = {**form, "csrf": support.hidden(page, "csrf"), "idempotency_key": "t3"}
    assert clerk.request("POST", "/console/settings/tax-rates", form)[0] == 403


def test_a_clerk_edits_a_customer_and_a_bad_locale_is_a_422_next_to_its_field(console):
    from invoicing.root import get_services
    from invoicing.use_cases import customers

    svc = get_services()
    customer = _customer(svc)
    b = browser(console, "clerk@acme.example")
    _, page, _ = b.get(f"/console/customers/{customer.id}")
    csrf = support.hidden(page, "csrf")
    form = {"csrf": csrf, "idempotency_key": "c1", "name": "Acme AG", "email": "ap@acme.test", "locale": "de_DE"}
    status, _, headers = b.request("POST", f"/console/customers/{customer.id}", form)
    assert status == 303 and "done=saved" in headers["Location"]
    status, body, _ = b.request(
        "POST", f"/console/customers/{customer.id}", {**form, "idempotency_key": "c2", "locale": "xx_nowhere"}
    )
    assert status == 422 and 'id="c-locale"' in body and 'aria-invalid="true"' in body
    assert customers.get_customer(svc, customer.id).name == "Acme AG"
    assert customers.get_customer(svc, customer.id).locale == "de_DE"


def test_a_credit_note_by_lines_credits_the_quantities_asked(console):
    from invoicing.root import get_services
    from invoicing.use_cases import credit_notes, invoices

    svc = get_services()
    invoice = open_invoice_of(svc, _customer(svc).id, 4000)
    line = invoices.get_invoice(svc, invoice.id).lines[0]
    b = browser(console, "clerk@acme.example")
    _, page, _ = b.get(f"/console/invoices/{invoice.id}")
    form = {
        "csrf": support.hidden(page, "csrf"),
        "idempotency_key": "cn1",
        "reason": "order_change",
        "credit_method": "customer_balance",
        f"credit_qty_{line.id}": "0.5",
    }
    status, body, headers = b.request("POST", f"/console/invoices/{invoice.id}/credit-notes", form)
    assert status == 303, body[:300]
    (note,) = credit_notes.list_credit_notes(svc, invoice.id)
    assert note.total_cents == 2000 and note.lines[0].quantity == 0.5
    status, body, _ = b.request(
        "POST",
        f"/console/invoices/{invoice.id}/credit-notes",
        {**form, "idempotency_key": "cn2", f"credit_qty_{line.id}": "-1"},
    )
    assert status == 422 and "Nothing was changed" in body
