"""The embedded AWS: requests are serialized (atomic conditional writes) and long polls do not block."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.aws import EmbeddedAWS


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAWS]:
    embedded = EmbeddedAWS().start()
    try:
        yield embedded
    finally:
        embedded.stop()


def test_environment_points_botocore_at_loopback(aws: EmbeddedAWS) -> None:
    env = aws.environment()
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_REGION"] == "us-east-1"
    fake = {"AWS_PROFILE": "prod", "AWS_ENDPOINT_URL_DYNAMODB": "https://elsewhere", "HOME": "/root"}
    aws.apply_environment(fake)
    assert "AWS_PROFILE" not in fake and "AWS_ENDPOINT_URL_DYNAMODB" not in fake
    assert fake["HOME"] == "/root" and fake["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL"]


def test_dynamodb_goes_to_its_own_endpoint_when_one_is_set() -> None:
    # Given an embedded AWS (not started: no request is made) whose DynamoDB is DynamoDB Local's
    aws = EmbeddedAWS()
    aws._server = type("Started", (), {"get_host_and_port": lambda self: ("127.0.0.1", 4566)})()  # type: ignore[assignment]
    aws.dynamodb_url = "http://127.0.0.1:8000"
    # When the functions' environment and the runtime's own clients are made
    env = aws.environment()
    # Then botocore's per-service variable sends DynamoDB (and its streams) there, the rest to moto
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] == "http://127.0.0.1:8000"
    assert aws.client("dynamodb").meta.endpoint_url == "http://127.0.0.1:8000"
    assert aws.client("sqs").meta.endpoint_url == "http://127.0.0.1:4566"
    aws._server = None


def test_concurrent_conditional_writes_stay_atomic(aws: EmbeddedAWS) -> None:
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName="counter",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="counter", Item={"pk": {"S": "c"}, "n": {"N": "0"}})
    wins: list[int] = []
    lock = threading.Lock()

    def bump(_: int) -> None:
        # optimistic concurrency: read n, write n+1 only if n is unchanged; a lost race is refused
        for _attempt in range(50):
            current = int(ddb.get_item(TableName="counter", Key={"pk": {"S": "c"}})["Item"]["n"]["N"])
            try:
                ddb.put_item(
                    TableName="counter",
                    Item={"pk": {"S": "c"}, "n": {"N": str(current + 1)}},
                    ConditionExpression="n = :n",
                    ExpressionAttributeValues={":n": {"N": str(current)}},
                )
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
                continue
            with lock:
                wins.append(current + 1)
            return

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bump, range(80)))
    final = int(ddb.get_item(TableName="counter", Key={"pk": {"S": "c"}})["Item"]["n"]["N"])
    assert len(wins) == len(set(wins)), "two conditional writes won with the same expected value"
    assert final == len(wins)


def test_a_long_poll_does_not_hold_the_lock(aws: EmbeddedAWS) -> None:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
    order: list[str] = []
    started = threading.Event()

    def long_poll() -> None:
        started.set()
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3).get("Messages", [])
        order.append(f"receive:{len(messages)}")

    thread = threading.Thread(target=long_poll)
    thread.start()
    started.wait()
    # while the receive waits, other requests are served: the message it waits for can be sent
    aws.client("s3").create_bucket(Bucket="still-served")
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    order.append("sent")
    thread.join(30)
    assert order == ["sent", "receive:1"]


def test_queue_default_wait_time_is_honoured(aws: EmbeddedAWS) -> None:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="waits", Attributes={"ReceiveMessageWaitTimeSeconds": "2"})["QueueUrl"]
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(len(sqs.receive_message(QueueUrl=url).get("Messages", []))))
    thread.start()
    sqs.send_message(QueueUrl=url, MessageBody="x")
    thread.join(30)
    assert result == [1]


def test_requests_reach_moto_one_at_a_time() -> None:
    from io import BytesIO

    from local.aws import SerializedMotoApp

    in_flight, peak = [0], [0]
    counter_lock = threading.Lock()
    gate = threading.Barrier(8)

    def inner(environ: dict, start_response: object) -> list[bytes]:
        with counter_lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        threading.Event().wait(0.01)
        with counter_lock:
            in_flight[0] -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
        return [b"ok"]

    app = SerializedMotoApp(inner)

    def call(_: int) -> bytes:
        gate.wait()
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "wsgi.input": BytesIO(b""), "CONTENT_LENGTH": "0"}
        return b"".join(app(environ, lambda status, headers: None))

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(call, range(8))) == [b"ok"] * 8
    assert peak[0] == 1


def test_a_failed_transaction_rolls_back_exactly_without_copying_the_table(aws: EmbeddedAWS, monkeypatch) -> None:
    from moto.dynamodb import models

    # Given a table with a sort key and a stream, holding 50 items
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName="tx",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for i in range(50):
        ddb.put_item(TableName="tx", Item={"pk": {"S": f"old{i}"}, "sk": {"S": "A"}, "v": {"N": "1"}})
    before = ddb.scan(TableName="tx")["Items"]
    table = models.dynamodb_backends[aws.account_id][aws.region].get_table("tx")
    records = len(table.stream_shard.items)
    copies: list[str] = []
    real = copy.deepcopy

    def counting(obj, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(obj, models.Table):
            copies.append(obj.name)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(copy, "deepcopy", counting)

    def update(pk: str, value: str, condition: str | None = None) -> dict:
        op = {
            "TableName": "tx",
            "Key": {"pk": {"S": pk}, "sk": {"S": "A"}},
            "UpdateExpression": "SET v = :v",
            "ExpressionAttributeValues": {":v": {"N": value}},
        }
        if condition:
            op["ConditionExpression"] = condition
            op["ExpressionAttributeValues"][":three"] = {"N": "3"}
        return {"Update": op}

    # When a transaction puts new items (one into an existing partition), updates two in place and
    # then fails on its last condition
    items = [{"Put": {"TableName": "tx", "Item": {"pk": {"S": f"new{i}"}, "sk": {"S": "A"}}}} for i in range(3)]
    items.append({"Put": {"TableName": "tx", "Item": {"pk": {"S": "old1"}, "sk": {"S": "B"}}}})
    items += [update("old2", "7"), update("old3", "8"), update("old0", "2", "v = :three")]
    with pytest.raises(ClientError) as failed:
        ddb.transact_write_items(TransactItems=items)
    assert failed.value.response["Error"]["Code"] == "TransactionCanceledException"
    # Then the table is exactly as before, its stream has no record of the transaction, and no
    # table was copied for the rollback
    assert ddb.scan(TableName="tx")["Items"] == before
    assert len(table.stream_shard.items) == records
    assert copies == []
    # and a transaction that succeeds writes everything and streams its records
    ddb.transact_write_items(TransactItems=[items[0], update("old2", "7")])
    assert ddb.get_item(TableName="tx", Key={"pk": {"S": "old2"}, "sk": {"S": "A"}})["Item"]["v"] == {"N": "7"}
    assert "Item" in ddb.get_item(TableName="tx", Key={"pk": {"S": "new0"}, "sk": {"S": "A"}})
    assert len(table.stream_shard.items) == records + 2


def test_queue_attributes_are_moto_s_own_counted_in_one_pass(aws: EmbeddedAWS) -> None:
    from moto.sqs.models import Queue, sqs_backends

    # Given queues whose messages are ready, in flight and delayed (a FIFO one, a KMS one with a redrive)
    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName="counted-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": 3}}'
    plain = sqs.create_queue(
        QueueName="counted", Attributes={"KmsMasterKeyId": "alias/aws/sqs", "RedrivePolicy": redrive}
    )["QueueUrl"]
    fifo = sqs.create_queue(QueueName="counted.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    for i in range(7):
        sqs.send_message(QueueUrl=plain, MessageBody=f"m{i}", DelaySeconds=60 if i < 2 else 0)
        sqs.send_message(QueueUrl=fifo, MessageBody=f"m{i}", MessageGroupId=str(i % 2), MessageDeduplicationId=str(i))
    sqs.receive_message(QueueUrl=plain, MaxNumberOfMessages=3, VisibilityTimeout=60)
    sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=2, VisibilityTimeout=60)
    backend = sqs_backends[aws.account_id][aws.region]
    with aws.app.lock:  # type: ignore[union-attr]
        for name in ("counted", "counted.fifo"):
            queue = backend.get_queue(name)
            # When the patched map is read beside moto's own
            patched, original = queue.attributes, Queue._original_attributes.fget(queue)  # type: ignore[attr-defined]
            # Then they are the same map, counts included
            assert patched == original
            assert list(patched) == list(original)
    counts = sqs.get_queue_attributes(QueueUrl=plain, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("2", "3")
    assert counts["ApproximateNumberOfMessagesDelayed"] == "2"


def test_a_send_scans_the_queue_only_for_its_deduplication(aws: EmbeddedAWS) -> None:
    from moto.sqs.models import sqs_backends

    # Given a FIFO queue with 100 messages, whose message list counts the passes over it
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="deep.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    for start in range(0, 100, 10):
        entries = [
            {"Id": str(i), "MessageBody": f"m{i}", "MessageGroupId": str(i % 7), "MessageDeduplicationId": str(i)}
            for i in range(start, start + 10)
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    queue = sqs_backends[aws.account_id][aws.region].get_queue("deep.fifo")

    class Passes(list):  # type: ignore[type-arg]
        count = 0

        def __iter__(self):  # type: ignore[no-untyped-def]
            Passes.count += 1
            return super().__iter__()

    with aws.app.lock:  # type: ignore[union-attr]
        queue._messages = Passes(queue._messages)
    # When a batch of 10 more is sent
    entries = [
        {"Id": str(i), "MessageBody": f"n{i}", "MessageGroupId": "g", "MessageDeduplicationId": f"n{i}"}
        for i in range(10)
    ]
    assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
    # Then the queue was passed over once per message (moto's deduplication check), not for counts
    assert Passes.count == 10
    # and the counts are still there when asked for
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "110"


def test_attribute_values_are_written_exactly_as_motos_own_walk_writes_them() -> None:
    # Given a DynamoDB result with every kind of attribute value, nested, and a binary one (which
    # takes moto's own path)
    import json

    from moto.core.serialize import BaseJSONSerializer, JSONSerializer, XFormedAttributePicker
    from moto.core.utils import get_service_model

    from local.aws import serialize_attribute_values_directly

    serialize_attribute_values_directly()
    operation = get_service_model("dynamodb").operation_model("Query")
    value = {
        "s": {"S": "text"},
        "empty": {"S": ""},
        "n": {"N": "-12.50"},
        "t": {"BOOL": True},
        "f": {"BOOL": False},
        "null": {"NULL": True},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "m": {"M": {"inner": {"M": {"x": {"S": "y"}, "l": {"L": [{"N": "1"}, {"S": "z"}, {"M": {}}]}}}}},
        "l": {"L": [{"S": "a"}, {"L": []}, {"NULL": True}]},
        "b": {"B": "aGVsbG8="},
        "mb": {"M": {"blob": {"B": "aGVsbG8="}}},
    }
    result = {"Items": [value, {"pk": {"S": "p"}}], "Count": 2, "ScannedCount": 2}

    lookups = []

    class CountingPicker(XFormedAttributePicker):
        def __call__(self, context: Any) -> Any:
            lookups.append(context.key)
            return super().__call__(context)

    def body() -> object:
        serializer = JSONSerializer(operation_model=operation, value_picker=CountingPicker())
        return json.loads(serializer.serialize(result)["body"])

    # When it is serialized with the direct path and with moto's walk
    direct = body()
    direct_lookups, lookups[:] = len(lookups), []
    patched = BaseJSONSerializer._serialize_type_structure
    BaseJSONSerializer._serialize_type_structure = patched.original  # type: ignore[attr-defined,method-assign]
    try:
        walked = body()
    finally:
        BaseJSONSerializer._serialize_type_structure = patched  # type: ignore[method-assign]
    # Then both write the same JSON, the direct path with a fraction of the walk's lookups (only the
    # binary values and the result's own fields are walked)
    assert direct == walked
    assert direct_lookups * 4 < len(lookups), (direct_lookups, len(lookups))
    assert direct["Items"][0]["m"] == value["m"] and direct["Count"] == 2
