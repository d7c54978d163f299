"""Compile the message catalogs: every `<language>/LC_MESSAGES/messages.po` here -> `messages.mo`.

Run at build time, never in a request: by `make i18n` (scripts/i18n.py) for the tests and the local
stack, and by the SharedLayer's build (shared/Makefile) inside the artifact, so a layer never ships
without them. Babel (a runtime dependency already) reads the .po and writes the .mo; a fuzzy entry
is never compiled, and an error in a catalog (a placeholder the English text does not have) fails
the build instead of a rendering.

    python -m invoicing.i18n.compile [CATALOG_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from invoicing.i18n import CATALOG_DIR, DOMAIN, LANGUAGES, SOURCE_LANGUAGE


def catalog_errors(po_path: Path) -> list[str]:
    with po_path.open("rb") as handle:
        catalog = read_po(handle)
    errors: list[str] = []
    for message, problems in catalog.check():
        errors.extend(f"{po_path}: {message.id!r}: {problem}" for problem in problems)
    return errors


def compile_catalogs(root: Path = CATALOG_DIR) -> list[Path]:
    written = []
    errors: list[str] = []
    for language in LANGUAGES:
        if language == SOURCE_LANGUAGE:
            continue
        po_path = root / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        if not po_path.is_file():
            errors.append(f"{po_path} is missing")
            continue
        errors.extend(catalog_errors(po_path))
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        mo_path = po_path.with_suffix(".mo")
        with mo_path.open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        written.append(mo_path)
    if errors:
        raise SystemExit("\n".join(["catalog errors:", *errors]))
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else CATALOG_DIR
    for path in compile_catalogs(target):
        print(f"compiled {path}")
