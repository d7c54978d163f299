"""The one Jinja2 environment of every document, e-mail and page (templates/), with the i18n extension.

Built once per process (Lambda container): template compilation is the costly part. HTML templates
are autoescaped, text templates (the e-mails' plain part) are not. The words come from the catalog
of the rendering's language (i18n.Localization.jinja_globals), passed per render, never installed on
the shared environment.
"""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("invoicing", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.newstyle_gettext = True  # type: ignore[attr-defined]
    return env
