"""Build the template's resources in the current (moto in-process) AWS with the local runtime's own
ResourceManager, so the tests and `make dev` create resources from template.yaml the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from local.cfn import Template
from local.resources import ResourceManager


class _InProcessAWS:
    """What ResourceManager needs of an AWS: clients and a region (here: moto's mock_aws)."""

    region = "us-east-1"

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)


#: what most tests need; the console's user pool and session secret cost as much again to make in moto
DATA_TYPES = (
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::KMS::Key",
    "AWS::Events::EventBus",
)
IDENTITY_TYPES = (
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolGroup",
    "AWS::SecretsManager::Secret",
)


def create_template_resources(template_path: Path, types: tuple[str, ...] = DATA_TYPES) -> dict[str, str]:
    """Create the template's tables, buckets, queues, KMS keys and event buses (``types``; IDENTITY_TYPES adds the user pool and
    secrets); returns logical id -> physical id (Ref) of the tables, buckets, queues, pools and secrets."""
    template = Template(template_path, stage="test")
    ResourceManager(template, _InProcessAWS()).create_all(types)  # type: ignore[arg-type]
    kinds = (
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::SQS::Queue",
        "AWS::KMS::Key",
        "AWS::Cognito::UserPool",
        "AWS::Cognito::UserPoolClient",
        "AWS::SecretsManager::Secret",
    )
    made = set(template.of_type(*types))
    return {lid: str(template.ref(lid)) for lid in template.of_type(*kinds) if lid in made}
