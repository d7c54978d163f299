"""Build the template's resources in the current (moto) AWS, reading template.yaml itself."""

from __future__ import annotations

from pathlib import Path

import boto3

from local.cfn import Template


def create_template_resources(template_path: Path) -> dict[str, str]:
    """Create every table, bucket and queue of the template; returns logical id -> physical id (Ref)."""
    template = Template(template_path, stage="test")
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    out: dict[str, str] = {}
    for lid in template.creation_order(template.of_type("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue")):
        rtype = template.resources[lid]["Type"]
        props = template.resolved_properties(lid)
        name = str(template.ref(lid)).rsplit("/", 1)[-1]
        if rtype == "AWS::DynamoDB::Table":
            kwargs = {
                "TableName": name,
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": "PAY_PER_REQUEST",
            }
            if props.get("GlobalSecondaryIndexes"):
                kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            ddb.create_table(**kwargs)
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
            out[lid] = name
        elif rtype == "AWS::S3::Bucket":
            s3.create_bucket(Bucket=name)
            out[lid] = name
        else:
            attrs = {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30))}
            out[lid] = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    return out
