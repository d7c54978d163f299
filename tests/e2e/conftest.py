"""End-to-end fixtures: the whole stack (`python -m local`, what `make dev` runs) as a subprocess."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator

import pytest

from local.testing import REPO_ROOT, LocalStack, free_port, start_local_stack

__all__ = ["free_port", "local_stack"]

READY_TIMEOUT = 60


@pytest.fixture(scope="session")
def local_stack(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    """The real template on a free port, started from the repo root with PYTHONPATH=shared:.

    Yields a :class:`local.testing.LocalStack` with ``.api_url``, ``.api_key``, ``.moto_url``,
    ``.outbox_url`` (and ``.client(service)`` for boto3 clients bound to the local AWS). Its output is
    printed when a test failed or when it did not stop cleanly. Extra ``python -m local`` options can be
    given in the environment variable LOCAL_STACK_ARGS (e.g. "--visibility-timeout-cap 1").
    """
    extra = shlex.split(os.environ.get("LOCAL_STACK_ARGS", ""))
    try:
        stack = start_local_stack(extra, port=free_port(), cwd=REPO_ROOT, timeout=READY_TIMEOUT)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    failed_before = request.session.testsfailed
    try:
        yield stack
    finally:
        code = stack.stop()
        if request.session.testsfailed > failed_before or code not in (0, None):
            print(f"\n---- python -m local exited {code}; its output:\n{stack.log()}")
        stack.cleanup()
