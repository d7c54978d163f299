"""The console's settings: tax rates and exchange rates (everyone reads, admins change), and for
admins only the people (Cognito users: add to a group, disable, enable) and the API keys (create,
shown once; revoke) on /console/settings/access. Clerks and viewers get the 403 page there.

API keys go through use_cases/api_keys.py, the same functions `make api-key` and the authorizer use.
A new key's plaintext is on the one response that creates it and nowhere else: not in the
idempotency record (a replayed form says the key was shown already), not in a log.
"""

from __future__ import annotations

from typing import Any

import forms
import people
import views
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pages import Page, page_of

from invoicing import clock
from invoicing.errors import InvoicingError, NotFound
from invoicing.observability import logger
from invoicing.root import get_services
from invoicing.use_cases import api_keys, rates

settings_pages = Router()

SETTINGS_CURRENCIES = ("EUR", "GBP", "CHF", "JPY", "CAD", "AUD")  # exchange rates shown (one GetItem each)
RATE_SECTIONS = ("tax-rates", "exchange-rates")
ACCESS_SECTIONS = ("people", "people-disable", "people-enable", "api-keys", "api-keys-revoke")


def _settings_page(page: Page, status: int = 200, **context: Any) -> Response[str]:
    svc = get_services()
    fx = []
    for code in SETTINGS_CURRENCIES:
        try:
            fx.append(rates.get_exchange_rate(svc, code))
        except NotFound:
            continue
    return page.html(
        "settings.html",
        status,
        title=views._("Settings"),
        tax_rates=rates.list_tax_rates(svc),
        fx=fx,
        errors=context.pop("errors", {}),
        done=(page.event.query_string_parameters or {}).get("done", ""),
        **context,
    )


def _access_page(page: Page, status: int = 200, **context: Any) -> Response[str]:
    return page.html(
        "access.html",
        status,
        title=views._("People and API keys"),
        people=people.list_people(page.config),
        keys=api_keys.list_api_keys(get_services().repo),
        groups=list(people.RIGHTS),
        scopes=list(api_keys.SCOPES),
        me=page.person.email if page.person else "",
        errors=context.pop("errors", {}),
        done=(page.event.query_string_parameters or {}).get("done", ""),
        created=context.pop("created", None),
        **context,
    )


@settings_pages.get("/console/settings")
def handle_get_settings() -> Response[str]:
    page = page_of(settings_pages)
    page.require()
    return _settings_page(page)


@settings_pages.get("/console/settings/<section>")
def handle_get_settings_section(section: str) -> Response[str]:
    page = page_of(settings_pages)
    page.require("admin")
    if section != "access":
        return page.not_found()
    return _access_page(page)


def _save_rates(page: Page, section: str) -> None:
    form, svc = page.form, get_services()
    if section == "tax-rates":
        forms.run_once(
            page,
            lambda: {
                "id": rates.create_tax_rate(
                    svc,
                    display_name=form.get("display_name").strip(),
                    percentage=form.get("percentage").strip(),
                    inclusive=form.get("inclusive") == "1",
                    country=form.get("country").strip().upper() or None,
                ).id
            },
        )
    else:
        forms.run_once(
            page,
            lambda: {
                "currency": rates.put_exchange_rate(
                    svc,
                    form.get("currency").strip(),
                    rate_to_usd=form.get("rate_to_usd").strip(),
                    source=form.get("source").strip() or f"console:{page.person.email if page.person else ''}",
                    as_of=clock.now(),
                ).currency
            },
        )


def _change_access(page: Page, section: str) -> Response[str] | None:
    """People and API keys; a response of its own only for a new key (shown once), else None."""
    form, repo = page.form, get_services().repo
    who = page.person.email if page.person else ""
    if section == "people":
        forms.run_once(page, lambda: {"email": people.add_person(page.config, form.get("email"), form.get("group"))})
    elif section in ("people-disable", "people-enable"):
        enabled = section == "people-enable"
        username = form.get("username")
        forms.run_once(page, lambda: {"username": people.set_enabled(page.config, username, enabled=enabled, by=who)})
        logger.info("console person access changed", extra={"enabled": enabled})
    elif section == "api-keys":
        name = form.get("name").strip()
        scopes = [s for s in form.all("scopes") if s]
        created: dict[str, str] = {}

        def create() -> dict[str, Any]:
            created["key"] = api_keys.create_api_key(name, scopes, repo=repo)
            logger.info("api key created in the console", extra={"key_name": name})
            return {"name": name}

        result = forms.run_once(page, create)
        return _access_page(page, created={"name": result["name"], "key": created.get("key", "")})
    else:
        forms.run_once(page, lambda: {"name": api_keys.revoke_api_key(form.get("key").strip(), repo=repo).name})
    return None


@settings_pages.post("/console/settings/<section>")
def handle_post_settings(section: str) -> Response[str]:
    """Admin only: tax rates and exchange rates; people and API keys."""
    page = page_of(settings_pages)
    page.require("admin")
    if section not in RATE_SECTIONS + ACCESS_SECTIONS:
        return page.not_found()
    try:
        if section in RATE_SECTIONS:
            _save_rates(page, section)
        else:
            shown = _change_access(page, section)
            if shown is not None:
                return shown
    except InvoicingError as exc:
        field = str(exc.details.get("field") or "form")
        errors = {f"{section}:{field}": views.plain_words(exc.code, exc.message)}
        if section in RATE_SECTIONS:
            return _settings_page(page, exc.http_status, errors=errors, section=section)
        return _access_page(page, exc.http_status, errors=errors, section=section)
    if section in RATE_SECTIONS:
        return page.redirect(f"/settings?done={section}")
    return page.redirect(f"/settings/access?done={section}")
