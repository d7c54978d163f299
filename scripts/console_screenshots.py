"""Screenshots of the finance console's main pages into docs/img/ (make console-screenshots).

Starts the local stack (what `make dev` runs) with an admin user, makes a few customers and invoices
in several states through the API, signs in with Playwright on Debian's chromium and saves each page
at 1280 px (and the invoice page at tablet width). Look at them before they land (GUIDE: pages are
products).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from local.testing import start_local_stack  # noqa: E402

ADMIN = "dana.finance@acme.example"


def _seed(api: requests.Session, url: str) -> dict[str, Any]:
    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = api.post(f"{url}{path}", json=body, timeout=30)
        assert answer.status_code in (200, 201), (path, answer.text)
        return dict(answer.json())

    api.put(
        f"{url}/exchange-rates/EUR",
        json={"rate_to_usd": "1.08", "source": "ecb", "as_of": "2026-11-27T00:00:00Z"},
        timeout=30,
    )
    rate = post("/tax-rates", {"display_name": "VAT", "percentage": "19", "inclusive": False, "country": "DE"})
    made: dict[str, Any] = {}
    for name, currency, lines in (
        (
            "Northwind Traders GmbH",
            "EUR",
            [("Annual platform licence", "1", 480000), ("Onboarding workshop", "2", 65000)],
        ),
        ("Globex Corporation", "USD", [("Consulting, October", "32", 15000)]),
        ("Initech LLC", "USD", [("Support plan", "1", 99000)]),
        ("Umbrella Labs", "EUR", [("API usage", "1250", 12)]),
    ):
        customer = post(
            "/customers", {"name": name, "email": f"ap@{name.split()[0].lower()}.example", "currency": currency}
        )
        body = {
            "customer_id": customer["id"],
            "currency": currency,
            "lines": [
                {
                    "description": d,
                    "quantity": q,
                    "unit_amount_cents": a,
                    "tax_rate_id": rate["id"] if currency == "EUR" else None,
                }
                for d, q, a in lines
            ],
        }
        draft = post("/invoices", body)
        invoice = post(f"/invoices/{draft['id']}/finalize", {})
        made[name] = invoice
    first = made["Northwind Traders GmbH"]
    post(
        f"/invoices/{first['id']}/payments",
        {"amount_cents": 300000, "method": "bank_transfer", "reference": "SEPA 2026-11-20"},
    )
    paid = made["Initech LLC"]
    post(f"/invoices/{paid['id']}/payments", {"amount_cents": paid["amount_remaining_cents"], "method": "card"})
    post(
        f"/invoices/{made['Globex Corporation']['id']}/credit-notes",
        {"reason": "order_change", "method": "customer_balance", "amount_cents": 30000},
    )
    post(
        "/invoices",
        {
            "customer_id": first["customer_id"],
            "lines": [{"description": "Extra seats", "quantity": "5", "unit_amount_cents": 4900}],
        },
    )
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    executable = shutil.which("chromium")
    if executable is None:
        sys.exit("console_screenshots: apt-get install chromium")
    stack = start_local_stack(["--cognito-user", f"{ADMIN}:admin", "--parameter", "PaymentProvider=local"])
    try:
        ready = requests.get(f"{stack.api_url}/_local/resources", timeout=10).json()
        password = _password(stack)
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {stack.api_key}"
        made = _seed(api, stack.api_url)
        time.sleep(3)  # the renderer makes the PDFs
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            # the system's fonts plus the project's Noto fonts (make fonts): a machine without CJK fonts
            # would otherwise draw the Japanese page as empty boxes
            browser = p.chromium.launch(
                executable_path=executable, args=["--no-sandbox"], env={**os.environ, "FONTCONFIG_FILE": _fonts_conf()}
            )
            context = browser.new_context(
                locale="en-US", viewport={"width": 1280, "height": 860}, device_scale_factor=1
            )
            page = context.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            console = f"{stack.api_url}/console"
            page.goto(f"{console}/login")
            page.screenshot(path=str(args.out / "console-login.png"))
            page.get_by_label("E-mail").fill(ADMIN)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/console/invoices")
            page.screenshot(path=str(args.out / "console-invoices.png"), full_page=True)
            for locale, suffix in (("de-DE", "de"), ("ja-JP", "ja")):  # the same session, another language
                other = browser.new_context(
                    locale=locale, viewport={"width": 1280, "height": 860}, device_scale_factor=1
                )
                other.add_cookies(context.cookies())
                there = other.new_page()
                there.goto(f"{console}/invoices")
                there.screenshot(path=str(args.out / f"console-invoices-{suffix}.png"), full_page=True)
                other.close()
            first = made["Northwind Traders GmbH"]
            page.goto(f"{console}/invoices/{first['id']}")
            page.get_by_text("Record a payment").click()
            page.locator("iframe.pdf").wait_for()
            page.wait_for_timeout(3000)  # the PDF viewer draws the preview's pages
            page.screenshot(path=str(args.out / "console-invoice.png"), full_page=True)
            page.set_viewport_size({"width": 820, "height": 1180})
            page.screenshot(path=str(args.out / "console-invoice-tablet.png"))
            page.set_viewport_size({"width": 1280, "height": 860})
            page.goto(f"{console}/invoices/new?customer_id={first['customer_id']}")
            page.get_by_label("Currency").fill("EUR")
            page.get_by_label("Line 1 description").fill("Implementation, phase 2")
            page.get_by_label("Line 1 quantity").fill("3")
            page.get_by_label("Line 1 unit price").fill("1,250.00")
            page.get_by_label("Line 2 description").fill("Travel")
            page.get_by_label("Line 2 unit price").fill("412.80")
            page.locator("#draft-subtotal").filter(has_text="€4,162.80").wait_for()
            page.screenshot(path=str(args.out / "console-draft.png"), full_page=True)
            page.goto(f"{console}/reports")
            page.screenshot(path=str(args.out / "console-reports.png"), full_page=True)
            page.goto(f"{console}/customers/{first['customer_id']}")
            page.screenshot(path=str(args.out / "console-customer.png"), full_page=True)
            page.goto(f"{console}/customers?q=glo")
            page.screenshot(path=str(args.out / "console-customers.png"), full_page=True)
            page.goto(f"{console}/settings")
            page.screenshot(path=str(args.out / "console-settings.png"), full_page=True)
            page.goto(f"{console}/settings/access")
            page.get_by_label("Name").fill("billing-run")
            page.get_by_role("button", name="Create API key").click()
            page.get_by_text("is shown this once").wait_for()
            page.goto(f"{console}/settings/access")
            page.screenshot(path=str(args.out / "console-access.png"), full_page=True)
            browser.close()
        print(
            json.dumps(
                {"screenshots": sorted(str(p.name) for p in args.out.glob("console-*.png")), "stack": ready["api_url"]}
            )
        )
    finally:
        stack.stop()
        stack.cleanup()
    return 0


def _fonts_conf() -> str:
    fonts = ROOT / ".cache" / "fonts"
    dirs = "".join(f"  <dir>{html.escape(str(d))}</dir>\n" for d in sorted(fonts.glob("noto-*")) if d.is_dir())
    conf = Path(tempfile.mkdtemp(prefix="console-fonts-")) / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        f'  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n{dirs}</fontconfig>\n'
    )
    return str(conf)


def _password(stack: Any) -> str:
    for line in stack.log().splitlines():
        if "Sign-in" in line and ADMIN in line:
            return line.split("password", 1)[1].split()[0]
    raise SystemExit("console_screenshots: the stack printed no sign-in line")


if __name__ == "__main__":
    raise SystemExit(main())
