"""Shared test set-up: fake AWS credentials, moto, and tables built from template.yaml itself."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "InvoicingTests")
os.environ.setdefault("POWERTOOLS_DEV", "false")
os.environ.pop("AWS_ENDPOINT_URL", None)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    """Long reliability runs (`@pytest.mark.slow`) run only with RUN_SLOW=1 (`make test-slow`): the
    default `make test` skips them, and so does `pytest -m slow` without RUN_SLOW."""
    if os.environ.get("RUN_SLOW"):
        # the long runs first: pytest-xdist hands tests out in this order, so the longest (schemathesis)
        # starts at once and the shorter ones fill the other workers beside it
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)
        return
    import pytest

    skip = pytest.mark.skip(reason="slow: set RUN_SLOW=1 (make test-slow)")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


FIGURES = "figures"


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Keep a test's figures so they are printed at the end of every run (CI's log, `make test-slow`)
    without -s, which would also print every log line of the code under test. They travel as the
    test report's user properties, which pytest-xdist sends from its workers to the controller (a
    worker's own stdout is not shown), and `pytest_terminal_summary` below prints them."""

    def out(text: str) -> None:
        request.node.user_properties.append((FIGURES, text))

    return out


_figures: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _figures.extend((report.nodeid, text) for key, text in report.user_properties if key == FIGURES)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if not _figures:
        return
    terminalreporter.section("figures")
    for nodeid, text in sorted(_figures):
        terminalreporter.write_line(f"{nodeid}:{text if text.startswith(chr(10)) else ' ' + text}")


def pytest_configure(config):  # type: ignore[no-untyped-def]
    """In every process: in-process moto rolls a cancelled transaction back by its items, as the
    local stack does, instead of copying every table once per item of every transaction, and writes
    DynamoDB attribute values as they are instead of walking their shape (local/aws.py). Then, once: the message catalogs compiled before any worker starts, when `make
    i18n` has not (a plain `pytest` after a pull): a stale or missing .mo would fail every rendering
    in another language."""
    from local.aws import roll_back_only_the_items_written, serialize_attribute_values_directly

    roll_back_only_the_items_written()
    serialize_attribute_values_directly()
    if hasattr(config, "workerinput"):  # an xdist worker: the controller did it
        return
    catalogs = ROOT / "shared" / "invoicing" / "i18n"
    stale = [
        po
        for po in catalogs.glob("*/LC_MESSAGES/messages.po")
        if not po.with_suffix(".mo").is_file() or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime
    ]
    if stale:
        from invoicing.i18n.compile import compile_catalogs

        compile_catalogs(catalogs)
