"""Move invoice headers written before the sharded index keys (or under another IndexShards) to the
keys store/keys.py writes today: `STATUS#{status}#{shard}` (gsi2) and `DUE#{date}#{shard}` (due; an
entry still keyed by its due date, from before the due index held each invoice's next reminder
action, is put at the moment of the backfill, for the next reminder run to place); and
move webhook outbox records (the event feed) from gsi2's `EVENTS#{0..3}` to the keys-only `feed`
index's `EVENTS#{shard}` (feed_pk/feed_sk), taking them off gsi2.

    python -m tools.reshard --table invoices-prod-InvoicesTable-XYZ [--shards 8] [--segments 4]
        [--checkpoint reshard.json] [--region eu-central-1]

A parallel segmented Scan (one thread per segment) reads the headers and outbox records (`type =
Invoice` or `WebhookEvent`, only the attributes the keys need), and each whose index key differs is
updated with a condition on the key it was read with: a concurrent write (a payment, a void) that
moved it meanwhile wrote the new key itself and is never clobbered, and an outbox record that expired
and was deleted meanwhile is not written back as a fragment. Progress is printed per page, and a checkpoint file keeps each
segment's LastEvaluatedKey, so a stopped run resumes where it stopped. Running it again is a no-op.
docs/deploy.md, "Upgrading an existing table".
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "shared") not in sys.path:
    sys.path.insert(0, str(ROOT / "shared"))

from invoicing.store import keys  # noqa: E402


def new_event_keys(item: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """An outbox record's feed keys as today's writer sets them (those that differ), and the gsi2
    keys of the old feed to remove."""
    event_id = item["event_id"]["S"]
    wanted = {
        "feed_pk": keys.event_feed_pk(event_id),
        "feed_sk": keys.event_position_sk(item["created_at"]["S"], event_id),
    }
    changed = {k: v for k, v in wanted.items() if item.get(k, {}).get("S") != v}
    removed = ["gsi2pk", "gsi2sk"] if "gsi2pk" in item else []
    return changed, removed


def event_update(item: dict[str, Any]) -> dict[str, Any] | None:
    """The UpdateItem arguments that move one outbox record onto the feed (None: nothing to move)."""
    changed, removed = new_event_keys(item)
    if not changed and not removed:
        return None
    names = {f"#{k}": k for k in [*changed, *removed]}
    values = {f":new_{k}": {"S": v} for k, v in changed.items()}
    update = "SET " + ", ".join(f"#{k} = :new_{k}" for k in changed) if changed else ""
    if removed:
        update += (" " if update else "") + "REMOVE " + ", ".join(f"#{k}" for k in removed)
    # as read: the record still exists (not expired and deleted since), its feed key unchanged
    condition = ["attribute_exists(pk)"]
    if "feed_pk" in item:
        condition.append("#feed_pk = :old_feed_pk")
        names["#feed_pk"] = "feed_pk"
        values[":old_feed_pk"] = item["feed_pk"]
    else:
        condition.append("attribute_not_exists(#feed_pk)")
        names["#feed_pk"] = "feed_pk"
    args: dict[str, Any] = {
        "UpdateExpression": update,
        "ConditionExpression": " AND ".join(condition),
        "ExpressionAttributeNames": names,
    }
    if values:
        args["ExpressionAttributeValues"] = values
    return args


def header_update(item: dict[str, Any]) -> dict[str, Any] | None:
    """The UpdateItem arguments that move one invoice header to today's index keys (None: nothing to move)."""
    wanted = new_keys(item)
    if not wanted:
        return None
    return {
        "UpdateExpression": "SET " + ", ".join(f"#{k} = :new_{k}" for k in wanted),
        "ConditionExpression": " AND ".join(f"#{k} = :old_{k}" for k in wanted),
        "ExpressionAttributeNames": {f"#{k}": k for k in wanted},
        "ExpressionAttributeValues": {f":new_{k}": {"S": v} for k, v in wanted.items()}
        | {f":old_{k}": item[k] for k in wanted},
    }


def new_keys(item: dict[str, Any], now: datetime | None = None) -> dict[str, str]:
    """The index keys an invoice header should carry now, for those it carries.

    The due index: an entry keyed by its instant (`due_sk = {instant}#{id}`) keeps it and moves to its
    shard. An entry from before (`due_sk = {id}`, keyed by the due date) is put at `now`: the next
    reminder run reads it, decides with the customer's zone and moves it to the invoice's next action
    (the reminder ledger drops a step already sent)."""
    invoice_id = item["pk"]["S"].removeprefix("INVOICE#")
    out = {}
    if "gsi2pk" in item and "status" in item:
        out["gsi2pk"] = keys.status_pk(item["status"]["S"], invoice_id)
    if "due_pk" in item and "due_sk" in item:
        sk = item["due_sk"]["S"]
        if "#" in sk:
            out["due_pk"] = keys.due_pk(keys.due_instant(sk).astimezone(UTC).date(), invoice_id)
        else:
            out["due_pk"], out["due_sk"] = keys.due_keys(now or datetime.now(UTC), invoice_id)
    return {k: v for k, v in out.items() if item[k]["S"] != v}


