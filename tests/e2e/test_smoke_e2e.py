"""`make smoke` against the stack `make dev` runs: scripts/smoke.py as a user runs it after a deploy."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import requests

from local.testing import REPO_ROOT

pytestmark = pytest.mark.e2e

STEPS = ("create-customer", "create-draft", "add-line", "finalize", "pdf", "pay-page", "record-payment", "events")


def run_smoke(local_stack, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMOKE_API_KEY": key or local_stack.api_key}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "smoke.py"), "--url", local_stack.api_url, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_smoke_script_passes_every_step_against_the_local_stack(local_stack):
    # Given the running stack and an API key in the environment (never on the command line)
    # When the smoke script runs against it
    result = run_smoke(local_stack, "--timeout", "90")

    # Then it exits 0 having printed one ok line per step, in order
    assert result.returncode == 0, result.stdout + result.stderr
    ok_steps = [m.group(1) for m in re.finditer(r"^ok (\S+) \(\d+ ms\)", result.stdout, re.MULTILINE)]
    assert ok_steps == list(STEPS), result.stdout
    assert "smoke test passed" in result.stdout
    # And neither the API key nor a pay token is printed
    output = result.stdout + result.stderr
    assert local_stack.api_key not in output
    pay_paths = re.findall(r"/pay/(\S+)", output)
    assert pay_paths and set(pay_paths) == {"<redacted>"}, pay_paths
    # And it says what it could not clean up
    assert "finalized invoices are never deleted" in result.stdout


def test_smoke_data_is_marked_as_such(local_stack):
    # Given a passed smoke run
    result = run_smoke(local_stack)
    assert result.returncode == 0, result.stdout + result.stderr
    customer_id = re.search(r"^ok create-customer .* customer (\S+)", result.stdout, re.MULTILINE).group(1)
    invoice_id = re.search(r"^ok create-draft .* invoice (\S+)", result.stdout, re.MULTILINE).group(1)

    # When its customer and invoice are read back
    headers = {"Authorization": f"Bearer {local_stack.api_key}"}
    customer = requests.get(f"{local_stack.api_url}/customers/{customer_id}", headers=headers, timeout=30).json()
    invoice = requests.get(f"{local_stack.api_url}/invoices/{invoice_id}", headers=headers, timeout=30).json()

    # Then both say they are smoke data, and the invoice is paid
    assert customer["name"].startswith("smoke-test") and customer["metadata"]["smoke_test"] == "true"
    assert invoice["metadata"]["smoke_test"] == "true" and invoice["status"] == "paid"


def test_smoke_script_fails_clearly_on_a_wrong_key(local_stack):
    # Given a key the stack does not know
    # When the smoke script runs with it
    result = run_smoke(local_stack, key="inv_not-a-key")

    # Then it exits 1 naming the failed step and the status, without echoing the key
    assert result.returncode == 1
    assert "FAIL create-customer: POST /customers answered 401" in result.stdout
    assert "inv_not-a-key" not in result.stdout + result.stderr


def test_a_key_made_by_make_api_key_against_the_local_stack_passes_the_smoke_test(local_stack):
    # Given a key created the way `make api-key ENDPOINT=... TABLE=...` does, from a shell whose
    # profile region is not the local stack's
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1"}
    env.pop("TABLE_NAME", None)
    created = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "create_api_key.py"),
            "--name",
            "smoke-e2e",
            "--endpoint-url",
            local_stack.dynamodb_url,  # DynamoDB Local (or moto when Java is missing), as make dev prints
            "--table",
            "local-InvoicesTable",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]

    # When the smoke test runs with it
    result = run_smoke(local_stack, key=key)

    # Then it passes
    assert result.returncode == 0, result.stdout + result.stderr
