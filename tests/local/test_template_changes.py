"""The runtime follows the template: new resources need no runtime change; data can persist."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from local.testing import start_local_stack

from .conftest import FIXTURE_APP

EXTRA_RESOURCES = """
  ExtraTable:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-extra-${Stage}"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - { AttributeName: id, AttributeType: S }
      KeySchema:
        - { AttributeName: id, KeyType: HASH }

  ExtraQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 42
      FifoQueue: true
"""


@pytest.fixture
def app_copy(tmp_path: Path) -> Path:
    target = tmp_path / "app"
    shutil.copytree(FIXTURE_APP, target)
    return target


def test_a_new_table_and_queue_in_the_template_exist_locally(app_copy: Path) -> None:
    template = app_copy / "template.yaml"
    text = template.read_text()
    assert text.rstrip().splitlines()[-1].startswith("      LogGroupName")  # Resources is the last section
    template.write_text(text.rstrip() + "\n" + EXTRA_RESOURCES)
    stack = start_local_stack(["--template", str(template), "--no-api-key", "--no-schedules", "--stack-name", "demo"])
    try:
        tables = stack.client("dynamodb").list_tables()["TableNames"]
        assert "demo-extra-local" in tables and "demo-DataTable" in tables
        sqs = stack.client("sqs")
        url = sqs.get_queue_url(QueueName="demo-ExtraQueue.fifo")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["VisibilityTimeout"] == "42" and attributes["FifoQueue"] == "true"
    finally:
        stack.stop()
        stack.cleanup()


def test_persist_keeps_items_and_objects_across_restarts(app_copy: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ["--template", str(app_copy / "template.yaml"), "--no-api-key", "--no-schedules", "--persist", str(data)]
    first = start_local_stack(args)
    try:
        first.client("dynamodb").put_item(
            TableName="local-DataTable",
            Item={"pk": {"S": "keep"}, "sk": {"S": "1"}, "blob": {"B": b"\x00\x01"}, "m": {"M": {"x": {"N": "1"}}}},
        )
        first.client("s3").put_object(
            Bucket="local-filesbucket", Key="a/b.pdf", Body=b"%PDF", ContentType="application/pdf"
        )
    finally:
        code = first.stop()
        first.cleanup()
    assert code == 0
    assert (data / "manifest.json").exists()
    second = start_local_stack(args)
    try:
        item = second.client("dynamodb").get_item(
            TableName="local-DataTable", Key={"pk": {"S": "keep"}, "sk": {"S": "1"}}
        )["Item"]
        assert item["blob"]["B"] == b"\x00\x01" and item["m"] == {"M": {"x": {"N": "1"}}}
        obj = second.client("s3").get_object(Bucket="local-filesbucket", Key="a/b.pdf")
        assert obj["Body"].read() == b"%PDF" and obj["ContentType"] == "application/pdf"
    finally:
        second.stop()
        second.cleanup()
