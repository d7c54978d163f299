"""template.yaml policy: least privilege, encryption, backups, dead-letter queues, logs, alarms, lint.

Reads the template with the local runtime's own reader (local.cfn.Template), so intrinsics resolve the
way `make dev` resolves them. Every IAM statement is compared with a declared map of what each
function needs (EXPECTED_ACCESS below): an extra permission fails, and so does a missing one.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from local.cfn import NO_VALUE, Template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FUNCTION = "AWS::Serverless::Function"

T = "InvoicesTable"
IDEM = "IdempotencyTable"
SES = "ses:identity/{ReminderSesIdentity}"
STRIPE_PARAMS = ("ssm:parameter{StripeSecretKeyParam}", "ssm:parameter{StripeWebhookSecretParam}")


def _grant(actions: str, *resources: str) -> set[tuple[str, str]]:
    return {(f"{action}", resource) for action in actions.split() for resource in resources}


# What each function may do: (action, resource) pairs, resources named by logical id (and index or
# key prefix). Keep it in step with the code: a new store call needs a line here AND in the template.
EXPECTED_ACCESS: dict[str, set[tuple[str, str]]] = {
    # authorize(): the key's item by its hash (GetItem); nothing else
    "AuthorizerFunction": _grant("dynamodb:GetItem", T),
    # the admin API: invoices, lines and events (reads, queries, transactions of Put/Update/Delete/
    # ConditionCheck, BatchWriteItem for a deleted draft's items), tax rates (BatchGetItem), lists on
    # gsi1 (a customer's invoices), gsi2 (by status, tax rates) and the event feed (feed, keys only,
    # then BatchGetItem); Powertools idempotency records;
    # render jobs; pre-signed PDF links (invoices/ and credit-notes/); manual reminders through SES
    "ApiFunction": _grant(
        "dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:DeleteItem dynamodb:Query "
        "dynamodb:BatchGetItem dynamodb:BatchWriteItem dynamodb:ConditionCheckItem",
        T,
    )
    | _grant("dynamodb:Query", f"{T}/index/gsi1", f"{T}/index/gsi2", f"{T}/index/feed")
    | _grant("dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:DeleteItem", IDEM)
    | _grant("sqs:SendMessage", "RenderQueue", "WebhookQueue", "BillingRunQueue", "BillingRunStartQueue")
    | _grant("s3:PutObject s3:GetObject", "DocumentsBucket/billing-runs/*")
    | _grant("kms:Encrypt kms:Decrypt", "WebhookSecretsKey")
    | _grant("s3:GetObject", "DocumentsBucket/invoices/*", "DocumentsBucket/credit-notes/*")
    | _grant("ses:SendEmail", SES),
    # the PDF worker: reads the invoice (GetItem, Query), a credit note by its id (gsi1), records the
    # PDF + its event in a transaction (UpdateItem + PutItem), writes under invoices/ or credit-notes/,
    # reads the seller's logo under branding/ (SellerLogoKey)
    "RenderPdfFunction": _grant(
        "dynamodb:GetItem dynamodb:Query dynamodb:UpdateItem dynamodb:PutItem dynamodb:BatchGetItem", T
    )
    | _grant("dynamodb:Query", f"{T}/index/gsi1")
    | _grant("s3:PutObject", "DocumentsBucket/invoices/*", "DocumentsBucket/credit-notes/*")
    | _grant("s3:GetObject", "DocumentsBucket/branding/*"),
    # the repair job: the sparse pending-PDF index, each header, re-enqueue
    "RepairPdfsFunction": _grant("dynamodb:Query", f"{T}/index/pdf_pending")
    | _grant("dynamodb:GetItem", T)
    | _grant("sqs:SendMessage", "RenderQueue"),
    # the public pay page and webhook: link by token hash (gsi1), invoice, pay transaction (Put/Update),
    # rate-limit counters (UpdateItem), pre-signed PDF links; Stripe secrets only with PaymentProvider=stripe
    "PayFunction": _grant("dynamodb:GetItem dynamodb:Query", T, f"{T}/index/gsi1")
    | _grant("dynamodb:PutItem dynamodb:UpdateItem", T)
    | _grant("s3:GetObject", "DocumentsBucket/invoices/*"),
    # the daily reminder run: the due index, expired claims and a first run's oldest open invoice (gsi2),
    # customers (BatchGetItem), the run cursor (GetItem, UpdateItem), each decided invoice's due-index
    # entry moved (UpdateItem in a one-item transaction), one job per invoice on the reminder queue
    "SendRemindersFunction": _grant("dynamodb:Query", f"{T}/index/due", f"{T}/index/gsi2")
    | _grant("dynamodb:BatchGetItem dynamodb:GetItem dynamodb:UpdateItem", T)
    | _grant("sqs:SendMessage", "ReminderQueue"),
    # the reminder worker: ledger claim/sent transactions (ConditionCheck on the invoice), events,
    # payment links, dunning's transition; pre-signed PDF links in mails; SES; the pay links' base URL
    "ReminderWorkerFunction": _grant(
        "dynamodb:GetItem dynamodb:Query dynamodb:PutItem dynamodb:UpdateItem dynamodb:ConditionCheckItem", T
    )
    | _grant("s3:GetObject", "DocumentsBucket/invoices/*")
    | _grant("ses:SendEmail", SES)
    | _grant("ssm:GetParameter", "PublicBaseUrlParameter"),
    # the billing-run worker: create and finalize as the API does (reads, BatchGetItem for finalize's
    # inputs and the batch's recorded results, transactions of Put/Update/ConditionCheck), the PDF job
    "BillingRunWorkerFunction": _grant(
        "dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:Query dynamodb:BatchGetItem "
        "dynamodb:ConditionCheckItem",
        T,
    )
    | _grant("sqs:SendMessage", "RenderQueue"),
    # the billing-run starter: the run item's checkpoint and counts and the bad lines' results (one
    # transaction of Update + Puts), the drafts to the worker's queue, its own next message, the upload
    "BillingRunStarterFunction": _grant("dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem", T)
    | _grant("sqs:SendMessage", "BillingRunQueue", "BillingRunStartQueue")
    | _grant("s3:GetObject", "DocumentsBucket/billing-runs/*"),
    # the finance console calls the same use cases as the API in process, so the same table, index,
    # idempotency, queue, S3 and SES rights; and the HMAC key of its session cookies
    "ConsoleFunction": _grant(
        "dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:DeleteItem dynamodb:Query "
        "dynamodb:BatchGetItem dynamodb:BatchWriteItem dynamodb:ConditionCheckItem",
        T,
    )
    | _grant("dynamodb:Query", f"{T}/index/gsi1", f"{T}/index/gsi2")
    | _grant("dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:DeleteItem", IDEM)
    | _grant("sqs:SendMessage", "RenderQueue")
    | _grant("s3:GetObject", "DocumentsBucket/invoices/*", "DocumentsBucket/credit-notes/*")
    | _grant("ses:SendEmail", SES)
    | _grant("secretsmanager:GetSecretValue", "ConsoleSessionSecret")
    # admins: the people of the pool and their groups; add one to a group, disable or enable one
    | _grant(
        "cognito-idp:ListUsers cognito-idp:ListUsersInGroup cognito-idp:AdminGetUser cognito-idp:AdminCreateUser "
        "cognito-idp:AdminAddUserToGroup cognito-idp:AdminDisableUser cognito-idp:AdminEnableUser",
        "ConsoleUserPool",
    ),
    # webhook fan-out: endpoints (gsi1), delivery records (conditional put, read back), one message per
    # endpoint and event, the EventBridge bus (the stream itself: SAM's execution role for the mapping)
    "WebhookFanoutFunction": _grant("dynamodb:GetItem dynamodb:PutItem", T)
    | _grant("dynamodb:Query", f"{T}/index/gsi1")
    | _grant("sqs:SendMessage", "WebhookQueue")
    | _grant("events:PutEvents", "EventBus"),
    # webhook delivery: endpoint, event and delivery records, disabling (a transaction of puts), the
    # sealed secrets, the next attempt's message
    "WebhookDeliveryFunction": _grant("dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem", T)
    | _grant("kms:Decrypt", "WebhookSecretsKey")
    | _grant("sqs:SendMessage", "WebhookQueue"),
}
# granted only when a condition of the template holds: {function: {(parameter overrides): extra pairs}}
CONDITIONAL_ACCESS: dict[str, dict[tuple[tuple[str, str], ...], set[tuple[str, str]]]] = {
    "PayFunction": {(("PaymentProvider", "stripe"),): _grant("ssm:GetParameter", *STRIPE_PARAMS)},
    # refunds through Stripe (credit notes, retries): the API key, not the webhook secret
    "ApiFunction": {(("PaymentProvider", "stripe"),): _grant("ssm:GetParameter", STRIPE_PARAMS[0])},
    "ConsoleFunction": {(("PaymentProvider", "stripe"),): _grant("ssm:GetParameter", STRIPE_PARAMS[0])},
    "BillingRunWorkerFunction": {(("PaymentProvider", "stripe"),): _grant("ssm:GetParameter", STRIPE_PARAMS[0])},
}

# A `*` in an action (any statement), or an Allow on every resource, every index, a whole bucket or
# any principal, is refused unless listed here with the reason. A Deny may be as wide as it likes.
WILDCARD_ALLOWLIST: dict[tuple[str, str], str] = {
    ("DocumentsBucketPolicy", "action:s3:*"): "the Deny of every S3 action without TLS: the wider the safer",
}


def template(**overrides: str) -> Template:
    return Template(TEMPLATE, stage="test", parameter_overrides=overrides or None)


def functions(tpl: Template) -> list[str]:
    return tpl.of_type(FUNCTION)


def _as_list(value: Any) -> list[Any]:
    if value is None or value is NO_VALUE:
        return []
    return value if isinstance(value, list) else [value]


def _symbolic(tpl: Template, resource: str) -> str:
    """A resolved ARN back to `LogicalId[/rest]` (or the parameter-named form for SES and SSM)."""
    for lid in tpl.of_type("AWS::SSM::Parameter"):
        if resource == tpl.resolve(
            {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"}
        ) + tpl.resolve({"Ref": lid}):
            return lid
    for lid in tpl.of_type(
        "AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Events::EventBus"
    ):
        arn = tpl.resolve({"Fn::GetAtt": [lid, "Arn"]})
        if resource == arn or resource.startswith(f"{arn}/"):
            return lid + resource[len(arn) :]
    for lid in tpl.of_type("AWS::SecretsManager::Secret"):
        if resource == tpl.resolve({"Ref": lid}):
            return lid
    for lid in tpl.of_type("AWS::Cognito::UserPool"):
        if resource == tpl.resolve({"Fn::GetAtt": [lid, "Arn"]}):
            return lid
    ses = tpl.resolve(
        {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${ReminderSesIdentity}"}
    )
    if resource == ses:
        return SES
    for param in ("StripeSecretKeyParam", "StripeWebhookSecretParam"):
        arn = tpl.resolve(
            {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${" + param + "}"}
        )
        if resource == arn:
            return "ssm:parameter{" + param + "}"
    return resource


def statements_of(tpl: Template, function: str) -> list[dict[str, Any]]:
    policies = tpl.resolve((tpl.resources[function].get("Properties") or {}).get("Policies"))
    out = []
    for policy in _as_list(policies):
        assert isinstance(policy, dict) and "Statement" in policy, (
            f"{function}: only inline statements are allowed (a SAM policy template or managed policy "
            f"hides its actions): {policy!r}"
        )
        out += [s for s in _as_list(policy["Statement"]) if s is not NO_VALUE]
    return out


def granted(tpl: Template, function: str) -> set[tuple[str, str]]:
    pairs = set()
    for statement in statements_of(tpl, function):
        assert statement.get("Effect") == "Allow", (function, statement)
        assert "NotAction" not in statement and "NotResource" not in statement, (function, statement)
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                pairs.add((action, _symbolic(tpl, resource)))
    return pairs


# ---------------------------------------------------------------- least privilege
def test_every_function_is_in_the_expected_access_map():
    assert set(functions(template())) == set(EXPECTED_ACCESS)


@pytest.mark.parametrize("function", sorted(EXPECTED_ACCESS))
def test_each_function_has_exactly_the_access_it_uses(function):
    for overrides, extra in [((), set()), *CONDITIONAL_ACCESS.get(function, {}).items()]:
        actual = granted(template(**dict(overrides)), function)
        expected = EXPECTED_ACCESS[function] | extra
        assert actual - expected == set(), f"{function} {dict(overrides)}: grants more than it uses"
        assert expected - actual == set(), f"{function} {dict(overrides)}: misses a permission it uses"


def _is_wide(resource: Any) -> bool:
    if not isinstance(resource, str):
        return True  # unresolved: cannot be proven narrow
    if resource == "*" or resource.endswith(":*") or resource.endswith("/index/*"):
        return True
    # an S3 key wildcard is fine below a named prefix (invoices/*), not for the whole bucket (bucket/*)
    return (
        resource.startswith("arn:aws:s3:::") and resource.split(":::", 1)[1].count("/") == 1 and resource.endswith("/*")
    )


def _wildcards(statement: dict[str, Any]) -> list[str]:
    found = [f"action:{a}" for a in _as_list(statement.get("Action")) if "*" in a]
    if statement.get("Effect") == "Allow":
        found += [f"resource:{r}" for r in _as_list(statement.get("Resource")) if _is_wide(r)]
        if statement.get("Principal") in ("*", {"AWS": "*"}):
            found.append("principal:*")
    return found


def _policy_documents(tpl: Template) -> list[tuple[str, dict[str, Any]]]:
    """(owner, statement) of every function policy and every resource policy of the template."""
    out = [(f, s) for f in functions(tpl) for s in statements_of(tpl, f)]
    kinds = (
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
    )
    for lid in tpl.of_type(*kinds):
        props = tpl.resolved_properties(lid)
        for key in ("PolicyDocument", "AssumeRolePolicyDocument"):
            out += [(lid, s) for s in _as_list((props.get(key) or {}).get("Statement"))]
    return out


def test_no_wildcard_actions_or_resources_outside_the_allowlist():
    for tpl in (template(), template(PaymentProvider="stripe")):
        found = {(owner, w): statement for owner, statement in _policy_documents(tpl) for w in _wildcards(statement)}
        assert {k: v for k, v in found.items() if k not in WILDCARD_ALLOWLIST} == {}
    for (lid, _), reason in WILDCARD_ALLOWLIST.items():
        assert reason and lid in template().resources


# ---------------------------------------------------------------- data at rest
def test_documents_bucket_blocks_public_access_encrypts_and_enforces_tls():
    tpl = template()
    (bucket,) = tpl.of_type("AWS::S3::Bucket")
    props = tpl.resolved_properties(bucket)
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    policies = [
        tpl.resolved_properties(lid)
        for lid in tpl.of_type("AWS::S3::BucketPolicy")
        if bucket in tpl.references(tpl.resources[lid]["Properties"]["Bucket"])
    ]
    assert len(policies) == 1
    arn = tpl.resolve({"Fn::GetAtt": [bucket, "Arn"]})
    tls = [
        s
        for s in policies[0]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(tls) == 1 and set(_as_list(tls[0]["Resource"])) == {arn, f"{arn}/*"}


def test_invoices_table_has_point_in_time_recovery_and_deletion_protection():
    raw = template().resources["InvoicesTable"]
    props = raw["Properties"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] == {"Ref": "TableDeletionProtection"}
    assert raw.get("DeletionPolicy") == "Retain" and raw.get("UpdateReplacePolicy") == "Retain"
    assert props["SSESpecification"]["SSEEnabled"] is True
    parameter = template().raw["Parameters"]["TableDeletionProtection"]
    assert parameter["Default"] == "true" and set(parameter["AllowedValues"]) == {"true", "false"}
    assert template().resolved_properties("InvoicesTable")["DeletionProtectionEnabled"] in ("true", True)
    off = template(TableDeletionProtection="false").resolved_properties("InvoicesTable")
    assert off["DeletionProtectionEnabled"] in ("false", False)


# ---------------------------------------------------------------- queues
def _sqs_sources(tpl: Template) -> dict[str, list[str]]:
    """queue logical id -> functions it triggers."""
    out: dict[str, list[str]] = {}
    for function in functions(tpl):
        for event in ((tpl.resources[function]["Properties"] or {}).get("Events") or {}).values():
            if event.get("Type") == "SQS":
                (queue,) = tpl.references(event["Properties"]["Queue"])
                out.setdefault(queue, []).append(function)
    return out


def _dlqs(tpl: Template) -> set[str]:
    out = set()
    for lid in tpl.of_type("AWS::SQS::Queue"):
        redrive = (tpl.resources[lid].get("Properties") or {}).get("RedrivePolicy")
        if redrive:
            out |= tpl.references(redrive["deadLetterTargetArn"])
    for function in functions(tpl):
        props = tpl.resources[function].get("Properties") or {}
        on_failure = ((props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure")
        if on_failure:
            out |= tpl.references(on_failure["Destination"])
        for event in (props.get("Events") or {}).values():
            dead_letters = (event.get("Properties") or {}).get("DeadLetterConfig")
            if dead_letters:
                out |= tpl.references(dead_letters["Arn"])
    return out


def test_scheduled_functions_keep_what_failed_for_good():
    # Given every function a schedule invokes (asynchronously: nobody waits for the answer)
    tpl = template()
    scheduled = [
        f
        for f in functions(tpl)
        if any(e.get("Type") in ("Schedule", "ScheduleV2") for e in (tpl.properties(f).get("Events") or {}).values())
    ]
    assert sorted(scheduled) == ["RepairPdfsFunction", "SendRemindersFunction"]
    for function in scheduled:
        props = tpl.properties(function)
        # Then an invocation that still fails after Lambda's retries lands in a queue ...
        on_failure = props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
        assert on_failure["Type"] == "SQS"
        (queue,) = tpl.references(on_failure["Destination"])
        # ... and so does an event the schedule could not deliver, and that queue's depth is alarmed
        for event in props["Events"].values():
            assert tpl.references(event["Properties"]["DeadLetterConfig"]["Arn"]) == {queue}
        assert tpl.resolve({"Fn::GetAtt": [queue, "QueueName"]}) in _alarmed(
            tpl, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName"
        )


def test_schedule_names_are_unique_per_stack():
    # SAM names a ScheduleV2 after its logical ids unless told: two stacks in one region would collide
    tpl = template()
    for function in functions(tpl):
        for event in (tpl.properties(function).get("Events") or {}).values():
            if event.get("Type") == "ScheduleV2":
                assert "AWS::StackName" in json.dumps(event["Properties"]["Name"])


def test_access_log_never_holds_a_pay_token():
    # pay paths carry a bearer token: only the route template may reach the log, never the real path
    tpl = template()
    log_format = tpl.resolve(tpl.properties("Api")["AccessLogSetting"]["Format"])
    entry = json.loads(log_format)  # JSON lines, one per request
    assert "$context.resourcePath" in entry.values()
    for leak in ("$context.path", "$context.requestOverride", "$context.identity.userAgent", "$input"):
        assert leak not in log_format


def test_method_settings_paths_are_encoded_as_api_gateway_wants():
    # every "/" after the first is "~1": API Gateway rejects the stage otherwise, and no linter checks it
    tpl = template()
    for setting in tpl.resolve(tpl.properties("Api")["MethodSettings"]):
        path = setting["ResourcePath"]
        assert path == "/*" or (path.startswith("/") and "/" not in path[1:]), path


def test_alarm_topic_key_lets_cloudwatch_publish():
    # alias/aws/sns cannot be used by CloudWatch alarms: their notifications would fail with AccessDenied
    tpl = template()
    key = tpl.properties("AlarmTopic")["KmsMasterKeyId"]
    assert key != "alias/aws/sns"
    (key_id,) = tpl.references(key)
    statements = tpl.resolve(tpl.properties(key_id)["KeyPolicy"])["Statement"]
    assert any(
        st["Principal"].get("Service") == "cloudwatch.amazonaws.com" and "kms:Decrypt" in st["Action"]
        for st in statements
    )


def test_every_event_source_queue_has_a_dlq_and_a_visibility_timeout_of_six_times_the_function():
    tpl = template()
    sources = _sqs_sources(tpl)
    assert sources, "no SQS event source found"
    dlqs = _dlqs(tpl)
    for queue, consumers in sources.items():
        assert queue not in dlqs
        props = tpl.resolved_properties(queue)
        redrive = props.get("RedrivePolicy")
        assert redrive, f"{queue} has no RedrivePolicy"
        assert 1 <= int(redrive["maxReceiveCount"]) <= 10
        (dlq,) = tpl.references(tpl.resources[queue]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        assert tpl.resources[dlq]["Type"] == "AWS::SQS::Queue"
        assert int(tpl.resolved_properties(dlq)["MessageRetentionPeriod"]) == 14 * 24 * 3600
        for function in consumers:
            timeout = int(tpl.resolve(tpl.properties(function)["Timeout"]))
            assert int(props["VisibilityTimeout"]) >= 6 * timeout, (queue, function)
    for queue in tpl.of_type("AWS::SQS::Queue"):
        assert queue in sources or queue in dlqs, f"{queue} is neither an event source nor a DLQ"


# ---------------------------------------------------------------- logs and alarms
def test_every_function_has_a_log_group_with_retention():
    tpl = template()
    groups = {}
    for lid in tpl.of_type("AWS::Logs::LogGroup"):
        props = tpl.resources[lid]["Properties"]
        groups[frozenset(tpl.references(props["LogGroupName"]))] = props
    for function in functions(tpl):
        props = groups.get(frozenset({function}))
        assert props is not None, f"{function} has no LogGroup"
        assert tpl.resolve(props["LogGroupName"]) == f"/aws/lambda/{tpl.ref(function)}"
        assert int(tpl.resolve(props["RetentionInDays"])) > 0


def _alarms(tpl: Template) -> list[dict[str, Any]]:
    return [tpl.resolved_properties(lid) for lid in tpl.of_type("AWS::CloudWatch::Alarm")]


def _alarmed(tpl: Template, namespace: str, metric: str, dimension: str) -> set[str]:
    out = set()
    for alarm in _alarms(tpl):
        if alarm["Namespace"] == namespace and alarm["MetricName"] == metric:
            assert alarm.get("AlarmActions"), alarm
            for dim in alarm["Dimensions"]:
                if dim["Name"] == dimension:
                    out.add(dim["Value"])
    return out


def test_alarms_for_errors_and_throttles_of_every_function_dlq_depth_and_api_5xx():
    tpl = template()
    names = {tpl.ref(f): f for f in functions(tpl)}
    for metric in ("Errors", "Throttles"):
        alarmed = {names.get(v, v) for v in _alarmed(tpl, "AWS/Lambda", metric, "FunctionName")}
        assert set(functions(tpl)) - alarmed == set(), f"functions without a {metric} alarm"
    depth = _alarmed(tpl, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName")
    for dlq in _dlqs(tpl):
        assert tpl.resolve({"Fn::GetAtt": [dlq, "QueueName"]}) in depth, f"{dlq} has no depth alarm"
    api_names = {tpl.resolved_properties(api).get("Name") for api in tpl.of_type("AWS::Serverless::Api")}
    assert api_names and api_names <= _alarmed(tpl, "AWS/ApiGateway", "5XXError", "ApiName")


# ---------------------------------------------------------------- cfn-lint
def test_sam_validate_lint_is_clean():
    sam = ROOT / ".tools" / "sam" / "bin" / "sam"
    if not sam.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("the SAM CLI is missing: run `make tools`")
        pytest.skip("no .tools/sam: run `make tools`")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run(  # noqa: S603
        [str(sam), "validate", "--lint", "--region", "us-east-1", "--template-file", str(TEMPLATE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- parameters reach valid settings
def _edge_values(spec: dict[str, Any]) -> list[str]:
    """The values a parameter's constraints admit at their edges (what `sam deploy` would accept)."""
    values = [spec["Default"]] if "Default" in spec else []
    values += list(spec.get("AllowedValues") or [])
    values += [spec[k] for k in ("MinValue", "MaxValue") if k in spec]
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in values]


