"""``python -m local.invoke`` (make invoke) and the runtime used in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import requests

from local import LocalRuntime, RuntimeOptions
from local.testing import REPO_ROOT

from .conftest import FIXTURE_TEMPLATE


def _invoke(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "shared"), str(REPO_ROOT)]))
    return subprocess.run(
        [sys.executable, "-m", "local.invoke", *args, "--template", str(FIXTURE_TEMPLATE)],
        cwd=REPO_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_invoke_prints_the_result_as_json(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"kind": "from-file"}))
    done = _invoke("TickFunction", str(event))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"fired": "from-file"}  # it wrote to the local table, too
    assert "TickFunction START" in done.stderr and "tick: from-file" in done.stderr


def test_invoke_failure_prints_the_lambda_error(tmp_path: Path) -> None:
    event = {"resource": "/boom", "httpMethod": "GET", "path": "/boom"}
    done = _invoke("EchoFunction", "-", stdin=json.dumps(event))
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["errorType"] == "RuntimeError" and error["errorMessage"] == "boom"
    unknown = _invoke("NoSuchFunction")
    assert unknown.returncode == 2 and "NoSuchFunction" in unknown.stderr


def test_in_process_runtime_restores_the_process_environment() -> None:
    before_env, before_path = dict(os.environ), list(sys.path)
    runtime = LocalRuntime(
        RuntimeOptions(template=FIXTURE_TEMPLATE, port=0, create_api_key=False, run_schedules=False, poll_queues=False)
    )
    with runtime:
        assert os.environ["AWS_ENDPOINT_URL"] == runtime.aws.url
        assert os.environ["TABLE_NAME"] == "local-DataTable"
        response = requests.get(runtime.api_url + "/public", timeout=30)
        assert response.status_code == 200
        assert response.json()["env"]["PUBLIC_BASE_URL"] == runtime.api_url
    assert dict(os.environ) == before_env
    assert sys.path == before_path
