"""The finance console in a real browser: Playwright driving Debian's Chromium against the local stack.

The flow of issue #16, as a clerk: sign in; a draft with two lines (live totals from the server);
finalize; download the PDF; a partial payment; a credit note; void and reissue; every step in the
timeline with the person as actor; the CSV export's rows. A viewer finds a customer by searching, and
sees no admin settings (their page is a 403). And access: a viewer sees no action and
a hand-made POST gets the 403 page; without a session every page leads to the login; a form without
its CSRF token gets 403; a session cookie made from another user pool's token is refused.

One browser for the module, a fresh context (cookie jar) per person. Users and the customer have
names unique to this run, so the tests share the session's stack with the other e2e tests.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from tests.integration.conftest import load_function
from tests.support import console as support

pytestmark = [pytest.mark.e2e, pytest.mark.chromium]

PDF_WAIT_SECONDS = 90


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed (.ci/run installs it)", pytrace=False)
        pytest.skip("apt-get install chromium to run the console's browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def site(local_stack) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The stack's user pool with a clerk and a viewer, and a customer made through the API."""
    resources = requests.get(f"{local_stack.api_url}/_local/resources", timeout=10).json()["resources"]
    pool_id = resources["ConsoleUserPool"]["id"]
    client_id = resources["ConsoleUserPoolClient"]["id"]
    idp = local_stack.client("cognito-idp")
    run = uuid.uuid4().hex[:8]
    people = {group: f"{group}-{run}@acme.example" for group in ("clerk", "viewer")}
    for group, email in people.items():
        support.add_user(idp, pool_id, email, group)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {local_stack.api_key}"
    customer = api.post(
        f"{local_stack.api_url}/customers",
        json={"name": f"Browser Test {run} GmbH", "email": "ap@browser.test", "currency": "USD"},
        timeout=30,
    )
    assert customer.status_code == 201, customer.text
    return {
        "url": f"{local_stack.api_url}/console",
        "run": run,
        "people": people,
        "customer_id": customer.json()["id"],
        "idp": idp,
        "pool_id": pool_id,
        "client_id": client_id,
        "secret_arn": resources["ConsoleSessionSecret"]["arn"],
        "secrets": local_stack.client("secretsmanager"),
    }


