"""Add a person to the finance console: a user of the console's Cognito user pool, in one group.

- On AWS (``--stack NAME``): the pool comes from the stack's ``ConsoleUserPoolId`` output. Cognito
  e-mails the person a temporary password; at the first sign-in the console asks for their own.
- Locally (``--local URL``, what ``make console-user`` does by default): the running ``make dev`` stack
  (its /_local/resources) names the pool and the local AWS; the user gets a password printed here.

Groups: viewer (read), clerk (write), admin (also users, API keys, tax and exchange rates).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import urllib.request

GROUPS = ("viewer", "clerk", "admin")


def _local_pool(url: str) -> tuple[str, str]:
    """(user pool id, local AWS endpoint) of a running local stack."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/_local/resources", timeout=10) as response:
            described = json.loads(response.read())
    except OSError as exc:
        sys.exit(f"console-user: no local stack answers at {url} ({exc}); start it with `make dev`")
    pools = [r["id"] for r in described["resources"].values() if r.get("type") == "user_pool"]
    if len(pools) != 1:
        sys.exit(f"console-user: expected one user pool in the local stack, found {len(pools)}")
    return pools[0], str(described["moto_url"])


def _stack_pool(session: object, stack: str) -> str:
    outputs = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])  # type: ignore[attr-defined]
    for output in outputs:
        if output["OutputKey"] == "ConsoleUserPoolId":
            return str(output["OutputValue"])
    sys.exit(f"console-user: stack {stack} has no ConsoleUserPoolId output (deploy the console first)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--email", required=True)
    parser.add_argument("--group", choices=GROUPS, default="viewer")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed stack's name (AWS)")
    where.add_argument("--local", metavar="URL", help="the running local stack, e.g. http://127.0.0.1:3000")
    parser.add_argument("--region")
    parser.add_argument("--profile")
    args = parser.parse_args(argv)
    email = args.email.strip().lower()
    if "@" not in email or len(email) > 254:
        sys.exit("console-user: EMAIL must be an e-mail address")

    import boto3

    if args.local:
        pool_id, endpoint = _local_pool(args.local)
        idp = boto3.client(
            "cognito-idp",
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
    else:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        pool_id = _stack_pool(session, args.stack)
        idp = session.client("cognito-idp")

    attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
    if args.local:
        password = "Local-" + secrets.token_urlsafe(12) + "-7q"  # every character class a pool may require
        idp.admin_create_user(UserPoolId=pool_id, Username=email, UserAttributes=attributes, MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=password, Permanent=True)
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=args.group)
        print(f"console-user: {email} ({args.group}) password {password}")
    else:
        # Cognito mails a temporary password; the console asks for a new one at the first sign-in
        idp.admin_create_user(
            UserPoolId=pool_id, Username=email, UserAttributes=attributes, DesiredDeliveryMediums=["EMAIL"]
        )
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=args.group)
        print(f"console-user: {email} ({args.group}) created in {pool_id}; Cognito e-mailed a temporary password")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
