"""Create an API key: shown once, stored only as a SHA-256 hash with a name and scopes.

    make api-key NAME=billing-run                         # against the deployed stack (TABLE from the stack)
    make api-key NAME=ci SCOPES=invoices:read TABLE=...   # explicit table
    make api-key NAME=me ENDPOINT=http://127.0.0.1:4566   # against a local moto server

Without TABLE, the table name is read from the CloudFormation stack's `InvoicesTableName` output
(stack name from STACK_NAME or samconfig.toml's default).
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))


def _stack_table(stack_name: str) -> str:
    import boto3

    outputs = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0].get("Outputs", [])
    for out in outputs:
        if out["OutputKey"] == "InvoicesTableName":
            return out["OutputValue"]
    raise SystemExit(f"stack {stack_name} has no InvoicesTableName output")


def _default_stack() -> str:
    config = ROOT / "samconfig.toml"
    if config.exists():
        data = tomllib.loads(config.read_text())
        default = data.get("default", {})
        for section in ("deploy", "global"):
            name = default.get(section, {}).get("parameters", {}).get("stack_name")
            if name:
                return name
    return "invoice-service"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--scopes", default="invoices:read,invoices:write")
    parser.add_argument("--table")
    parser.add_argument("--endpoint-url")
    args = parser.parse_args()
    if not args.name:
        raise SystemExit("NAME is required: make api-key NAME=billing-run")
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    table = args.table or os.environ.get("TABLE_NAME") or _stack_table(os.environ.get("STACK_NAME") or _default_stack())
    os.environ["TABLE_NAME"] = table

    from invoicing.use_cases.api_keys import create_api_key

    key = create_api_key(args.name, [s.strip() for s in args.scopes.split(",") if s.strip()])
    print(f"API key for {args.name!r} (shown once, store it now):\n{key}")


if __name__ == "__main__":
    main()
