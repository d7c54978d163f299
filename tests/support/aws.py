"""Build the template's resources in the current (moto in-process) AWS with the local runtime's own
ResourceManager, so the tests and `make dev` create resources from template.yaml the same way."""

from __future__ import annotations

import os
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import boto3
from moto.kms import models as _kms_models

from local.cfn import Template
from local.resources import ResourceManager

_generate_private_key = _kms_models.generate_private_key


@lru_cache(maxsize=1)
def _one_rsa_key() -> Any:
    return _generate_private_key("RSA_2048")


def _private_key(key_spec: str) -> Any:
    """moto gives every KMS key an RSA-2048 private key, symmetric ones too (which never use it): ~50 ms
    of CPU per key, two keys per test. A symmetric key gets one shared key; asymmetric ones their own."""
    return _one_rsa_key() if key_spec in ("", "SYMMETRIC_DEFAULT", None) else _generate_private_key(key_spec)


_kms_models.generate_private_key = _private_key


class _InProcessAWS:
    """What ResourceManager needs of an AWS: clients and a region (here: moto's mock_aws)."""

    region = "us-east-1"

    def client(self, service: str) -> Any:
        return _client(service, self.region, os.environ.get("AWS_ENDPOINT_URL"))


@cache
def _client(service: str, region: str, endpoint: str | None) -> Any:
    """One client per service (and endpoint) for the test process: moto's mock_aws intercepts any
    client's requests while it is active, so a client outlives the mock it was made in (making one
    costs ~10 ms of CPU, and the template needs 14)."""
    return boto3.client(service, region_name=region)


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
