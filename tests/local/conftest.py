"""Fixtures of the local runtime's own tests: the fixture template, and the runtime running it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.testing import LocalStack, start_local_stack

FIXTURE_APP = Path(__file__).parent / "fixtures" / "app"
FIXTURE_TEMPLATE = FIXTURE_APP / "template.yaml"

# the schedule test relies on rate(1 minute) firing every 2 s; failed SQS messages return after 1 s
FIXTURE_ARGS = (
    "--template",
    str(FIXTURE_TEMPLATE),
    "--no-api-key",
    "--visibility-timeout-cap",
    "1",
    "--schedule-speedup",
    "30",
)


@pytest.fixture(scope="session")
def fixture_stack(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    """``python -m local`` on the fixture template, as a subprocess, for the whole session."""
    stack = start_local_stack(FIXTURE_ARGS)
    failed_before = request.session.testsfailed
    try:
        yield stack
    finally:
        code = stack.stop()
        if request.session.testsfailed > failed_before or code not in (0, None):
            print(f"\n---- python -m local (fixture template) exited {code}; its output:\n{stack.log()}")
        stack.cleanup()
