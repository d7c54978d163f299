"""The customer's language: message catalogs (gettext, compiled from the .po files here) and formats.

`localize(customer_locale, seller_locale)` picks two things:
- the formats (Babel/CLDR: dates, numbers, currency) from the customer's locale, e.g. de_DE prints
  "1.234,56 €"; an unknown or empty locale falls back to the seller's;
- the words from the catalog of the customer's language when we ship one (LANGUAGES), else the
  seller's language, else English (the language the templates are written in: it has no catalog).

The catalogs are `<language>/LC_MESSAGES/messages.po` beside this file, compiled to `.mo` at build
(`make i18n`, and the SharedLayer build); the `.mo` are not committed. A shipped language whose `.mo`
is missing is a broken build, never silently English: `CatalogMissing` says to run `make i18n`.
"""

from __future__ import annotations

import gettext as _gettext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

CATALOG_DIR = Path(__file__).resolve().parent
DOMAIN = "messages"
SOURCE_LANGUAGE = "en"
# every language a customer may read its documents in; ar is written right to left. Chinese has two
# catalogs: "zh" (Simplified: zh, zh_CN, zh_SG, zh_Hans_*) and "zh_Hant" (Traditional: zh_TW, zh_HK,
# zh_MO, zh_Hant_*), chosen by the locale's script, or by its territory when it names no script.
LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "nl", "pt", "ja", "zh", "zh_Hant", "ar")
TRADITIONAL_CHINESE_TERRITORIES = frozenset({"TW", "HK", "MO"})
RTL_LANGUAGES = frozenset({"ar"})
# the finance console's words are fully translated in these; the other languages may leave a console
# message empty and show it in English (scripts/i18n.py check)
CONSOLE_LANGUAGES: tuple[str, ...] = ("de", "fr", "ja")
DEFAULT_LOCALE = "en_US"


class CatalogMissing(RuntimeError):
    """A shipped language has no compiled catalog: the build skipped `make i18n` (pybabel compile)."""


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; it is translated where it is shown."""
    return message


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> _gettext.NullTranslations:
    if language == SOURCE_LANGUAGE:
        return _gettext.NullTranslations()
    if language not in LANGUAGES:
        raise ValueError(f"no catalog for language {language!r}")
    path = CATALOG_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    if not path.is_file():
        raise CatalogMissing(f"{path} is missing: compile the catalogs with `make i18n`")
    with path.open("rb") as handle:
        return _gettext.GNUTranslations(handle)


def parse_locale(value: str | None) -> Locale | None:
    if not value:
        return None
    try:
        return Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class Localization:
    """What one rendering speaks: `locale` for the formats, `language` for the words."""

    locale: str  # CLDR id for Babel, e.g. "de_DE"
    language: str  # one of LANGUAGES
    catalog: _gettext.NullTranslations

    @property
    def direction(self) -> str:
        return "rtl" if self.language in RTL_LANGUAGES else "ltr"

    @property
    def html_lang(self) -> str:
        """The BCP 47 tag of the text: the locale when its language is the text's, else the language.

        zh_Hant text with a zh_TW locale is "zh-TW"; with an en_US locale it is "zh-Hant": either way
        the documents' `:lang()` rules pick a Traditional Chinese face.
        """
        if language_of(parse_locale(self.locale)) == self.language:
            return self.locale.replace("_", "-")
        return self.language.replace("_", "-")

    def gettext(self, message: str, **variables: Any) -> str:
        text = self.catalog.gettext(message)
        return text % variables if variables else text

    def ngettext(self, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        return self.catalog.ngettext(singular, plural, num) % variables

    def jinja_globals(self) -> dict[str, Any]:
        """gettext/ngettext for the i18n extension's `{% trans %}` and `_()`, rendered per call.

        Passed in the render context (never installed on the one shared Environment), so concurrent
        renderings in different languages cannot see each other's catalog. As Jinja's own "newstyle"
        callables: the translation is trusted markup in an autoescaped template, its variables are not.
        """
        catalog = self.catalog

        @pass_context
        def gettext(context: Context, message: str, **variables: Any) -> str:
            text = catalog.gettext(message)
            if context.eval_ctx.autoescape:
                text = Markup(text)  # noqa: S704 - our own catalog, as Jinja's newstyle gettext
            return text % variables if variables else text

        @pass_context
        def ngettext(context: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
            variables.setdefault("num", num)
            text = catalog.ngettext(singular, plural, num)
            if context.eval_ctx.autoescape:
                text = Markup(text)  # noqa: S704 - our own catalog, as Jinja's newstyle gettext
            return text % variables

        return {"gettext": gettext, "_": gettext, "ngettext": ngettext}


def language_of(locale: Locale | None) -> str | None:
    if locale is None:
        return None
    if locale.language == "zh":
        script = locale.script or ("Hant" if locale.territory in TRADITIONAL_CHINESE_TERRITORIES else "Hans")
        return "zh_Hant" if script == "Hant" else "zh"
    return locale.language if locale.language in LANGUAGES else None


def localize(customer_locale: str | None, seller_locale: str | None = DEFAULT_LOCALE) -> Localization:
    customer = parse_locale(customer_locale)
    seller = parse_locale(seller_locale) or Locale.parse(DEFAULT_LOCALE)
    formats = customer or seller
    language = language_of(customer) or language_of(seller) or SOURCE_LANGUAGE
    return Localization(locale=str(formats), language=language, catalog=translations(language))
