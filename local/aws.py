"""The embedded AWS: moto's threaded server on loopback, with every request serialized.

DynamoDB is served by DynamoDB Local (dynamodb_local.py) when the runtime runs it: then
``dynamodb_url`` points boto3 there (``AWS_ENDPOINT_URL_DYNAMODB``), and no DynamoDB request reaches
moto or its lock. Without it (no Java), moto serves DynamoDB too, serialized like everything else.

moto checks a DynamoDB condition and then writes without a lock, so two concurrent conditional
writes to one item can both succeed under a threaded server. One lock around the dispatch of every
request restores DynamoDB's per-item atomicity locally (and makes the whole local AWS linearizable).

Two request kinds are treated specially so that the lock does not hurt:

* SQS ``ReceiveMessage`` with a wait time (long polling) is emulated by short polls: the lock is held
  only for each short poll, never while waiting, so one long poll cannot stall the local AWS.
* SES ``SendEmail`` (v1 and v2) requests are read on the way in, so the outbox shows both the text and
  the HTML part (moto keeps only one of them).
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from .cfn import ACCOUNT_ID, REGION

StartResponse = Callable[..., Any]
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_LONG_POLL_STEP = 0.05

#: Environment variables that could point botocore at a real AWS account or another endpoint.
_UNSAFE_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


class SerializedMotoApp:
    """WSGI middleware: one lock around moto's dispatch, plus SQS long-poll and SES capture."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, account_id: str = ACCOUNT_ID) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.account_id = account_id
        #: message id -> {"text": ..., "html": ..., "subject": ..., ...} for SES sends seen on the wire
        self.mail_parts: dict[str, dict[str, Any]] = {}
        self.mail_times: dict[str, float] = {}

    # ---------------------------------------------------------------- WSGI entry
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target == "AmazonSQS.ReceiveMessage":
            return self._receive_message(environ, start_response)
        _region, service = self._scope(environ)
        if service == "ses" and environ.get("REQUEST_METHOD") == "POST":
            return self._ses_send(environ, start_response)
        status, headers, body = self._locked_call(environ)
        start_response(status, headers)
        return [body]

    def _locked_call(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., None]:
            captured[:] = [status, headers]
            return lambda data: None

        with self.lock:
            result = self.app(environ, capture)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return captured[0], captured[1], body

    @staticmethod
    def _scope(environ: dict[str, Any]) -> tuple[str, str]:
        match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        return (match.group(1), match.group(2)) if match else (REGION, "")

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        return body

    @staticmethod
    def _with_body(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
        copy = dict(environ)
        copy["wsgi.input"] = io.BytesIO(body)
        copy["CONTENT_LENGTH"] = str(len(body))
        return copy

    # ---------------------------------------------------------------- SQS long polling
    def _receive_message(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        raw = self._read_body(environ)
        try:
            params = json.loads(raw or b"{}")
            wait = params.get("WaitTimeSeconds")
            if wait is None:
                wait = self._queue_default_wait(environ, str(params.get("QueueUrl", "")))
            wait = int(wait)
        except (ValueError, TypeError, AttributeError):
            wait = 0
        if not 0 < wait <= 20:  # no waiting, or invalid: let moto answer (and validate) as it is
            status, headers, body = self._locked_call(self._with_body(environ, raw))
            start_response(status, headers)
            return [body]
        short = dict(params, WaitTimeSeconds=0)
        short_raw = json.dumps(short).encode()
        deadline = time.monotonic() + wait
        while True:
            status, headers, body = self._locked_call(self._with_body(environ, short_raw))
            done = not status.startswith("200") or time.monotonic() >= deadline
            if not done:
                try:
                    done = bool(json.loads(body or b"{}").get("Messages"))
                except ValueError:
                    done = True
            if done:
                start_response(status, headers)
                return [body]
            time.sleep(_LONG_POLL_STEP)

    def _queue_default_wait(self, environ: dict[str, Any], queue_url: str) -> int:
        from moto.sqs.models import sqs_backends

        region, _ = self._scope(environ)
        name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        try:
            with self.lock:
                queue = sqs_backends[self.account_id][region].get_queue(name)
                return int(queue.receive_message_wait_time_seconds or 0)
        except Exception:  # unknown queue: moto will answer with the proper error
            return 0

    # ---------------------------------------------------------------- SES capture
    def _ses_send(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        raw = self._read_body(environ)
        status, headers, body = self._locked_call(self._with_body(environ, raw))
        try:
            if status.startswith("200"):
                self._record_mail(environ.get("PATH_INFO", ""), raw, body)
        except Exception:  # the outbox is a convenience; never break a send because of it
            pass
        start_response(status, headers)
        return [body]

    def _record_mail(self, path: str, request: bytes, response: bytes) -> None:
        parts: dict[str, Any] | None = None
        message_id = None
        if path.rstrip("/") == "/v2/email/outbound-emails":
            params = json.loads(request or b"{}")
            simple = (params.get("Content") or {}).get("Simple")
            message_id = json.loads(response or b"{}").get("MessageId")
            if simple:
                body = simple.get("Body") or {}
                parts = {
                    "subject": (simple.get("Subject") or {}).get("Data"),
                    "text": (body.get("Text") or {}).get("Data"),
                    "html": (body.get("Html") or {}).get("Data"),
                    "reply_to": params.get("ReplyToAddresses") or [],
                }
        else:
            form = urllib.parse.parse_qs(request.decode("utf-8", "replace"), keep_blank_values=True)
            action = (form.get("Action") or [""])[0]
            match = re.search(rb"<MessageId>([^<]+)</MessageId>", response)
            message_id = match.group(1).decode() if match else None
            if action == "SendEmail":
                parts = {
                    "subject": (form.get("Message.Subject.Data") or [None])[0],
                    "text": (form.get("Message.Body.Text.Data") or [None])[0],
                    "html": (form.get("Message.Body.Html.Data") or [None])[0],
                    "reply_to": [v[0] for k, v in sorted(form.items()) if k.startswith("ReplyToAddresses.")],
                }
        if message_id:
            self.mail_times[message_id] = time.time()
            if parts is not None:
                self.mail_parts[message_id] = parts


def roll_back_only_the_items_written() -> None:
    """moto's TransactWriteItems deep-copies the whole table once per *item* of the transaction (its
    rollback copy), so a 5-item finalize copies the table 5 times and gets slower with every item
    stored: 70 ms at 20 invoices, 150 ms at 300, seconds with a persisted dev table. A transaction
    changes nothing but the items it names (and their stream records), so this copies only those
    items before the call, and when it fails puts them back as they were (or removes the ones it
    created) and drops the stream records it added: the same rollback, without copying the table.
    Other threads' writes to other items meanwhile survive a rollback, which a table copy did not
    keep. Patched once, process-wide (the in-process tests and the local stack's moto server)."""
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType

    original = models.DynamoDBBackend.transact_write_items
    if getattr(original, "_rolls_back_items", False):
        return
    real_copy = models.copy
    local = threading.local()

    class _NoTableCopy:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_copy, name)

        @staticmethod
        def deepcopy(obj: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(local, "active", False) and isinstance(obj, models.Table):
                return obj  # the rollback below restores the items written, not a copy of the table
            return real_copy.deepcopy(obj, *args, **kwargs)

    def put_back(table: Any, hash_value: Any, range_value: Any, item: Any) -> None:
        if range_value is None:
            if item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
            return
        bucket = table.items[hash_value]
        if item is None:
            bucket.pop(range_value, None)
            if not bucket:
                del table.items[hash_value]
        else:
            bucket[range_value] = item

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any, Any]] = []
        streams: dict[int, tuple[Any, int]] = {}
        for entry in transact_items:
            for op in entry.values() if isinstance(entry, dict) else ():
                table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                key = (op.get("Item") if "Item" in op else op.get("Key")) if table is not None else None
                if not isinstance(key, dict) or table.hash_key_attr not in key:
                    continue  # moto refuses it before writing anything
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = None
                if table.range_key_attr is not None:
                    if table.range_key_attr not in key:
                        continue
                    range_value = DynamoType(key[table.range_key_attr])
                current = table.get_item(hash_value, range_value)
                saved.append((table, hash_value, range_value, real_copy.deepcopy(current)))
                if table.stream_shard is not None and id(table) not in streams:
                    streams[id(table)] = (table, len(table.stream_shard.items))
        local.active = True
        try:
            return original(self, transact_items)
        except BaseException:
            for table, hash_value, range_value, item in reversed(saved):
                put_back(table, hash_value, range_value, item)
            for table, length in streams.values():
                del table.stream_shard.items[length:]
            raise
        finally:
            local.active = False

    transact_write_items._rolls_back_items = True  # type: ignore[attr-defined]
    models.copy = _NoTableCopy()  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def serialize_attribute_values_directly() -> None:
    """moto 5.2 serializes every response by walking botocore's output shape, and for a DynamoDB
    AttributeValue that means asking each of its ten members (S, N, B, SS, ..., M, L) for a value
    through a chain of alias lookups: a Query of 20 items with 30 attributes makes ~100,000 such
    lookups. moto's DynamoDB results already hold attribute values in their wire form ({"S": "x"}), so
    an AttributeValue made of strings, numbers, booleans, null, string/number sets, maps and lists is
    written as it is, recursively; anything else (a binary value, which the walk base64-encodes, or a
    non-string where a string belongs) takes moto's own path. tests/local/test_aws.py compares both
    outputs. The walk was half of the in-process state machine's time. Patched once, process-wide."""
    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer._serialize_type_structure
    if getattr(original, "_attribute_values_directly", False):
        return

    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and isinstance(value, dict):
            wire = attribute_value_as_is(value)
            if wire is not None:
                self._default_serialize(serialized, wire, shape, key)
                return
        original(self, serialized, value, shape, key)

    _serialize_type_structure._attribute_values_directly = True  # type: ignore[attr-defined]
    _serialize_type_structure.original = original  # type: ignore[attr-defined]  (the test compares both)
    BaseJSONSerializer._serialize_type_structure = _serialize_type_structure  # type: ignore[method-assign]


def attribute_value_as_is(value: dict[str, Any]) -> dict[str, Any] | None:
    """A copy of an AttributeValue already in wire form, or None when moto's walk must write it."""
    if len(value) != 1:
        return None
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        return {kind: inner} if isinstance(inner, str) else None
    if kind in ("BOOL", "NULL"):
        return {kind: inner} if isinstance(inner, bool) else None
    if kind in ("SS", "NS"):
        return {kind: list(inner)} if isinstance(inner, list) and all(isinstance(v, str) for v in inner) else None
    if kind == "M" and isinstance(inner, dict):
        members = {}
        for name, member in inner.items():
            copied = attribute_value_as_is(member) if isinstance(member, dict) else None
            if copied is None:
                return None
            members[name] = copied
        return {"M": members}
    if kind == "L" and isinstance(inner, list):
        items = []
        for member in inner:
            copied = attribute_value_as_is(member) if isinstance(member, dict) else None
            if copied is None:
                return None
            items.append(copied)
        return {"L": items}
    return None


def count_queue_messages_in_one_pass() -> None:
    """moto builds a queue's whole attribute map, with its three ApproximateNumberOfMessages* counts,
    each time it looks up one attribute (ContentBasedDeduplication, 4-6 times per message sent), and
    each count scans every message, reading the clock twice per message. Sends therefore slowed down
    with the queue's depth: 100 SendMessageBatch calls of 10 took 43 s. A fuzzer's 250-draft billing
    runs queued thousands, and the local AWS's lock was held for seconds per call (one request waited
    42 s). Patched here, once:
    - the map's three counts are taken in one pass over the messages with one clock reading (0.85 s
      for the same 100 batches; tests/local/test_aws.py compares the map with moto's own);
    - inside SendMessage and SendMessageBatch nothing reads a count, so the map is built without
      them: with thousands of drafts queued, a POST of 1,000 billing-run drafts still rescanned the
      queue ~5 times per message and ran past the API's 15 s (a 502)."""
    from moto.core.utils import camelcase_to_underscores, unix_time_millis
    from moto.sqs.models import Queue, SQSBackend

    if getattr(Queue, "_counts_in_one_pass", False):
        return

    sending = threading.local()

    def attributes(self: Any) -> dict[str, Any]:
        now = unix_time_millis()
        ready = delayed = in_flight = 0
        for message in () if getattr(sending, "active", False) else self._messages:
            is_delayed = now < message.delayed_until
            delayed += is_delayed
            if now > message.visible_at:
                ready += not is_delayed
            else:
                in_flight += 1
        counts = {
            "ApproximateNumberOfMessages": ready,
            "ApproximateNumberOfMessagesDelayed": delayed,
            "ApproximateNumberOfMessagesNotVisible": in_flight,
        }
        if getattr(sending, "active", False):  # a send reads ContentBasedDeduplication, never a count
            counts = dict.fromkeys(counts)
        names = [
            *self.BASE_ATTRIBUTES,
            *(self.FIFO_ATTRIBUTES if self.fifo_queue else ()),
            *(self.KMS_ATTRIBUTES if self.kms_master_key_id else ()),
        ]
        result = {
            name: counts[name] if name in counts else getattr(self, camelcase_to_underscores(name)) for name in names
        }
        if self.policy:
            result["Policy"] = self.policy
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy)
        return {name: str(value).lower() if isinstance(value, bool) else value for name, value in result.items()}

    def without_counts(send: Any) -> Any:
        def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
            outer = getattr(sending, "active", False)
            sending.active = True
            try:
                return send(self, *args, **kwargs)
            finally:
                sending.active = outer

        return wrapped

    Queue._original_attributes = Queue.attributes  # type: ignore[attr-defined]
    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]
    SQSBackend.send_message = without_counts(SQSBackend.send_message)  # type: ignore[method-assign]
    SQSBackend.send_message_batch = without_counts(SQSBackend.send_message_batch)  # type: ignore[method-assign]
    Queue._counts_in_one_pass = True  # type: ignore[attr-defined]


