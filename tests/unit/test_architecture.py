"""The shape of shared/invoicing, checked on the source: use cases do not import each other, and
nothing below the use cases calls back up into them (GUIDE.md, "Data flows one way")."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "shared" / "invoicing"
USE_CASES = PACKAGE / "use_cases"
# kept for handlers that import the composition root from its old place; it imports no use case
SHIMS: set[str] = set()


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function, as a dotted name
    (`from invoicing.use_cases import payments` counts as `invoicing.use_cases.payments`)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _use_case_modules() -> dict[str, Path]:
    return {p.stem: p for p in USE_CASES.glob("*.py") if p.stem != "__init__" and p.stem not in SHIMS}


def test_no_use_case_module_imports_another() -> None:
    modules = _use_case_modules()
    assert {"finalize", "payments", "credit_notes", "refunds", "lifecycle"} <= set(modules)
    crossing = {
        name: sorted(
            imported
            for imported in _imports(path)
            if imported.startswith("invoicing.use_cases.") and imported.split(".")[2] != name
        )
        for name, path in modules.items()
    }
    assert {name: found for name, found in crossing.items() if found} == {}


def test_nothing_below_the_use_cases_imports_them() -> None:
    below = [p for folder in ("domain", "store", "adapters") for p in (PACKAGE / folder).glob("*.py")] + [
        PACKAGE / "services.py"
    ]
    upward = {
        str(p.relative_to(PACKAGE)): sorted(i for i in _imports(p) if i.startswith("invoicing.use_cases"))
        for p in below
    }
    assert {k: v for k, v in upward.items() if v} == {}


def test_the_domain_knows_no_aws() -> None:
    aws = ("boto3", "botocore", "pynamodb", "invoicing.store", "invoicing.adapters", "invoicing.services")
    leaks = {p.name: sorted(i for i in _imports(p) if i.startswith(aws)) for p in (PACKAGE / "domain").glob("*.py")}
    assert {k: v for k, v in leaks.items() if v} == {}


# memoised pure functions (a parsed catalogue, a compiled template environment): they read no
# environment, so a new root never needs them rebuilt
PURE_CACHES = {
    "shared/invoicing/domain/money.py",
    "shared/invoicing/domain/reminders.py",
    "shared/invoicing/i18n/__init__.py",
    "shared/invoicing/templating.py",
    "shared/invoicing/use_cases/rates.py",
    "shared/invoicing/reminder_policy.py",
    "functions/api/app.py",
    "functions/api/openapi.py",
    "functions/console/views.py",
    "local/cfn.py",  # the parsed template, keyed by the file's inode, modification time and size
}


def test_nothing_built_from_the_environment_is_cached_outside_the_root() -> None:
    """Settings, services, boto3 clients and secrets read once per process hang off invoicing.root,
    so one `root.reset()` rebuilds them all; an lru_cache elsewhere would be a second, hidden
    singleton for tests to clear."""
    cached = sorted(
        str(p.relative_to(ROOT))
        for folder in ("shared", "functions", "local")
        for p in (ROOT / folder).rglob("*.py")
        if "lru_cache" in p.read_text()
    )
    assert [c for c in cached if c not in PURE_CACHES] == []


def test_audit_events_become_items_only_in_the_unit_of_work() -> None:
    """Every event is written by `UnitOfWork.add_events`, the one place a webhook outbox record joins
    it in the same transaction: no store, use case or handler turns an event into an item itself."""
    uses = {
        str(p.relative_to(ROOT)): sorted(
            n.id if isinstance(n, ast.Name) else n.attr
            for n in ast.walk(ast.parse(p.read_text(), filename=str(p)))
            if (isinstance(n, ast.Name) and n.id in ("event_to_item", "EventItem"))
            or (isinstance(n, ast.Attribute) and n.attr in ("event_to_item", "EventItem"))
        )
        for folder in ("shared", "functions", "local")
        for p in (ROOT / folder).rglob("*.py")
    }
    allowed = {
        "shared/invoicing/store/mapping.py",  # the mapper (defines it) and its reverse, event_from_item
        "shared/invoicing/store/models.py",  # the item class
        "shared/invoicing/store/uow.py",  # add_events: the one caller
        "shared/invoicing/store/repository.py",  # reads: list_events
    }
    assert {path: found for path, found in uses.items() if found and path not in allowed} == {}
    calls = [
        str(p.relative_to(ROOT))
        for folder in ("shared", "functions", "local")
        for p in (ROOT / folder).rglob("*.py")
        for n in ast.walk(ast.parse(p.read_text(), filename=str(p)))
        if isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) == "event_to_item"
    ]
    assert calls == ["shared/invoicing/store/uow.py"]


def test_the_stores_write_only_through_the_unit_of_work() -> None:
    """No store module opens its own transaction: a write is a typed write in store/writes/, committed
    by store/uow.py. (The pay pages' hit counter, the reminder run's cursor and the reference data
    of tax and exchange rates and API keys are single-item writes outside it: docs/decisions.md.)"""
    opened = {
        p.name for p in (PACKAGE / "store").rglob("*.py") if p.name != "uow.py" and ".transaction()" in p.read_text()
    }
    assert opened == set()
