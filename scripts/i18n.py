"""`make i18n`: extract every message, check every catalog has all of them translated, compile.

    python scripts/i18n.py extract   # babel.cfg -> shared/invoicing/i18n/messages.pot
    python scripts/i18n.py update    # merge the .pot into every language's .po (new ids empty)
    python scripts/i18n.py check     # fail on a message missing, untranslated or fuzzy in any language
    python scripts/i18n.py compile   # .po -> .mo (not committed; the layer build compiles its own)
    python scripts/i18n.py all       # extract, check, compile: what `make i18n` runs

The finance console (functions/console) uses the same catalogs. Its messages (those used only there)
must be present in every catalog, and translated in CONSOLE_LANGUAGES (de, fr, ja); elsewhere an
empty msgstr is allowed and reads as English (gettext's own fallback): staff, not customers, read them.

Messages are marked in the templates (`{% trans %}`, `_()`, `ngettext()`) and in Python (`N_()`,
`gettext`); English is the source language and has no catalog.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "shared"))

from invoicing.i18n import CATALOG_DIR, CONSOLE_LANGUAGES, DOMAIN, LANGUAGES, SOURCE_LANGUAGE  # noqa: E402
from invoicing.i18n.compile import compile_catalogs  # noqa: E402

POT = CATALOG_DIR / f"{DOMAIN}.pot"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def extract() -> Catalog:
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    template = Catalog(project="invoicing", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS, comment_tags=("Translators:",), strip_comment_tags=True
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def write_template(template: Catalog) -> None:
    with POT.open("wb") as handle:
        # no header: its dates would change the file on every run; the messages are what matters
        write_po(handle, template, omit_header=True, sort_output=True, width=100)


def po_path(language: str) -> Path:
    return CATALOG_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def update(template: Catalog) -> None:
    for language in LANGUAGES:
        if language == SOURCE_LANGUAGE:
            continue
        path = po_path(language)
        if path.is_file():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=language, project="invoicing")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as handle:
            write_po(handle, catalog, sort_output=True, width=100, omit_header=False)


def check(template: Catalog) -> list[str]:
    """Every message of `template` translated in every language, nothing fuzzy, nothing stale."""
    problems: list[str] = []
    wanted = {message.id if isinstance(message.id, str) else message.id[0] for message in template if message.id}
    console_only = {
        message.id if isinstance(message.id, str) else message.id[0]
        for message in template
        if message.id and all(filename.startswith("functions/console/") for filename, _ in message.locations)
    }
    for language in LANGUAGES:
        if language == SOURCE_LANGUAGE:
            continue
        path = po_path(language)
        if not path.is_file():
            problems.append(f"{language}: {path} is missing (python scripts/i18n.py update)")
            continue
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        have = {}
        for message in catalog:
            if message.id:
                have[message.id if isinstance(message.id, str) else message.id[0]] = message
        for msgid in sorted(wanted - have.keys()):
            problems.append(f"{language}: missing {msgid!r}")
        for msgid in sorted(have.keys() - wanted):
            problems.append(f"{language}: no longer used {msgid!r} (python scripts/i18n.py update)")
        for msgid in sorted(wanted & have.keys()):
            message = have[msgid]
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if message.fuzzy:
                problems.append(f"{language}: fuzzy {msgid!r}")
            elif not any(strings) and msgid in console_only and language not in CONSOLE_LANGUAGES:
                continue  # a console message this language leaves to English
            elif not all(strings) or len(strings) != (catalog.num_plurals if message.pluralizable else 1):
                problems.append(f"{language}: untranslated {msgid!r}")
        for message, errors in catalog.check():
            problems.extend(f"{language}: {message.id!r}: {error}" for error in errors)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("extract", "update", "check", "compile", "all"))
    command = parser.parse_args(argv).command
    if command == "compile":
        compile_catalogs()
        return 0
    template = extract()
    if command in ("extract", "all"):
        write_template(template)
    if command == "update":
        write_template(template)
        update(template)
        return 0
    if command in ("check", "all"):
        problems = check(template)
        if problems:
            print(f"i18n: {len(problems)} problem(s) in the catalogs:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print(f"i18n: {len(template)} messages translated in {len(LANGUAGES) - 1} languages")
    if command == "all":
        compile_catalogs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