class EmbeddedAWS:
    """moto's ThreadedMotoServer on 127.0.0.1 (a free port unless given), requests serialized."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, region: str = REGION, account_id: str = ACCOUNT_ID
    ) -> None:
        self.host = host
        self.port = port
        self.region = region
        self.account_id = account_id
        self.app: SerializedMotoApp | None = None
        #: DynamoDB Local's endpoint when it serves DynamoDB (set by the runtime), else None: moto serves it
        self.dynamodb_url: str | None = None
        self._server: ThreadedMotoServer | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the embedded AWS is not started")
        host, port = self._server.get_host_and_port()
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"  # bound to every interface: loopback still reaches it
        return f"http://{host}:{port}"

    def start(self) -> EmbeddedAWS:
        roll_back_only_the_items_written()
        serialize_attribute_values_directly()
        count_queue_messages_in_one_pass()
        outer = self

        class _Server(ThreadedMotoServer):
            def _server_entry(self) -> None:
                app = DomainDispatcherApplication(create_backend_app)
                outer.app = SerializedMotoApp(app, account_id=outer.account_id)
                self._server = make_server(
                    self._ip_address, self._port, outer.app, True, request_handler=MotoRequestHandler
                )
                self._server_ready_event.set()
                self._server.serve_forever(poll_interval=0.1)

        self._server = _Server(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        self._accept_any_ses_sender()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            server = getattr(self._server, "_server", None)
            if server is not None:
                server.server_close()
            self._server = None
        self._clients.clear()

    def environment(self) -> dict[str, str]:
        """The variables that make botocore (boto3, PynamoDB, Powertools) use this local AWS."""
        dynamodb = (
            {"AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_url, "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": self.dynamodb_url}
            if self.dynamodb_url
            else {}
        )
        return {
            "AWS_ENDPOINT_URL": self.url,
            **dynamodb,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # never read the developer's real AWS config or credentials files
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def apply_environment(self, environ: Any = None) -> None:
        environ = os.environ if environ is None else environ
        for name in list(environ):
            if name in _UNSAFE_ENV or name.startswith("AWS_ENDPOINT_URL_"):
                del environ[name]
        environ.update(self.environment())

    def endpoint_for(self, service: str) -> str:
        if self.dynamodb_url and service in ("dynamodb", "dynamodbstreams"):
            return self.dynamodb_url
        return self.url

    def client(self, service: str) -> Any:
        """A boto3 client bound explicitly to this local AWS (independent of the process env)."""
        with self._clients_lock:
            if service not in self._clients:
                import boto3
                from botocore.config import Config

                self._clients[service] = boto3.session.Session().client(
                    service,
                    endpoint_url=self.endpoint_for(service),
                    region_name=self.region,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
                )
            return self._clients[service]

    # ---------------------------------------------------------------- SES
    def _accept_any_ses_sender(self) -> None:
        """Locally every sender counts as verified (real SES needs verified identities)."""
        from moto.ses.models import ses_backends

        backend = ses_backends[self.account_id][self.region]
        backend._is_verified_address = lambda source: True  # type: ignore[method-assign]

    def sent_messages(self) -> list[Any]:
        from moto.ses.models import ses_backends

        assert self.app is not None
        with self.app.lock:
            return list(ses_backends[self.account_id][self.region].sent_messages)

    def clear_sent_messages(self) -> None:
        from moto.ses.models import ses_backends

        assert self.app is not None
        with self.app.lock:
            ses_backends[self.account_id][self.region].sent_messages.clear()