def _parameters() -> dict[str, dict[str, Any]]:
    return dict(template().raw["Parameters"])


def test_number_parameters_are_bounded():
    """An unbounded number can pass CloudFormation and then fail every function's settings."""
    unbounded = [
        name
        for name, spec in _parameters().items()
        if spec.get("Type") == "Number" and "AllowedValues" not in spec and not {"MinValue", "MaxValue"} <= set(spec)
    ]
    assert unbounded == []


@pytest.mark.parametrize("parameter", sorted(_parameters()))
def test_every_value_the_template_admits_gives_valid_settings_in_every_function(parameter):
    from invoicing.settings import Settings
    from local.cfn import _cfn_str

    for value in _edge_values(_parameters()[parameter]):
        tpl = template(**{parameter: value})
        for function in functions(tpl):
            variables = (tpl.resolved_properties(function).get("Environment") or {}).get("Variables") or {}
            env = {str(k): _cfn_str(v) for k, v in variables.items()}
            try:
                Settings.from_env(env)
            except ValueError as exc:
                pytest.fail(f"{parameter}={value} is accepted by the template but breaks {function}: {exc}")


def test_the_local_runtime_refuses_what_cloudformation_refuses():
    from local.cfn import TemplateError

    for name, bad in [
        ("PayRateLimitPerMinute", "1000000"),
        ("PayRateLimitPerMinute", "0"),
        ("PaymentProvider", "paypal"),
        ("LogRetentionDays", "31"),
        ("StripeSecretKeyParam", "no-leading-slash"),
        ("ReminderHour", "nine"),
    ]:
        with pytest.raises(TemplateError, match=name):
            template(**{name: bad})
