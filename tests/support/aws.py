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


def create_template_resources(template_path: Path) -> dict[str, str]:
    """Create every table, bucket, queue and KMS key of the template; returns logical id -> physical id (Ref)."""
    template = Template(template_path, stage="test")
    ResourceManager(template, _InProcessAWS()).create_all()  # type: ignore[arg-type]
    kinds = ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::KMS::Key")
    return {lid: str(template.ref(lid)) for lid in template.of_type(*kinds)}