def signed_in(browser: Any, site: dict[str, Any], who: str) -> Any:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", _accept)  # each action's confirmation
    page.goto(f"{site['url']}/invoices")
    assert "/console/login" in page.url
    page.get_by_label("E-mail").fill(site["people"][who])
    page.get_by_label("Password").fill(support.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/invoices"))
    return page


def _accept(dialog: Any) -> None:
    """Accept an action's confirmation. When the browser has closed it already (CI saw Chromium report
    "No dialog is showing" once, under load), the action did not happen, and `act` clicks again."""
    from playwright.sync_api import Error as PlaywrightError

    with contextlib.suppress(PlaywrightError):
        dialog.accept()


def act(page: Any, button: str, done: str) -> None:
    """Click an action's button, confirm it, and wait for the page's notice that it was done.

    The click counts once its POST left the browser. If no POST left within 10 s (the confirmation
    was closed before it could be accepted), the form is still there and is clicked once more, as a
    person would; its idempotency key makes a repeat safe. The server then has 60 s (2 loaded cores)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in (1, 2):
        try:
            with page.expect_request(lambda r: r.method == "POST", timeout=10_000):
                page.get_by_role("button", name=button).click()
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise AssertionError(f"clicking {button!r} twice sent no request") from None
    page.locator(".notice.ok", has_text=done).wait_for(timeout=60_000)


def notice(page: Any) -> str:
    return str(page.locator(".notice.ok").inner_text())


def test_a_clerk_takes_an_invoice_from_draft_to_paid_credited_and_voided(browser, site):
    page = signed_in(browser, site, "clerk")
    # a draft with two lines; the subtotal is the server's, as the person types
    page.get_by_role("link", name="New draft").click()
    page.get_by_label("Customer ID").fill(site["customer_id"])
    page.get_by_label("Currency").fill("USD")
    for n, (description, quantity, unit) in enumerate((("Consulting", "2", "500.00"), ("Travel", "1", "120.50"))):
        page.get_by_label(f"Line {n + 1} description").fill(description)
        page.get_by_label(f"Line {n + 1} quantity").fill(quantity)
        page.get_by_label(f"Line {n + 1} unit price").fill(unit)
    page.locator("#draft-subtotal").filter(has_text="$1,120.50").wait_for()
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(r"done=draft"))
    invoice_url = page.url.split("?")[0]

    # finalize
    act(page, "Finalize", "Finalized")
    number = page.locator("h1").inner_text().split()[0]
    assert number.startswith("INV-"), number

    # the PDF, once the renderer has made it
    deadline = time.monotonic() + PDF_WAIT_SECONDS
    while page.get_by_role("link", name="Download PDF").count() == 0:
        assert time.monotonic() < deadline, "the PDF was not rendered in time"
        time.sleep(1)
        page.goto(invoice_url)
    pdf = page.request.get(urljoin(page.url, page.get_by_role("link", name="Download PDF").get_attribute("href")))
    assert pdf.ok and pdf.body().startswith(b"%PDF"), pdf.status

    # a partial payment
    page.get_by_text("Record a payment").click()
    page.locator("#pay-amount").fill("500.00")
    page.get_by_label("Reference").fill("wire 4711")
    act(page, "Record payment", "Payment recorded")
    assert "$620.50" in page.locator("table.totals").inner_text()

    # a credit note of 20.00 to the customer's balance
    page.get_by_text("Issue a credit note").click()
    page.locator("#cn-amount").fill("20.00")
    page.get_by_label("Paid part goes to").select_option("customer_balance")
    act(page, "Issue credit note", "Credit note issued")
    assert "CN-" in page.locator("body").inner_text()

    # void and reissue: the new draft opens
    page.get_by_label("Reissue as a new draft").check()
    act(page, "Void", "this draft is its reissue")
    assert page.locator("h1").inner_text().startswith("Draft invoice")

    # the timeline of the voided invoice says what happened and who did it
    page.goto(invoice_url)
    timeline = page.locator("ol.timeline").inner_text()
    for step in (
        "invoice.created",
        "invoice.finalized",
        "invoice.payment_recorded",
        "invoice.credit_note_issued",
        "invoice.voided",
    ):
        assert step in timeline, (step, timeline)
    assert f"console:{site['people']['clerk']}" in timeline

    # the CSV export of this customer's invoices: the voided one and its reissue
    page.goto(f"{site['url']}/invoices?customer_id={site['customer_id']}")
    export = page.request.get(urljoin(page.url, page.get_by_role("link", name="Export CSV").get_attribute("href")))
    assert export.ok and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text())))
    assert sorted(r["status"] for r in rows) == ["draft", "void"], rows
    voided = next(r for r in rows if r["status"] == "void")
    assert voided["number"] == number and voided["total"] == "1120.50" and voided["amount_due"] == "600.50"
    page.context.close()


def _a_draft(site: dict[str, Any], local_stack: Any) -> str:  # type: ignore[no-untyped-def]
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {local_stack.api_key}"
    line = {"description": "Seat", "quantity": "1", "unit_amount_cents": 1000}
    draft = api.post(
        f"{local_stack.api_url}/invoices", json={"customer_id": site["customer_id"], "lines": [line]}, timeout=30
    )
    assert draft.status_code == 201, draft.text
    return str(draft.json()["id"])


def test_a_viewer_sees_no_actions_and_a_hand_made_post_gets_the_403_page(browser, site, local_stack):
    invoice_id = _a_draft(site, local_stack)
    page = signed_in(browser, site, "viewer")
    page.goto(f"{site['url']}/invoices/{invoice_id}")
    assert page.get_by_role("heading", name="Actions").count() == 0
    assert page.locator("main button").count() == 0
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    answer = page.request.post(
        f"{site['url']}/invoices/{invoice_id}/finalize", form={"csrf": csrf, "idempotency_key": "byhand1"}
    )
    assert answer.status == 403 and "Not allowed" in answer.text()
    page.goto(f"{site['url']}/invoices/{invoice_id}")
    assert "Draft invoice" in page.locator("h1").inner_text()
    page.context.close()


def test_a_viewer_finds_a_customer_by_searching_and_sees_no_admin_settings(browser, site):
    page = signed_in(browser, site, "viewer")
    page.get_by_role("link", name="Customers").click()
    page.get_by_label("Name or e-mail").fill(f"browser test {site['run']}")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/console/customers\?q="))
    found = page.get_by_role("link", name=f"Browser Test {site['run']} GmbH")
    further = page.get_by_role("link", name=re.compile("Search further"))
    for _ in range(20):  # other tests of the session make customers too: a search reads 500 a page
        if found.count() or further.count() == 0:
            break
        further.click()
        page.wait_for_load_state()
    assert found.count() == 1
    found.click()
    page.wait_for_url(re.compile(rf"/console/customers/{site['customer_id']}$"))

    page.get_by_role("link", name="Settings").click()
    assert page.get_by_role("heading", name="Tax rates").count() == 1
    assert page.get_by_text("Manage people and API keys").count() == 0
    assert page.locator("main form").count() == 0, "no settings form for a viewer"
    answer = page.goto(f"{site['url']}/settings/access")
    assert answer is not None and answer.status == 403 and page.get_by_text("Not allowed").count() == 1
    page.context.close()


def test_without_a_session_every_page_leads_to_the_login(browser, site):
    context = browser.new_context()
    page = context.new_page()
    for path in ("", "/invoices", "/invoices/new", "/customers", "/reports", "/invoices/in_x1", "/settings/access"):
        page.goto(f"{site['url']}{path}")
        assert "/console/login" in page.url, (path, page.url)
        assert page.get_by_role("heading", name="Sign in").count() == 1
    context.close()


def test_a_form_without_its_csrf_token_gets_403(browser, site, local_stack):
    invoice_id = _a_draft(site, local_stack)
    page = signed_in(browser, site, "clerk")
    answer = page.request.post(f"{site['url']}/invoices/{invoice_id}/finalize", form={"idempotency_key": "nocsrf1"})
    assert answer.status == 403 and "Form refused" in answer.text()
    page.goto(f"{site['url']}/invoices/{invoice_id}")
    assert "Draft invoice" in page.locator("h1").inner_text()
    page.context.close()


def test_a_session_cookie_from_another_user_pool_is_refused(browser, site):
    auth = load_function("console", "auth")
    idp = site["idp"]
    pool_id, client_id = support.other_pool(idp)
    support.add_user(idp, pool_id, "mallory@other.example", "clerk")
    foreign = support.id_token(idp, client_id, "mallory@other.example")
    secret = site["secrets"].get_secret_value(SecretId=site["secret_arn"])["SecretString"]
    key = auth.key_from_secret(secret)
    now = int(time.time())
    cookie = auth.seal(key, {"t": foreign, "s": now, "a": now, "n": "n"})
    context = browser.new_context()
    host = site["url"].split("//", 1)[1].split(":")[0]
    context.add_cookies([{"name": auth.COOKIE, "value": cookie, "domain": host, "path": "/"}])
    page = context.new_page()
    page.goto(f"{site['url']}/invoices")
    assert "/console/login" in page.url
    # the same seal around our own pool's token is a session (control)
    own = support.id_token(idp, site["client_id"], site["people"]["viewer"])
    context.add_cookies(
        [
            {
                "name": auth.COOKIE,
                "value": auth.seal(key, {"t": own, "s": now, "a": now, "n": "n"}),
                "domain": host,
                "path": "/",
            }
        ]
    )
    page.goto(f"{site['url']}/invoices")
    assert page.url.endswith("/console/invoices")
    context.close()


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        (
            "de-DE",
            {
                "sign_in": "Anmelden",
                "email": "E-Mail",
                "password": "Passwort",
                "heading": "Rechnungen",
                "nav": ("Kunden", "Berichte", "Einstellungen"),
                "sign_out": "Abmelden",
                "filter": "Anwenden",
            },
        ),
        (
            "ja-JP",
            {
                "sign_in": "サインイン",
                "email": "メールアドレス",
                "password": "パスワード",
                "heading": "請求書",
                "nav": ("顧客", "レポート", "設定"),
                "sign_out": "サインアウト",
                "filter": "適用",
            },
        ),
    ],
)
def test_the_console_speaks_the_browsers_language(browser, site, tmp_path, locale, words):
    # Given a viewer whose browser asks for German or Japanese (Accept-Language)
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    # When they sign in with the login page's own words and land on the invoices
    page.goto(f"{site['url']}/invoices")
    assert page.locator("html").get_attribute("lang") == locale
    page.get_by_label(words["email"]).fill(site["people"]["viewer"])
    page.get_by_label(words["password"]).fill(support.PASSWORD)
    page.get_by_role("button", name=words["sign_in"]).click()
    page.wait_for_url(re.compile(r"/console/invoices"))
    # Then the heading, navigation, filters and sign-out are in that language, and no English remains
    assert page.get_by_role("heading", name=words["heading"], exact=True).count() == 1
    for label in words["nav"]:
        assert page.get_by_role("navigation").get_by_role("link", name=label, exact=True).count() == 1
    assert page.get_by_role("button", name=words["filter"]).count() == 1
    assert page.get_by_role("button", name=words["sign_out"]).count() == 1
    shown = page.locator("body").inner_text()
    for english in ("Invoices", "Customers", "Sign out", "Apply", "Overdue only", "Newest first"):
        assert english not in shown, english
    # (a screenshot to look at; make console-screenshots keeps them in docs/img)
    page.screenshot(path=str(tmp_path / f"console-invoices-{locale}.png"), full_page=True)
    assert (tmp_path / f"console-invoices-{locale}.png").stat().st_size > 10_000
    context.close()
