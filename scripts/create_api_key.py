"""Create an API key: shown once, stored only as a SHA-256 hash with a name and scopes.

    make api-key NAME=billing-run                              # the deployed stack's table (stack outputs)
    make api-key NAME=billing-run STACK=invoices-prod REGION=eu-central-1 [PROFILE=prod]
    make api-key NAME=ci SCOPES=invoices:read TABLE=...        # an explicit table
    make api-key NAME=me ENDPOINT=<moto_url of make dev> TABLE=local-InvoicesTable   # the local stack

One boto3 session (PROFILE, or the default credential chain) and one region serve both the stack
lookup and the write: --region, else the session's region (AWS_DEFAULT_REGION, the profile), else the
region `sam deploy --guided` saved in samconfig.toml. Without --table the table is the stack's
`InvoicesTableName` output; the stack is --stack, else STACK_NAME, else samconfig.toml's stack_name.
With --endpoint-url (a local server) TABLE is needed, the region is us-east-1 unless --region says
otherwise, and dummy credentials are sent, never yours.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

LOCAL_REGION = "us-east-1"  # what `make dev`'s moto server uses


def _samconfig_deploy_parameters() -> dict[str, Any]:
    config = ROOT / "samconfig.toml"
    if not config.exists():
        return {}
    default = tomllib.loads(config.read_text()).get("default", {})
    merged: dict[str, Any] = {}
    for section in ("global", "deploy"):  # deploy's values win, as in sam deploy
        merged.update(default.get(section, {}).get("parameters", {}))
    return merged


def default_stack() -> str:
    return os.environ.get("STACK_NAME") or _samconfig_deploy_parameters().get("stack_name") or "invoice-service"


def resolve_region(session: Any, explicit: str | None, endpoint_url: str | None) -> str:
    if explicit:
        return explicit
    if endpoint_url:  # the local stack's moto lives in us-east-1, whatever the profile says
        return LOCAL_REGION
    region = session.region_name or _samconfig_deploy_parameters().get("region")
    if region:
        return str(region)
    raise SystemExit("no AWS region: pass REGION=... (--region), or configure one (AWS_DEFAULT_REGION, the profile)")


def stack_table(session: Any, region: str, stack_name: str) -> str:
    from botocore.exceptions import ClientError

    cloudformation = session.client("cloudformation", region_name=region)
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        raise SystemExit(
            f"cannot read stack {stack_name!r} in {region}: {exc.response['Error'].get('Message', exc)}\n"
            "(set STACK=... and REGION=..., or give TABLE=...)"
        ) from None
    for out in stacks[0].get("Outputs", []):
        if out["OutputKey"] == "InvoicesTableName":
            return str(out["OutputValue"])
    raise SystemExit(f"stack {stack_name} in {region} has no InvoicesTableName output")


def bind_store(session: Any, table: str, region: str, endpoint_url: str | None) -> Any:
    """The store's repository on `table` in `region`, with the session's own credentials (PynamoDB
    would otherwise build its own botocore session from the environment)."""
    from invoicing.store.models import TableItem
    from invoicing.store.repository import Repository

    if endpoint_url:
        access_key, secret_key, token = "testing", "testing", None  # real credentials never go to a local server
    else:
        credentials = session.get_credentials()
        if credentials is None:
            raise SystemExit("no AWS credentials found (profile, environment or instance role)")
        frozen = credentials.get_frozen_credentials()
        access_key, secret_key, token = frozen.access_key, frozen.secret_key, frozen.token
    TableItem.Meta.aws_access_key_id = access_key
    TableItem.Meta.aws_secret_access_key = secret_key
    TableItem.Meta.aws_session_token = token
    TableItem.Meta.host = endpoint_url
    return Repository(table, region)  # binds table and region, and drops cached connections


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--scopes", default="invoices:read,invoices:write")
    parser.add_argument("--table", help="the InvoicesTable's name (default: the stack's InvoicesTableName output)")
    parser.add_argument("--stack", help="CloudFormation stack (default: STACK_NAME, else samconfig.toml)")
    parser.add_argument("--region", help="AWS region of the stack and table (default: the session's region)")
    parser.add_argument("--profile", help="AWS profile (default: AWS_PROFILE or the default credential chain)")
    parser.add_argument("--endpoint-url", help="a local AWS endpoint (moto), e.g. make dev's")
    args = parser.parse_args(argv)
    if not args.name:
        raise SystemExit("NAME is required: make api-key NAME=billing-run")

    import boto3

    session = boto3.Session(profile_name=args.profile or None)
    if args.endpoint_url and not (args.table or os.environ.get("TABLE_NAME")):
        raise SystemExit("with ENDPOINT, give TABLE too (make dev's is local-InvoicesTable)")
    region = resolve_region(session, args.region, args.endpoint_url)
    table = args.table or os.environ.get("TABLE_NAME") or stack_table(session, region, args.stack or default_stack())
    repo = bind_store(session, table, region, args.endpoint_url)

    from pynamodb.exceptions import PynamoDBException

    from invoicing.errors import ValidationFailed
    from invoicing.use_cases.api_keys import create_api_key

    try:
        key = create_api_key(args.name, [s.strip() for s in args.scopes.split(",") if s.strip()], repo=repo)
    except ValidationFailed as exc:
        raise SystemExit(exc.message) from None
    except PynamoDBException as exc:
        raise SystemExit(f"cannot write the key to table {table} in {region}: {exc.msg}") from None
    print(f"API key for {args.name!r} in table {table} ({region}); shown once, store it now:\n{key}")


if __name__ == "__main__":
    main()
