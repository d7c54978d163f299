"""Translate template.yaml as `sam deploy` does, with the SAM CLI's own samtranslator.

Runs under .tools/sam/bin/python (the SAM CLI's venv), so it imports nothing from this repo:

    .tools/sam/bin/python scripts/deploy_check/translate.py template.yaml out.json

What `sam deploy` changes before CloudFormation's transform sees the template, done here offline:
local CodeUri/ContentUri/DefinitionUri become s3:// placeholders (the package step uploads them),
parameters take their defaults, pseudo parameters get fixed values, and the managed-policy map,
which SAM reads from IAM, is a fixed list. Prints one JSON line: resource counts, policy look-ups.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# The AWS managed policies SAM may look up by name for this template: the function roles get
# AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess (Tracing: Active) and, for SQS events,
# AWSLambdaSQSQueueExecutionRole. SAM spells those ARNs itself; the loader only answers names used
# in `Policies`, and it records every call so a new name cannot slip through as a guess.
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for path, name in (
        ("service-role/", "AWSLambdaBasicExecutionRole"),
        ("", "AWSXrayWriteOnlyAccess"),
        ("service-role/", "AWSLambdaSQSQueueExecutionRole"),
        ("service-role/", "AWSLambdaDynamoDBExecutionRole"),
        ("service-role/", "AWSLambdaRole"),
    )
}
PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::StackName": "invoice-service",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/invoice-service/deploy-check",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
}
CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}


class FixedPolicyLoader:
    """Stands in for samtranslator's ManagedPolicyLoader (which calls IAM ListPolicies)."""

    def __init__(self) -> None:
        self.calls = 0

    def load(self) -> dict[str, str]:
        self.calls += 1
        return dict(MANAGED_POLICIES)


def with_s3_placeholders(template: dict[str, Any]) -> int:
    """Replace local code paths by the s3:// URIs `sam package` would write; returns how many."""
    replaced = 0
    for logical_id, resource in template.get("Resources", {}).items():
        key = CODE_PROPERTIES.get(resource.get("Type", ""))
        props = resource.get("Properties") or {}
        if key and isinstance(props.get(key), str) and not props[key].startswith("s3://"):
            props[key] = f"s3://deploy-check-artifacts/{logical_id}.zip"
            replaced += 1
    return replaced


def parameter_defaults(template: dict[str, Any]) -> dict[str, Any]:
    values = {name: spec["Default"] for name, spec in template.get("Parameters", {}).items() if "Default" in spec}
    values.update(PSEUDO_PARAMETERS)
    return values


def main(argv: list[str]) -> int:
    source, target = argv[1], argv[2]
    # `sam deploy --region`: SAM builds ARNs and reads AWS::Region from the boto session's region
    os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = PSEUDO_PARAMETERS["AWS::Region"]
    with open(source, encoding="utf-8") as handle:
        template = yaml_parse(handle.read())
    placeholders = with_s3_placeholders(template)
    loader = FixedPolicyLoader()
    try:
        translated = transform(template, parameter_defaults(template), loader)
    except InvalidDocumentException as exc:
        causes = [str(cause) for cause in exc.causes] or [str(exc)]
        print(json.dumps({"ok": False, "errors": causes}))
        return 1
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(translated, handle, indent=1, sort_keys=True)
    print(
        json.dumps(
            {
                "ok": True,
                "resources": len(translated.get("Resources", {})),
                "placeholders": placeholders,
                "policy_loader_calls": loader.calls,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
