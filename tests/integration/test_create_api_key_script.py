"""scripts/create_api_key.py (`make api-key`): the stack lookup and the write use one session and one
region, so a key never lands in (or fails on) another region than the stack it was looked up in."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.cfn import Template
from local.resources import ResourceManager
from tests.conftest import ROOT

STACK_REGION = "eu-central-1"
STACK_NAME = "invoices-smoke-test"
_CREDENTIALS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("create_api_key_script", ROOT / "scripts" / "create_api_key.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _RegionAWS:
    """What ResourceManager needs of an AWS, in the stack's region."""

    def __init__(self, region: str) -> None:
        self.region = region

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)


@pytest.fixture
def restore_store_binding() -> Iterator[None]:
    """The script binds the store's models to its table, region and credentials; later tests rebind."""
    from invoicing.store.models import TableItem

    saved = {name: getattr(TableItem.Meta, name, None) for name in ("table_name", "region", "host")}
    saved.update({name: getattr(TableItem.Meta, name, None) for name in _CREDENTIALS})
    yield
    for name, value in saved.items():
        setattr(TableItem.Meta, name, value)
    from invoicing.store.models import bind

    bind(saved["table_name"], saved["region"])


@pytest.fixture
def deployed_stack(restore_store_binding: None) -> Iterator[str]:
    """The template's tables in eu-central-1 only, and a stack there whose outputs name the table."""
    with mock_aws():
        template = Template(ROOT / "template.yaml", stage="test")
        ResourceManager(template, _RegionAWS(STACK_REGION)).create_all()  # type: ignore[arg-type]
        table = str(template.ref("InvoicesTable"))
        boto3.client("cloudformation", region_name=STACK_REGION).create_stack(
            StackName=STACK_NAME,
            TemplateBody=json.dumps(
                {
                    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                    "Outputs": {"InvoicesTableName": {"Value": table}},
                }
            ),
        )
        yield table


def key_item(table: str, printed: str) -> dict[str, Any] | None:
    from invoicing.use_cases.api_keys import hash_key

    key = printed.strip().splitlines()[-1]
    assert key.startswith("inv_")
    response = boto3.client("dynamodb", region_name=STACK_REGION).get_item(
        TableName=table, Key={"pk": {"S": f"APIKEY#{hash_key(key)}"}, "sk": {"S": "APIKEY"}}
    )
    return response.get("Item")


def test_region_flag_serves_both_the_stack_lookup_and_the_write(deployed_stack, monkeypatch, capsys):
    # Given a shell whose region (AWS_REGION, AWS_DEFAULT_REGION) is us-east-1, not the stack's
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("TABLE_NAME", raising=False)

    # When a key is created with --stack and --region eu-central-1
    load_script().main(["--name", "billing-run", "--stack", STACK_NAME, "--region", STACK_REGION])

    # Then the key is in the stack's table in eu-central-1, with its name and scopes
    printed = capsys.readouterr().out
    assert f"in table {deployed_stack} ({STACK_REGION})" in printed
    item = key_item(deployed_stack, printed)
    assert item is not None and item["name"]["S"] == "billing-run"
    assert sorted(s["S"] for s in item["scopes"]["L"]) == ["invoices:read", "invoices:write"]


def test_without_a_region_flag_the_sessions_region_serves_both(deployed_stack, monkeypatch, capsys):
    # Given the session's region (AWS_DEFAULT_REGION) is the stack's, and AWS_REGION, which the old
    # script wrote through, says another
    monkeypatch.setenv("AWS_DEFAULT_REGION", STACK_REGION)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("TABLE_NAME", raising=False)

    # When a key is created with only the stack's name
    load_script().main(["--name", "ci", "--scopes", "invoices:read", "--stack", STACK_NAME])

    # Then it lands in the session's region, read-only as asked
    item = key_item(deployed_stack, capsys.readouterr().out)
    assert item is not None and [s["S"] for s in item["scopes"]["L"]] == ["invoices:read"]


def test_an_unknown_stack_names_the_stack_and_region(deployed_stack, monkeypatch):
    # Given no stack of that name in the region
    monkeypatch.delenv("TABLE_NAME", raising=False)

    # When a key is asked for against it
    with pytest.raises(SystemExit) as exited:
        load_script().main(["--name", "x", "--stack", "no-such-stack", "--region", STACK_REGION])

    # Then the message says which stack and region were tried, and how to point elsewhere
    assert "no-such-stack" in str(exited.value) and STACK_REGION in str(exited.value)
    assert "REGION=" in str(exited.value)
