"""The pay page in a real browser (headless Chromium via pyppeteer) against the local stack.

Checks what in-process tests cannot: the strict CSP lets the page's own (nonce'd) CSS apply and
blocks nothing it needs, the page fits a phone screen, and a real form POST through the Pay button
pays once (local provider) while a second visit gets the neutral page.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.testing import LocalStack, free_port, start_local_stack
from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.chromium]

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "isMobile": True, "hasTouch": True}
# shared/RECIPES.md; loopback must stay reachable here (unlike the PDF renderer, which blocks it)
FLAGS = [
    "--no-sandbox",
    "--no-zygote",
    "--single-process",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-setuid-sandbox",
    "--in-process-gpu",
    "--disable-webgl",
    "--font-render-hinting=none",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=AudioServiceOutOfProcess,IsolateOrigins,site-per-process",
]
SHOTS = Path(os.environ.get("PAY_PAGE_SCREENSHOTS", "")) if os.environ.get("PAY_PAGE_SCREENSHOTS") else None


def _chromium() -> Any:
    from invoicing.adapters import chromium

    if not chromium.chromium_available():
        pytest.skip("no Chromium: run `make chromium`")
    return chromium.locate_chromium()


@pytest.fixture(scope="module")
def paying_stack() -> Iterator[LocalStack]:
    """A second stack with the local payment provider, so the Pay button completes at once."""
    stack = start_local_stack(["--parameter", "PaymentProvider=local"], port=free_port(), cwd=ROOT, timeout=60)
    try:
        yield stack
    finally:
        stack.stop()


def _admin(stack: LocalStack) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {stack.api_key}"
    return session


def open_invoice(stack: LocalStack) -> dict[str, Any]:
    admin = _admin(stack)
    customer = admin.post(
        f"{stack.api_url}/customers", json={"name": "Acme GmbH", "email": "billing@acme.test"}, timeout=30
    ).json()
    draft = admin.post(
        f"{stack.api_url}/invoices",
        json={
            "customer_id": customer["id"],
            "lines": [
                {"description": "Consulting, November", "quantity": "1.5", "unit_amount_cents": 10000},
                {"description": "A rather long line that has to wrap on a phone screen " * 2, "unit_amount_cents": 999},
            ],
        },
        timeout=30,
    ).json()
    invoice = admin.post(f"{stack.api_url}/invoices/{draft['id']}/finalize", timeout=60).json()
    assert invoice["payment_url"].startswith(f"{stack.api_url}/pay/"), invoice
    return invoice


async def _visit(url: str, actions: Any = None, shot: str | None = None) -> dict[str, Any]:
    from pyppeteer import launch

    install = _chromium()
    browser = await launch(
        executablePath=str(install.executable),
        headless=True,
        args=FLAGS,
        env=install.child_env(),
        handleSIGINT=False,
        handleSIGTERM=False,
        handleSIGHUP=False,
    )
    try:
        page = await browser.newPage()
        await page.setViewport(PHONE)
        console: list[str] = []
        page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
        response = await page.goto(url, {"waitUntil": "load"})
        out: dict[str, Any] = {"status": response.status, "headers": response.headers, "console": console}
        out["text"] = await page.evaluate("document.body.innerText")
        out["layout"] = await page.evaluate(
            """() => {
                const card = document.querySelector('.card');
                const style = card ? getComputedStyle(card) : null;
                return {
                    overflow: document.documentElement.scrollWidth - window.innerWidth,
                    cardRadius: style ? style.borderTopLeftRadius : null,
                    cardBackground: style ? style.backgroundColor : null,
                };
            }"""
        )
        if shot and SHOTS:
            await page.screenshot({"path": str(SHOTS / f"{shot}.png"), "fullPage": True})
        if actions:
            out.update(await actions(page))
        return out
    finally:
        await browser.close()


def test_the_page_renders_under_its_csp_and_fits_a_phone(local_stack):
    # Given an invoice finalized on the local stack (manual provider: bank transfer)
    invoice = open_invoice(local_stack)
    # When the customer opens the link on a phone
    seen = asyncio.run(_visit(invoice["payment_url"], shot="pay-manual"))
    # Then the page shows the invoice, styled (the nonce'd CSS applied), without sideways scrolling
    assert seen["status"] == 200
    assert invoice["invoice_number"] in seen["text"] and "$159.99" in seen["text"]
    assert "pay by bank transfer" in seen["text"].lower()
    assert seen["layout"]["cardRadius"] == "12px" and seen["layout"]["cardBackground"] == "rgb(255, 255, 255)"
    assert seen["layout"]["overflow"] <= 0
    assert not [line for line in seen["console"] if "Content Security Policy" in line], seen["console"]
    assert seen["headers"]["cache-control"] == "no-store"
    assert seen["headers"]["x-frame-options"] == "DENY"


def test_an_unknown_link_gets_the_neutral_page(local_stack):
    seen = asyncio.run(_visit(f"{local_stack.api_url}/pay/{'A' * 43}", shot="pay-neutral"))
    assert seen["status"] == 404 and "not active" in seen["text"]
    assert seen["layout"]["cardRadius"] == "12px"


def test_the_pay_button_pays_once(paying_stack):
    invoice = open_invoice(paying_stack)

    async def press_pay(page: Any) -> dict[str, Any]:
        button = await page.querySelector('[data-testid="pay-button"]')
        label = await page.evaluate("(b) => b.textContent", button)
        await asyncio.gather(page.waitForNavigation({"waitUntil": "load"}), button.click())
        paid_text = await page.evaluate("document.body.innerText")
        again = await page.goto(page.url, {"waitUntil": "load"})
        return {
            "label": label,
            "paid_text": paid_text,
            "again_status": again.status,
            "again_text": await page.evaluate("document.body.innerText"),
        }

    seen = asyncio.run(_visit(invoice["payment_url"], press_pay, shot="pay-local"))
    assert seen["label"] == "Pay $159.99"
    assert "Payment received" in seen["paid_text"]
    assert seen["again_status"] == 404 and "already paid" in seen["again_text"]
    admin = _admin(paying_stack)
    after = admin.get(f"{paying_stack.api_url}/invoices/{invoice['id']}", timeout=30).json()
    assert after["status"] == "paid" and after["amount_remaining_cents"] == 0
    payments = admin.get(f"{paying_stack.api_url}/invoices/{invoice['id']}/payments", timeout=30).json()["data"]
    assert [(p["method"], p["source"], p["amount_cents"]) for p in payments] == [("card", "pay_link", 15999)]
