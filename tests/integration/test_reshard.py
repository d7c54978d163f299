"""tools/reshard.py on moto: headers on the old unsharded index keys move to today's keys, a second run
changes nothing, and a run resumes from its checkpoint (docs/deploy.md, "Upgrading an existing table")."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import time_machine

from invoicing.store import keys
from tools import reshard


def old_header(table, invoice_id: str, status: str, due: str | None) -> None:  # type: ignore[no-untyped-def]
    item = {
        "pk": f"INVOICE#{invoice_id}",
        "sk": "INVOICE",
        "type": "Invoice",
        "invoice_id": invoice_id,
        "status": status,
        "gsi2pk": f"STATUS#{status}",  # the format before the sharded keys
        "gsi2sk": f"2026-01-0{len(invoice_id) % 9 + 1}T00:00:00.000Z#{invoice_id}",
    }
    if due:
        item |= {"due_date": due, "due_pk": f"DUE#{due}", "due_sk": invoice_id}
    table.put_item(Item=item)


def test_old_keys_move_to_the_sharded_keys_once(aws, tmp_path):  # type: ignore[no-untyped-def]
    # Given headers written with the unsharded keys, and an item that is not an invoice
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws.table_name)
    opened = [f"in_old{i:03d}" for i in range(12)]
    for iid in opened:
        old_header(table, iid, "open", "2026-02-01")
    old_header(table, "in_paid001", "paid", None)
    table.put_item(Item={"pk": "TAXRATE#t1", "sk": "TAXRATE", "type": "TaxRate", "gsi2pk": "TAXRATES", "gsi2sk": "x"})
    checkpoint = tmp_path / "cp.json"
    # When the backfill runs
    args = ["--table", aws.table_name, "--shards", "8", "--segments", "1", "--checkpoint", str(checkpoint)]
    with time_machine.travel(datetime(2026, 11, 28, 12, 0, tzinfo=UTC), tick=False):
        totals = reshard.main(args, client=boto3.client("dynamodb", region_name="us-east-1"))
    # Then every header carries today's keys, and nothing else changed
    assert totals["updated"] == 13
    for iid in opened:
        item = table.get_item(Key={"pk": f"INVOICE#{iid}", "sk": "INVOICE"})["Item"]
        assert item["gsi2pk"] == keys.status_shard_pk("open", keys.index_shard(iid, 8))
        # keyed by its due date before: now at the backfill's moment, for the next reminder run to place
        assert item["due_pk"] == f"DUE#2026-11-28#{keys.index_shard(iid, 8)}"
        assert item["due_sk"] == f"2026-11-28T12:00:00.000Z#{iid}"
    paid = table.get_item(Key={"pk": "INVOICE#in_paid001", "sk": "INVOICE"})["Item"]
    assert paid["gsi2pk"] == keys.status_shard_pk("paid", keys.index_shard("in_paid001", 8)) and "due_pk" not in paid
    assert table.get_item(Key={"pk": "TAXRATE#t1", "sk": "TAXRATE"})["Item"]["gsi2pk"] == "TAXRATES"
    assert json.loads(checkpoint.read_text())["progress"]["0"]["done"] is True
    # and a finished checkpoint resumes to nothing, a fresh run finds nothing left to move
    assert reshard.main(args)["scanned"] == 0
    fresh = [*args[:-1], str(tmp_path / "fresh.json")]
    assert reshard.main(fresh, client=boto3.client("dynamodb", region_name="us-east-1"))["updated"] == 0


def test_an_entry_keyed_by_its_instant_only_moves_to_its_shard(aws, tmp_path):  # type: ignore[no-untyped-def]
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws.table_name)
    iid = "in_inst001"
    sk = f"2026-03-23T15:00:00.000Z#{iid}"
    table.put_item(
        Item={
            "pk": f"INVOICE#{iid}",
            "sk": "INVOICE",
            "type": "Invoice",
            "status": "open",
            "gsi2pk": keys.status_shard_pk("open", keys.index_shard(iid, 8)),
            "gsi2sk": f"2026-03-01T00:00:00.000Z#{iid}",
            "due_pk": "DUE#2026-03-23#0",  # written under another IndexShards
            "due_sk": sk,
        }
    )
    args = ["--table", aws.table_name, "--shards", "8", "--segments", "1", "--checkpoint", str(tmp_path / "c.json")]
    assert reshard.main(args, client=boto3.client("dynamodb", region_name="us-east-1"))["updated"] == 1
    item = table.get_item(Key={"pk": f"INVOICE#{iid}", "sk": "INVOICE"})["Item"]
    assert (item["due_pk"], item["due_sk"]) == (f"DUE#2026-03-23#{keys.index_shard(iid, 8)}", sk)


def test_a_run_resumes_after_its_last_page(aws, tmp_path):  # type: ignore[no-untyped-def]
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws.table_name)
    for i in range(5):
        old_header(table, f"in_res{i:03d}", "open", "2026-03-01")
    client = boto3.client("dynamodb", region_name="us-east-1")
    first = client.scan(TableName=aws.table_name, Limit=2)
    checkpoint = tmp_path / "cp.json"
    # a run that stopped after its first page (2 items read) left this checkpoint
    checkpoint.write_text(
        json.dumps({"segments": 1, "progress": {"0": {"done": False, "last_key": first["LastEvaluatedKey"]}}})
    )
    args = ["--table", aws.table_name, "--segments", "1", "--checkpoint", str(checkpoint)]
    assert reshard.main(args, client=client)["updated"] == 3  # only what follows the saved position
    moved = [
        i
        for i in range(5)
        if table.get_item(Key={"pk": f"INVOICE#in_res{i:03d}", "sk": "INVOICE"})["Item"]["gsi2pk"] != "STATUS#open"
    ]
    assert len(moved) == 3


def old_outbox_record(table, event_id: str, created_at: str) -> None:  # type: ignore[no-untyped-def]
    table.put_item(
        Item={
            "pk": f"WHEVENT#{event_id}",
            "sk": "WHEVENT",
            "type": "WebhookEvent",
            "event_id": event_id,
            "event_type": "invoice.created",
            "created_at": created_at,
            "gsi2pk": f"EVENTS#{len(event_id) % 4}",  # the feed before its own index: gsi2, 4 shards
            "gsi2sk": f"{created_at}#{event_id}",
        }
    )


def test_outbox_records_move_to_the_feed_index_and_off_gsi2(aws, tmp_path):  # type: ignore[no-untyped-def]
    # Given outbox records written on the old gsi2 feed
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws.table_name)
    events = {f"evt_old{i:03d}": f"2026-01-01T00:00:{i:02d}.000Z" for i in range(9)}
    for event_id, at in events.items():
        old_outbox_record(table, event_id, at)
    args = ["--table", aws.table_name, "--shards", "3", "--segments", "2", "--checkpoint", str(tmp_path / "cp.json")]
    # When the backfill runs
    assert reshard.main(args, client=boto3.client("dynamodb", region_name="us-east-1"))["updated"] == 9
    # Then each record is on its feed shard of IndexShards, and no longer on gsi2
    for event_id, at in events.items():
        item = table.get_item(Key={"pk": f"WHEVENT#{event_id}", "sk": "WHEVENT"})["Item"]
        assert item["feed_pk"] == keys.event_feed_shard(keys.index_shard(event_id, 3))
        assert item["feed_sk"] == f"{at}#{event_id}"
        assert "gsi2pk" not in item and "gsi2sk" not in item
    # and the feed reads them back, newest first, across its shards
    client = boto3.client("dynamodb", region_name="us-east-1")
    on_feed = [
        row["pk"]["S"]
        for shard in range(3)
        for row in client.query(
            TableName=aws.table_name,
            IndexName="feed",
            KeyConditionExpression="feed_pk = :p",
            ExpressionAttributeValues={":p": {"S": keys.event_feed_shard(shard)}},
        )["Items"]
    ]
    assert sorted(on_feed) == sorted(f"WHEVENT#{e}" for e in events)
    # and a second run finds nothing left to move
    fresh = [*args[:-1], str(tmp_path / "fresh.json")]
    assert reshard.main(fresh, client=client)["updated"] == 0


def test_an_outbox_record_deleted_meanwhile_is_not_written_back(aws):  # type: ignore[no-untyped-def]
    # Given a record read by the scan, then expired and deleted by DynamoDB's TTL before the update
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws.table_name)
    client = boto3.client("dynamodb", region_name="us-east-1")
    old_outbox_record(table, "evt_gone001", "2026-01-01T00:00:00.000Z")
    read = client.get_item(TableName=aws.table_name, Key={"pk": {"S": "WHEVENT#evt_gone001"}, "sk": {"S": "WHEVENT"}})
    table.delete_item(Key={"pk": "WHEVENT#evt_gone001", "sk": "WHEVENT"})
    update = reshard.event_update(read["Item"])
    assert update is not None
    # When its update is sent, Then the condition refuses it and no fragment appears
    try:
        client.update_item(TableName=aws.table_name, Key={"pk": read["Item"]["pk"], "sk": read["Item"]["sk"]}, **update)
        raise AssertionError("the update should have been refused")
    except client.exceptions.ConditionalCheckFailedException:
        pass
    assert "Item" not in client.get_item(
        TableName=aws.table_name, Key={"pk": {"S": "WHEVENT#evt_gone001"}, "sk": {"S": "WHEVENT"}}
    )
