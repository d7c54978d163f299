"""DynamoDB stream event source mappings: poll a table's stream, invoke the function with batches.

As Lambda's mapping does, per the template's event properties:
- ``StartingPosition`` (TRIM_HORIZON or LATEST), ``BatchSize`` (at most 1000 per GetRecords here);
- ``FilterCriteria``: records whose pattern does not match are skipped (exact values, ``prefix``,
  ``exists`` and ``anything-but`` of the event pattern syntax; other operators match nothing, with a
  warning);
- failures: a raised error fails the batch; with ``ReportBatchItemFailures`` the batch is retried from
  the first reported ``itemIdentifier`` (a sequence number) on, the records before it are done;
- ``MaximumRetryAttempts``: after that many retries of a batch, its description goes to the
  ``DestinationConfig.OnFailure`` queue (as Lambda sends it: the shard, the sequence numbers) and
  the mapping moves past it. ``BisectBatchOnFunctionError`` halves a failing batch before that.
Records keep their order per shard; shards are read one after another.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .functions import FunctionError
from .polling import Poller

log = logging.getLogger("local")


@dataclass
class StreamSource:
    function_id: str
    event_id: str
    stream_arn: str
    batch_size: int = 100
    starting_position: str = "LATEST"
    filters: list[dict[str, Any]] = field(default_factory=list)
    report_batch_item_failures: bool = False
    maximum_retry_attempts: int = -1  # -1: until the record expires (here: forever)
    bisect_on_error: bool = False
    on_failure_queue_url: str | None = None
    enabled: bool = True


def matches(pattern: Any, value: Any) -> bool:
    """An event pattern (EventBridge / Lambda filter syntax, a subset) against a record."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(matches(sub, value.get(key, _MISSING)) for key, sub in pattern.items())
    if isinstance(pattern, list):
        return any(_leaf(rule, value) for rule in pattern)
    return False


class _Missing:
    pass


_MISSING = _Missing()


def _leaf(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if "exists" in rule:
            return (value is not _MISSING) == bool(rule["exists"])
        if value is _MISSING:
            return False
        if "prefix" in rule:
            return isinstance(value, str) and value.startswith(str(rule["prefix"]))
        if "anything-but" in rule:
            banned = rule["anything-but"]
            return value not in (banned if isinstance(banned, list) else [banned])
        log.warning("stream filter: operator %s is not emulated; it matches nothing", sorted(rule))
        return False
    if value is _MISSING:
        return False
    return bool(rule == value)


def lambda_record(raw: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record as Lambda passes it (times as epoch seconds, the source ARN)."""
    record = json.loads(json.dumps(raw, default=_json_default))
    record.setdefault("eventSource", "aws:dynamodb")
    record.setdefault("awsRegion", region)
    record["eventSourceARN"] = stream_arn
    return record


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes | bytearray):
        import base64

        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


class StreamPoller(Poller):
    """One thread per mapping; ``poll_once`` reads every shard once (tests call it directly)."""

    kind = "stream"

    def __init__(
        self,
        source: StreamSource,
        streams_client: Any,
        invoke: Callable[[str, Any], Any],
        *,
        sqs_client: Any = None,
        region: str = "us-east-1",
        poll_interval: float = 0.2,
    ) -> None:
        super().__init__(source.function_id, source.event_id, poll_interval)
        self.source = source
        self.streams = streams_client
        self.sqs = sqs_client
        self.invoke = invoke
        self.region = region
        self._iterators: dict[str, str | None] = {}  # shard id -> next iterator (None: shard closed)
        self._retries: dict[str, int] = {}  # first sequence number of a failing batch -> retries
        self.sent_to_on_failure = 0

    def _shards(self) -> list[str]:
        description = self.streams.describe_stream(StreamArn=self.source.stream_arn)["StreamDescription"]
        return [s["ShardId"] for s in description.get("Shards", [])]

    def _iterator(self, shard: str, kind: str, sequence: str | None = None) -> str | None:
        params: dict[str, Any] = {"StreamArn": self.source.stream_arn, "ShardId": shard, "ShardIteratorType": kind}
        if sequence is not None:
            params["SequenceNumber"] = sequence
        return self.streams.get_shard_iterator(**params).get("ShardIterator")

    def poll_once(self) -> int:
        """Read each shard once from where it stands; returns how many records were handled."""
        if not self.source.enabled:
            return 0
        handled = 0
        for shard in self._shards():
            if shard not in self._iterators:
                start = "TRIM_HORIZON" if self.source.starting_position == "TRIM_HORIZON" else "LATEST"
                self._iterators[shard] = self._iterator(shard, start)
            iterator = self._iterators[shard]
            if iterator is None:
                continue
            page = self.streams.get_records(ShardIterator=iterator, Limit=max(1, min(1000, self.source.batch_size)))
            records = page.get("Records", [])
            self._iterators[shard] = page.get("NextShardIterator")
            if records:
                handled += len(records)
                self._handle(shard, records)
        return handled

    def _handle(self, shard: str, raw: list[dict[str, Any]]) -> None:
        records = [lambda_record(r, self.source.stream_arn, self.region) for r in raw]
        chosen = [r for r in records if not self.source.filters or any(matches(p, r) for p in self.source.filters)]
        failed_from = self._invoke(chosen) if chosen else None
        if failed_from is None:
            self._retries.pop(records[0]["dynamodb"]["SequenceNumber"], None)
            return
        first = records[0]["dynamodb"]["SequenceNumber"]
        retries = self._retries.get(first, 0)
        limit = self.source.maximum_retry_attempts
        if limit >= 0 and retries >= limit:
            self._retries.pop(first, None)
            self._on_failure(shard, [r for r in chosen if int(_seq(r)) >= int(failed_from)])
            return  # the mapping moves past the batch
        self._retries[first] = retries + 1
        # read again from the first failed record (the ones before it are done)
        self._iterators[shard] = self._iterator(shard, "AT_SEQUENCE_NUMBER", failed_from)

    def _invoke(self, records: list[dict[str, Any]]) -> str | None:
        """Invoke once; the sequence number of the first failed record, or None when all succeeded."""
        self.batches += 1
        try:
            result = self.invoke(self.source.function_id, {"Records": records})
        except FunctionError:
            if self.source.bisect_on_error and len(records) > 1:
                half = len(records) // 2
                return self._invoke(records[:half]) or self._invoke(records[half:])
            return _seq(records[0])
        if not self.source.report_batch_item_failures or not isinstance(result, dict):
            return None
        failures = result.get("batchItemFailures") or []
        ids = [f.get("itemIdentifier") for f in failures if isinstance(f, dict)]
        known = {_seq(r) for r in records}
        if any(i not in known for i in ids):
            return _seq(records[0])  # an unreadable response fails the whole batch, as in Lambda
        return min(ids, key=int) if ids else None

    def _on_failure(self, shard: str, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        info = {
            "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": self.source.function_id},
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": _seq(records[0]),
                "endSequenceNumber": _seq(records[-1]),
                "batchSize": len(records),
                "streamArn": self.source.stream_arn,
            },
        }
        log.warning("stream %s: %d records to the on-failure destination", self.source.function_id, len(records))
        self.sent_to_on_failure += len(records)
        if self.sqs is not None and self.source.on_failure_queue_url:
            self.sqs.send_message(QueueUrl=self.source.on_failure_queue_url, MessageBody=json.dumps(info))


def _seq(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])
