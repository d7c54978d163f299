"""The runtime end to end on the fixture template, driven over HTTP and through its local AWS."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from local.testing import REPO_ROOT, LocalStack, free_port

WAIT = 30  # seconds; an upper bound for things that happen in the background, never a timing assertion


def eventually(probe: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def get(stack: LocalStack, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["X-Token"] = token
    return requests.get(stack.api_url + path, headers=headers, timeout=30, **kwargs)


# ------------------------------------------------------------------------------------------------ API
def test_proxy_event_environment_and_context(fixture_stack: LocalStack) -> None:
    response = get(fixture_stack, "/echo/inv_1?q=1&q=2", token="allow", headers={"X-Trace": "t1"})
    assert response.status_code == 200, response.text
    payload = response.json()
    event = payload["event"]
    assert event["resource"] == "/echo/{id}"
    assert event["path"] == "/echo/inv_1"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "inv_1"}
    assert event["queryStringParameters"] == {"q": "2"}
    assert event["multiValueQueryStringParameters"] == {"q": ["1", "2"]}
    assert event["headers"]["X-Trace"] == "t1"
    assert event["requestContext"]["stage"] == "local"
    assert event["requestContext"]["resourcePath"] == "/echo/{id}"
    assert event["requestContext"]["authorizer"] == {
        "user": "alice",
        "n": "3",
        "admin": "true",
        "helper": "authorizer-helpers",  # the authorizer's own helpers module, not echo's
        "principalId": "alice",
        "integrationLatency": event["requestContext"]["authorizer"]["integrationLatency"],
    }
    assert payload["helper"] == "echo-helpers!"  # sibling module + the layer's package
    assert payload["env"] == {
        "STAGE": "local",
        "TABLE_NAME": "local-DataTable",
        "GREETING": "hello from local",
        "OPTIONAL": None,
        "PUBLIC_BASE_URL": fixture_stack.api_url,
    }
    context = payload["context"]
    assert context["function_name"] == "local-EchoFunction"
    assert context["memory_limit_in_mb"] == "256"
    assert 0 < context["remaining_ms"] <= 5000
    assert context["invoked_function_arn"].endswith(":function:local-EchoFunction")


def test_literal_routes_win_over_greedy_ones(fixture_stack: LocalStack) -> None:
    special = get(fixture_stack, "/items/special", token="allow").json()["event"]
    assert special["resource"] == "/items/special" and special["pathParameters"] is None
    greedy = requests.delete(fixture_stack.api_url + "/items/a/b%20c", headers={"X-Token": "allow"}, timeout=30)
    event = greedy.json()["event"]
    assert event["resource"] == "/items/{proxy+}"
    assert event["httpMethod"] == "DELETE"
    assert event["pathParameters"] == {"proxy": "a/b c"}


def test_text_and_binary_bodies(fixture_stack: LocalStack) -> None:
    text = requests.post(
        fixture_stack.api_url + "/echo/1", data="héllo".encode(), headers={"X-Token": "allow"}, timeout=30
    ).json()["event"]
    assert text["body"] == "héllo" and text["isBase64Encoded"] is False
    raw = bytes(range(256)) * 4
    response = requests.post(
        fixture_stack.api_url + "/binary", data=raw, headers={"Content-Type": "application/octet-stream"}, timeout=30
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.content == raw[::-1]  # base64 in, base64 out, decoded by the gateway


def test_multiple_set_cookie_headers(fixture_stack: LocalStack) -> None:
    response = get(fixture_stack, "/cookies", stream=True)
    assert response.status_code == 200
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.headers["X-Single"] == "1"
    assert response.cookies.get("a") == "1" and response.cookies.get("b") == "2"


@pytest.mark.parametrize(
    ("token", "method", "status", "body"),
    [
        (None, "GET", 401, {"error": "unauthorized"}),
        ("unauthorized", "GET", 401, {"error": "unauthorized"}),
        ("deny", "GET", 403, {"error": "forbidden"}),
        ("nobody", "GET", 403, {"error": "forbidden"}),
        ("readonly", "POST", 403, {"error": "forbidden"}),
        ("crash", "GET", 500, {"error": "gateway_5xx", "type": "AUTHORIZER_CONFIGURATION_ERROR"}),
        ("malformed", "GET", 500, {"error": "gateway_5xx", "type": "AUTHORIZER_CONFIGURATION_ERROR"}),
    ],
)
def test_authorizer_gateway_responses(
    fixture_stack: LocalStack, token: str | None, method: str, status: int, body: dict[str, Any]
) -> None:
    headers = {} if token is None else {"X-Token": token}
    response = requests.request(method, fixture_stack.api_url + "/echo/1", headers=headers, timeout=30)
    assert response.status_code == status
    assert response.json() == body
    assert response.headers["Content-Type"] == "application/json"


def test_readonly_policy_still_allows_get(fixture_stack: LocalStack) -> None:
    assert get(fixture_stack, "/echo/1", token="readonly").status_code == 200


def test_unknown_route_handler_error_and_timeout(fixture_stack: LocalStack) -> None:
    missing = get(fixture_stack, "/does/not/exist")
    assert missing.status_code == 404 and missing.json() == {"error": "no_route"}
    wrong_method = requests.put(fixture_stack.api_url + "/public", timeout=30)
    assert wrong_method.status_code == 404
    boom = get(fixture_stack, "/boom")
    assert boom.status_code == 502 and boom.json() == {"message": "Internal server error"}
    slow = get(fixture_stack, "/slow")  # sleeps past its 1 s Timeout
    assert slow.status_code == 502 and slow.json() == {"message": "Internal server error"}


# ------------------------------------------------------------------------------------------------ SQS
def _deliveries(stack: LocalStack, body: str) -> list[dict[str, Any]]:
    table = stack.client("dynamodb")
    items = table.query(
        TableName="local-DataTable",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"msg#{body}"}},
        ConsistentRead=True,
    )["Items"]
    return items


def _dlq_bodies(stack: LocalStack, wanted: set[str]) -> Callable[[], set[str]]:
    sqs = stack.client("sqs")
    dlq = sqs.get_queue_url(QueueName="local-JobsDLQ")["QueueUrl"]
    seen: set[str] = set()

    def probe() -> set[str]:
        for message in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        ):
            if message["Body"] in wanted:
                seen.add(message["Body"])
                sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
        return seen if seen == wanted else set()

    return probe


def test_partial_batch_failure_redelivers_only_the_failed_record_then_dead_letters_it(
    fixture_stack: LocalStack,
) -> None:
    sqs = fixture_stack.client("sqs")
    queue = sqs.get_queue_url(QueueName="local-JobsQueue")["QueueUrl"]
    ok, bad = f"ok-{uuid.uuid4()}", f"fail-{uuid.uuid4()}"
    sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[
            {
                "Id": "1",
                "MessageBody": ok,
                "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "green"}},
            },
            {"Id": "2", "MessageBody": bad},
        ],
    )
    eventually(_dlq_bodies(fixture_stack, {bad}), "the failing message in the DLQ")
    ok_items = _deliveries(fixture_stack, ok)
    assert len(ok_items) == 1  # processed once, deleted, never redelivered
    item = ok_items[0]
    assert item["sk"]["S"].endswith("#1")
    assert item["batch_size"]["N"] == "2"  # both messages came in one batch
    assert item["attributes"]["S"] == "green"
    assert item["event_source"]["S"] == "aws:sqs"
    assert item["source_arn"]["S"] == "arn:aws:sqs:us-east-1:123456789012:local-JobsQueue"
    assert item["helper"]["S"] == "worker-helpers"
    system = {value["S"] for value in item["system_attributes"]["L"]}
    assert {"ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"} <= system
    counts = sorted(i["sk"]["S"].rsplit("#", 1)[1] for i in _deliveries(fixture_stack, bad))
    assert counts == ["1", "2"]  # delivered maxReceiveCount (2) times, then dead-lettered
    assert (
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )


def test_an_exception_fails_the_whole_batch(fixture_stack: LocalStack) -> None:
    sqs = fixture_stack.client("sqs")
    queue = sqs.get_queue_url(QueueName="local-JobsQueue")["QueueUrl"]
    crash, bystander = f"crash-{uuid.uuid4()}", f"ok-{uuid.uuid4()}"
    sqs.send_message_batch(
        QueueUrl=queue, Entries=[{"Id": "1", "MessageBody": crash}, {"Id": "2", "MessageBody": bystander}]
    )
    eventually(_dlq_bodies(fixture_stack, {crash, bystander}), "both messages of the failed batch in the DLQ")
    assert _deliveries(fixture_stack, bystander) == []


# ------------------------------------------------------------------------------------------ schedules
def _ticks(stack: LocalStack) -> list[dict[str, Any]]:
    return stack.client("dynamodb").query(
        TableName="local-DataTable",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "tick"}},
        ConsistentRead=True,
    )["Items"]


def test_fire_a_schedule_now(fixture_stack: LocalStack) -> None:
    one = requests.post(fixture_stack.api_url + "/_local/schedules/MorningParis", timeout=30)
    assert one.status_code == 200 and one.json() == {"fired": "morning"}
    assert any(item["kind"]["S"] == "morning" for item in _ticks(fixture_stack))
    by_id = requests.post(fixture_stack.api_url + "/_local/schedules/TickFunction.EveryMinute", timeout=30).json()
    assert by_id == {"fired": "Scheduled Event"}
    everything = requests.post(fixture_stack.api_url + "/_local/schedules", timeout=30).json()
    assert sorted(item["id"] for item in everything) == ["TickFunction.EveryMinute", "TickFunction.MorningParis"]
    assert requests.post(fixture_stack.api_url + "/_local/schedules/Nope", timeout=30).status_code == 404
    listing = requests.get(fixture_stack.api_url + "/_local/schedules", timeout=30).json()
    paris = next(item for item in listing if item["event"] == "MorningParis")
    assert paris["timezone"] == "Europe/Paris" and paris["next_fire"].endswith(":00:00Z")


def test_rate_schedule_fires_by_itself(fixture_stack: LocalStack) -> None:
    # rate(1 minute) with --schedule-speedup 30 fires every 2 s
    def scheduled() -> list[dict[str, Any]]:
        events = [json.loads(i["event"]["S"]) for i in _ticks(fixture_stack)]
        return [
            e for e in events if e.get("detail-type") == "Scheduled Event" and e["resources"][0].endswith("EveryMinute")
        ]

    events = eventually(lambda: len(scheduled()) >= 2 and scheduled(), "two automatic firings")
    assert events[0]["source"] == "aws.events"
    assert events[0]["account"] == "123456789012"


def test_invoke_schedule_command(fixture_stack: LocalStack) -> None:
    port = fixture_stack.api_url.rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, "-m", "local.invoke_schedule", "--port", port, "MorningParis"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"fired": "morning"}
    unreachable = subprocess.run(
        [sys.executable, "-m", "local.invoke_schedule", "--port", str(free_port())],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unreachable.returncode == 2 and "make dev" in unreachable.stderr


# --------------------------------------------------------------------------------------------- outbox
def test_outbox_lists_mail_sent_with_ses_v1_and_v2(fixture_stack: LocalStack) -> None:
    tag = uuid.uuid4().hex[:8]
    v1 = fixture_stack.client("ses").send_email(
        Source="billing@seller.test",
        Destination={"ToAddresses": ["a@customer.test"], "CcAddresses": ["cc@customer.test"]},
        Message={
            "Subject": {"Data": f"v1 {tag}"},
            "Body": {"Text": {"Data": "plain v1"}, "Html": {"Data": "<p>html v1</p>"}},
        },
    )["MessageId"]
    v2 = fixture_stack.client("sesv2").send_email(
        FromEmailAddress="Billing <billing@seller.test>",
        Destination={"ToAddresses": ["b@customer.test"]},
        Content={
            "Simple": {
                "Subject": {"Data": f"v2 {tag}"},
                "Body": {"Text": {"Data": "plain v2"}, "Html": {"Data": "<p>html v2</p>"}},
            }
        },
    )["MessageId"]
    raw = (
        f"From: billing@seller.test\r\nTo: c@customer.test\r\nSubject: raw {tag}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nplain raw\r\n'
        "--XX\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=inv.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"%PDF-1.4").decode() + "\r\n--XX--\r\n"
    )
    v2_raw = fixture_stack.client("sesv2").send_email(
        FromEmailAddress="billing@seller.test",
        Destination={"ToAddresses": ["c@customer.test"]},
        Content={"Raw": {"Data": raw.encode()}},
    )["MessageId"]
    outbox = {item["message_id"]: item for item in requests.get(fixture_stack.outbox_url, timeout=30).json()}
    first = outbox[v1]
    assert first["from"] == "billing@seller.test"
    assert first["to"] == ["a@customer.test"] and first["cc"] == ["cc@customer.test"]
    assert first["subject"] == f"v1 {tag}"
    assert first["text"] == "plain v1" and first["html"] == "<p>html v1</p>"
    assert first["timestamp"].endswith("Z")
    second = outbox[v2]
    assert second["subject"] == f"v2 {tag}" and second["to"] == ["b@customer.test"]
    assert second["text"] == "plain v2" and second["html"] == "<p>html v2</p>"
    third = outbox[v2_raw]
    assert third["subject"] == f"raw {tag}" and third["text"].strip() == "plain raw"
    assert third["attachments"] == [{"filename": "inv.pdf", "content_type": "application/pdf", "size": 8}]
    page = requests.get(fixture_stack.api_url + "/_local/outbox.html", timeout=30)
    assert page.status_code == 200 and f"v2 {tag}" in page.text and "text/html" in page.headers["Content-Type"]


# ----------------------------------------------------------------------------------------- local routes
def test_resources_and_direct_invoke(fixture_stack: LocalStack) -> None:
    described = requests.get(fixture_stack.api_url + "/_local/resources", timeout=30).json()
    assert set(described["resources"]) == {"DataTable", "FilesBucket", "JobsDLQ", "JobsQueue"}
    assert described["resources"]["FilesBucket"]["name"] == "local-filesbucket"
    # loaded at start; SlowFunction only until a call of it times out (the next call loads it afresh)
    assert {name for name, f in described["functions"].items() if not f["loaded"]} <= {"SlowFunction"}
    table = fixture_stack.client("dynamodb").describe_table(TableName="local-DataTable")["Table"]
    assert table["GlobalSecondaryIndexes"][0]["IndexName"] == "gsi1"
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    ttl = fixture_stack.client("dynamodb").describe_time_to_live(TableName="local-DataTable")
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "ttl"
    redrive = fixture_stack.client("sqs").get_queue_attributes(
        QueueUrl=described["resources"]["JobsQueue"]["url"], AttributeNames=["All"]
    )["Attributes"]
    assert json.loads(redrive["RedrivePolicy"]) == {
        "deadLetterTargetArn": described["resources"]["JobsDLQ"]["arn"],
        "maxReceiveCount": 2,
    }
    assert redrive["VisibilityTimeout"] == "60"
    invoked = requests.post(fixture_stack.api_url + "/_local/invoke/TickFunction", json={"kind": "direct"}, timeout=30)
    assert invoked.json() == {"fired": "direct"}
    assert requests.post(fixture_stack.api_url + "/_local/invoke/Nope", json={}, timeout=30).status_code == 404
    assert requests.get(fixture_stack.api_url + "/_local/health", timeout=30).json() == {"status": "ok"}