class Checkpoint:
    def __init__(self, path: Path, segments: int) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {"segments": segments, "progress": {}}
        if path.exists():
            saved = json.loads(path.read_text())
            if saved.get("segments") != segments:
                raise SystemExit(f"{path} was written with --segments {saved.get('segments')}; use that")
            self.state = saved

    def get(self, segment: int) -> dict[str, Any]:
        return dict(self.state["progress"].get(str(segment), {"done": False, "last_key": None}))

    def save(self, segment: int, last_key: dict[str, Any] | None, counts: dict[str, int]) -> None:
        with self.lock:
            entry = self.state["progress"].setdefault(str(segment), {"scanned": 0, "updated": 0, "skipped": 0})
            entry.update(last_key=last_key, done=last_key is None)
            for name, n in counts.items():
                entry[name] = entry.get(name, 0) + n
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state, indent=1))
            tmp.replace(self.path)


def reshard_segment(client: Any, table: str, segment: int, segments: int, checkpoint: Checkpoint) -> dict[str, int]:
    totals = {"scanned": 0, "updated": 0, "skipped": 0}
    state = checkpoint.get(segment)
    if state.get("done"):
        return totals
    last_key = state.get("last_key")
    while True:
        request: dict[str, Any] = {
            "TableName": table,
            "Segment": segment,
            "TotalSegments": segments,
            "FilterExpression": "#t IN (:invoice, :event)",
            "ProjectionExpression": "pk, sk, #t, #s, gsi2pk, due_pk, due_sk, event_id, created_at, feed_pk, feed_sk",
            "ExpressionAttributeNames": {"#t": "type", "#s": "status"},
            "ExpressionAttributeValues": {":invoice": {"S": "Invoice"}, ":event": {"S": "WebhookEvent"}},
        }
        if last_key:
            request["ExclusiveStartKey"] = last_key
        page = client.scan(**request)
        counts = {"scanned": page.get("ScannedCount", 0), "updated": 0, "skipped": 0}
        for item in page.get("Items", []):
            kind, sk = item.get("type", {}).get("S"), item.get("sk", {}).get("S")
            if kind == "Invoice" and sk == keys.INVOICE_SK:
                update = header_update(item)
            elif kind == "WebhookEvent" and sk == keys.WEBHOOK_EVENT_SK and "event_id" in item:
                update = event_update(item)
            else:
                continue
            if update is None:
                continue
            try:
                client.update_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]}, **update)
                counts["updated"] += 1
            except client.exceptions.ConditionalCheckFailedException:
                counts["skipped"] += 1  # written meanwhile with the current keys, or expired and deleted
        last_key = page.get("LastEvaluatedKey")
        checkpoint.save(segment, last_key, counts)
        for name, n in counts.items():
            totals[name] += n
        print(
            f"segment {segment}/{segments}: scanned {totals['scanned']}, updated {totals['updated']}, "
            f"skipped {totals['skipped']}{'' if last_key else ' (done)'}",
            flush=True,
        )
        if not last_key:
            return totals


def main(argv: list[str] | None = None, client: Any = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(prog="python -m tools.reshard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--shards", type=int, default=keys.DEFAULT_INDEX_SHARDS, help="the stack's IndexShards")
    parser.add_argument("--segments", type=int, default=4, help="parallel Scan segments (threads)")
    parser.add_argument("--checkpoint", type=Path, default=Path("reshard-checkpoint.json"))
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    keys.configure_index_shards(args.shards)
    if client is None:
        import boto3

        client = boto3.client("dynamodb", region_name=args.region)
    checkpoint = Checkpoint(args.checkpoint, args.segments)
    with ThreadPoolExecutor(max_workers=args.segments) as pool:
        results = list(
            pool.map(lambda s: reshard_segment(client, args.table, s, args.segments, checkpoint), range(args.segments))
        )
    totals = {name: sum(r[name] for r in results) for name in ("scanned", "updated", "skipped")}
    print(f"done: {totals}", flush=True)
    return totals


if __name__ == "__main__":
    main()
