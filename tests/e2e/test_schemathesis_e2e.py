"""The API document against the whole local stack (what `make dev` runs), by schemathesis' own runner.

`schemathesis run` reads GET /openapi.json and sends what it generates over HTTP, through the API
Gateway emulation, the real authorizer (the stack's API key) and the admin function: the examples,
coverage, fuzzing and stateful phases (the stateful one follows the document's links), with every
check it can run here. The gate: no check fails, so no server error, no schema-valid request refused, no
undocumented status code and no response outside its schema.

Three checks are left out (CHECKS below says why). `unsupported_method` expects 405 for a method no
route declares, and the deployed API answers 404 route_not_found there (API Gateway's
MISSING_AUTHENTICATION_TOKEN, mapped by the template's GatewayResponses); the local stack answers
exactly that, tested below. `max_response_time` is a timed test (speed goals live in `make bench`), and
`object_level_authorization` needs a second user.

The run is bounded by count (--max-examples per operation and phase; it generates > 2,000 cases; the
coverage phase, which --max-examples does not bound, walks a fixed sample of the five large code lists,
and tests/unit/test_code_lists.py proves every value of them) and reproducible under CI=true (a fixed
--seed). The two rules JSON Schema cannot state (no "now", no
comparison of two fields) are taught to the fuzzer in schemathesis_hooks.py; schemathesis.toml keeps the
stateful phase on the document's links (its guessed ones mistook line ids for invoice ids).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import requests

from local.testing import REPO_ROOT

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 4
MIN_CASES = 2000
CI_SEED = "20261127"
# Every check schemathesis has, named (its `all` also switches on max_response_time, which
# --exclude-checks cannot switch off), less these:
# - unsupported_method expects 405, and API Gateway answers 404 route_not_found (module docstring);
# - max_response_time (10 s under `all`) is a timed test: on a shared 2-core machine it fails by load,
#   not by a bug, and speed goals belong in `make bench`. A hung request still fails: --request-timeout;
# - object_level_authorization runs only with two users as peers under [auth.wfc]; one key has no peer.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
]
EXCLUDED_CHECKS = ["unsupported_method", "max_response_time", "object_level_authorization"]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")  # the stateful phase follows the document's links only


def test_a_method_no_route_declares_gets_the_deployed_answer(local_stack):
    # Given an admin path, When a method it does not declare is sent (TRACE; DELETE on a GET-only route)
    for method, path in (("TRACE", "/customers"), ("DELETE", "/tax-rates"), ("PROPFIND", "/invoices")):
        response = requests.request(method, f"{local_stack.api_url}{path}", timeout=30)
        # Then the answer is API Gateway's MISSING_AUTHENTICATION_TOKEN as the template maps it
        assert response.status_code == 404, (method, response.text)
        assert response.json() == {"error": {"code": "route_not_found", "message": "no such route"}}


def test_the_document_says_where_and_how_to_call(local_stack):
    doc = requests.get(f"{local_stack.api_url}/openapi.json", timeout=30).json()
    # Then "Try it out" reaches this stack's host (the path prefix is requestContext.path less the
    # event's path: tests/unit/test_openapi_document.py), with the bearer key, on every operation
    assert doc["servers"][0]["url"].startswith(local_stack.api_url)
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (make api-key), sent as Authorization: Bearer <key>",
    }
    operations = [op for ops in doc["paths"].values() for op in ops.values()]
    assert all(op["security"] == [{"ApiKey": []}] and op["tags"] for op in operations)
    assert "links" in doc["paths"]["/customers"]["post"]["responses"]["201"]
    page = requests.get(f"{local_stack.api_url}/docs", timeout=30)
    assert page.status_code == 200 and local_stack.api_url in page.text


def _figures(stdout: str, junit_dir: Path) -> tuple[int, Counter[str], Counter[str]]:
    """(cases generated, failures per check, failures per operation) from the run's output and JUnit."""
    generated = re.search(r"(\d+) generated", stdout)
    per_check: Counter[str] = Counter()
    for code, title, count in re.findall(r"❌ (ST\d+) ([^:\n]+): (\d+)", stdout):
        per_check[f"{code} {title.strip()}"] += int(count)
    per_operation: Counter[str] = Counter()
    for report in junit_dir.glob("*.xml"):
        for case in ET.parse(report).getroot().iter("testcase"):
            failures = len(case.findall("failure")) + len(case.findall("error"))
            if failures:
                per_operation[case.get("name", "?")] += failures
    return int(generated.group(1)) if generated else 0, per_check, per_operation


@pytest.mark.slow
def test_schemathesis_finds_nothing(local_stack, tmp_path, report):
    # Given the stack's document, its key, and the fuzzer's hooks for what JSON Schema cannot state
    url = local_stack.api_url
    command = [
        str(SCHEMATHESIS),
        "--no-color",
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--url",
        url,
        "-H",
        f"Authorization: Bearer {local_stack.api_key}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        # its default (10 s) failed one request in a run on a machine loaded by other test runs; a slow
        # answer is not what this gate is about (bench measures latency)
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    if os.environ.get("CI"):
        command += ["--seed", CI_SEED]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "shared"), str(REPO_ROOT)]),
    }
    # When schemathesis runs every phase against it
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=3600)
    generated, per_check, per_operation = _figures(run.stdout, tmp_path)
    seed = re.search(r"Seed: (\d+)", run.stdout)
    lines = [
        f"\nschemathesis run (checks all but {', '.join(EXCLUDED_CHECKS)}; max-examples {MAX_EXAMPLES}; "
        f"seed {seed.group(1) if seed else '?'}): cases generated={generated} "
        f"failures={sum(per_check.values())} exit={run.returncode}",
        *(f"  {check}: {n}" for check, n in sorted(per_check.items())),
        *(f"  {operation}: {n} failure(s)" for operation, n in sorted(per_operation.items())),
    ]
    report("\n".join(lines))
    if run.returncode != 0:
        report(run.stdout[-20000:] + run.stderr[-5000:])
    # Then it generated enough cases, and no check failed
    assert generated >= MIN_CASES
    assert per_check == Counter() and per_operation == Counter()
    assert run.returncode == 0
