"""Lambda REQUEST authorizer: `Authorization: Bearer <api key>` -> principal + scopes.

No key or an unknown/revoked key raises "Unauthorized" (API Gateway answers 401). A valid key gets a
policy that allows only the methods its scopes grant (GET -> invoices:read, others ->
invoices:write; POST /billing-runs* also -> billing_runs:write, which the route itself
requires); everything else is denied (403). The key itself is never logged.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from invoicing.observability import logger
from invoicing.root import get_services
from invoicing.use_cases.api_keys import authorize

READ_METHODS = ("GET", "HEAD")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _header(headers: dict[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def build_policy(method_arn: str, scopes: tuple[str, ...]) -> dict[str, Any]:
    # arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{METHOD}/{resource...}
    arn_prefix, _, path = method_arn.partition("/")
    stage = path.split("/", 1)[0]
    base = f"{arn_prefix}/{stage}"
    allowed: list[str] = []
    if "invoices:read" in scopes:
        allowed += [f"{base}/{m}/*" for m in READ_METHODS]
    if "invoices:write" in scopes:
        allowed += [f"{base}/{m}/*" for m in WRITE_METHODS]
    elif "billing_runs:write" in scopes:  # a billing-run-only key: submitting and starting runs
        allowed += [f"{base}/POST/billing-runs", f"{base}/POST/billing-runs/*"]
    statements = [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": allowed}] if allowed else []
    if not statements:
        statements = [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{base}/*"]}]
    return {"Version": "2012-10-17", "Statement": statements}


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handle_authorize_request(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    principal = authorize(get_services().repo, _header(event.get("headers"), "Authorization"))
    if principal is None:
        logger.info("request not authorized", extra={"path": event.get("path"), "method": event.get("httpMethod")})
        raise Exception("Unauthorized")  # the exact message API Gateway turns into a 401
    return {
        "principalId": principal.name,
        "policyDocument": build_policy(event["methodArn"], principal.scopes),
        "context": {"principal": principal.actor, "scopes": " ".join(principal.scopes)},
    }
