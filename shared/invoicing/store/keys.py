"""Every key of the one table, spelled once (docs/data-model.md, "Items").

Partition and sort keys, index keys and the shard functions of the sparse indexes. Nothing else in
the code writes `"INVOICE#..."` or `"STATUS#..."`: a key format changes here or nowhere.
"""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime

from invoicing.clock import iso

Key = tuple[str, str]

INVOICE_SK = "INVOICE"
CUSTOMER_SK = "CUSTOMER"
API_KEY_SK = "APIKEY"
BILLING_RUN_SK = "BILLINGRUN"
CUSTOMERS_LIST = "CUSTOMERS"  # gsi1: every customer
EVENT_PREFIX = "EVENT#"
CUSTOMER_INVOICE_PREFIX = "INVOICE#"  # gsi1sk of invoices under their customer
LINES_END = "LINE#~"  # a header and its lines: sk between INVOICE_SK and this
API_KEYS_LIST = "APIKEYS"  # gsi2: every API key
PDF_PENDING_SHARDS = 4


def customer_pk(customer_id: str) -> str:
    return f"CUSTOMER#{customer_id}"


def invoice_pk(invoice_id: str) -> str:
    return f"INVOICE#{invoice_id}"


def header_key(invoice_id: str) -> Key:
    return (invoice_pk(invoice_id), INVOICE_SK)


def customer_key(customer_id: str) -> Key:
    return (customer_pk(customer_id), CUSTOMER_SK)


def sequence_sk(kind: str, year: int) -> str:
    return f"SEQ#{kind}#{year:04d}"


def sequence_key(customer_id: str, kind: str, year: int) -> Key:
    return (customer_pk(customer_id), sequence_sk(kind, year))


def line_sk(line_id: str) -> str:
    return f"LINE#{line_id}"


def event_sk(at: str, event_id: str) -> str:
    return f"{EVENT_PREFIX}{at}#{event_id}"


def customers_list_sk(created_at: str, customer_id: str) -> str:
    """gsi1 under CUSTOMERS: every customer, newest first."""
    return f"{created_at}#{customer_id}"


def customer_invoice_sk(created_at: str, invoice_id: str) -> str:
    """gsi1 under CUSTOMER#{cid}: a customer's invoices, newest first (listing pattern 2)."""
    return f"{CUSTOMER_INVOICE_PREFIX}{created_at}#{invoice_id}"


# -- sharded index keys (docs/data-model.md, "Sharded index keys"; docs/performance.md, "Partition heat")
# A status or a due date is shared by a whole billing run's invoices: written as one index partition
# key, it caps the run at one partition's 1,000 WCU/s. Each such key is spread over `index_shards()`
# partitions by a hash of the item's id; readers query every shard and merge (store/shards.py).
DEFAULT_INDEX_SHARDS = 8
MAX_INDEX_SHARDS = 64
_index_shards = DEFAULT_INDEX_SHARDS


def configure_index_shards(count: int) -> None:
    """Set N once at start-up from settings (the template's IndexShards parameter). Changing N on a
    live table moves keys: run `python -m tools.reshard` after (docs/deploy.md)."""
    global _index_shards
    if not 1 <= count <= MAX_INDEX_SHARDS:
        raise ValueError(f"index shards must be 1..{MAX_INDEX_SHARDS}, not {count}")
    _index_shards = count


def index_shards() -> int:
    return _index_shards


def index_shard(item_id: str, shards: int | None = None) -> int:
    """The shard of an item: crc32 of its id, stable across processes (unlike hash())."""
    return zlib.crc32(item_id.encode()) % (shards or _index_shards)


def status_pk(status: str, invoice_id: str) -> str:
    """gsi2: invoices by status (listing pattern 4), in the invoice's shard."""
    return status_shard_pk(status, index_shard(invoice_id))


def status_shard_pk(status: str, shard: int) -> str:
    return f"STATUS#{status}#{shard}"


def status_sk(created_at: str, invoice_id: str) -> str:
    """gsi2 sort key of an invoice: newest first, unique (a total order every shard shares)."""
    return f"{created_at}#{invoice_id}"


def due_pk(day: date, invoice_id: str) -> str:
    """The sparse `due` index: open invoices by the UTC date of their next reminder action
    (domain.reminders.next_action_at), in the invoice's shard."""
    return due_shard_pk(day, index_shard(invoice_id))


def due_sk(at: str, invoice_id: str) -> str:
    """The `due` index's sort key: the instant (clock.iso) of the invoice's next reminder action, so a
    run reads a date's entries up to now and no further."""
    return f"{at}#{invoice_id}"


def due_instant(due_sk: str) -> datetime:
    """The instant a `due` index sort key was written for (the inverse of `due_sk`)."""
    return datetime.fromisoformat(due_sk.split("#", 1)[0].replace("Z", "+00:00"))


def due_keys(at: datetime, invoice_id: str) -> tuple[str, str]:
    """(due_pk, due_sk) of an open invoice whose next reminder action is at `at`."""
    utc = at.astimezone(UTC)
    return due_pk(utc.date(), invoice_id), due_sk(iso(utc), invoice_id)


def due_shard_pk(day: date, shard: int) -> str:
    return f"DUE#{day.isoformat()}#{shard}"


def pdf_pending_pk(invoice_id: str) -> str:
    """The sparse pending-PDF index is spread over a few partitions so that a billing run's burst of
    finalizations never concentrates on one index partition."""
    return pdf_pending_shard(zlib.crc32(invoice_id.encode()) % PDF_PENDING_SHARDS)


def pdf_pending_shard(shard: int) -> str:
    return f"PDFPENDING#{shard}"


def billing_run_pk(customer_id: str, subscription_id: str, start: date, end: date) -> str:
    return f"BILLINGRUN#{customer_id}#{subscription_id}#{start.isoformat()}#{end.isoformat()}"


def payment_sk(payment_id: str) -> str:
    return f"PAYMENT#{payment_id}"


PAYMENT_FEED_SHARDS = 4


def payment_feed_pk(payment_id: str) -> str:
    """gsi2: every payment by the time it was paid, spread over a few partitions (reports)."""
    return payment_feed_shard(zlib.crc32(payment_id.encode()) % PAYMENT_FEED_SHARDS)


def payment_feed_shard(shard: int) -> str:
    return f"PAYMENTS#{shard}"


def payment_feed_sk(paid_at: str, payment_id: str) -> str:
    return f"{paid_at}#{payment_id}"


def link_sk(link_id: str) -> str:
    return f"PAYLINK#{link_id}"


def token_gsi1pk(token_hash: str) -> str:
    return f"PAYTOKEN#{token_hash}"


def balance_txn_sk(created_at: str, txn_id: str) -> str:
    return f"BALTXN#{created_at}#{txn_id}"


TAX_RATES_INDEX = "TAXRATES"  # gsi2: every tax rate, oldest first


def tax_rate_key(rate_id: str) -> Key:
    return f"TAXRATE#{rate_id}", "TAXRATE"


def exchange_rate_key(currency: str) -> Key:
    return f"FXRATE#{currency}", "FXRATE"


def api_key_pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


def api_key_hash_of(pk: str) -> str:
    """The key hash an API key's partition key holds (the inverse of api_key_pk)."""
    return pk.removeprefix("APIKEY#")


CREDIT_NOTE_PREFIX = "CREDITNOTE#"
REFUND_PREFIX = "REFUND#"
REMINDER_PREFIX = "REMINDER#"
REMINDER_SENDING_SHARDS = 4


def credit_note_sk(credit_note_id: str) -> str:
    return f"{CREDIT_NOTE_PREFIX}{credit_note_id}"


def credit_note_gsi1pk(credit_note_id: str) -> str:
    return f"{CREDIT_NOTE_PREFIX}{credit_note_id}"


def customer_credit_notes_pk(customer_id: str) -> str:
    return f"CUSTOMER#{customer_id}#CREDITNOTES"


def refund_sk(refund_id: str) -> str:
    return f"{REFUND_PREFIX}{refund_id}"


def reminder_sk(key: str) -> str:
    return f"{REMINDER_PREFIX}{key}"


def reminder_sending_pk(invoice_id: str, key: str) -> str:
    """Spread over a few partitions: a big run's claims must not all write one index partition."""
    return f"REMINDERSENDING#{zlib.crc32(f'{invoice_id}#{key}'.encode()) % REMINDER_SENDING_SHARDS}"


def reminder_sending_sk(lease_until: str, invoice_id: str, key: str) -> str:
    return f"{lease_until}#{invoice_id}#{key}"


REMINDER_RUN_CURSOR: Key = ("REMINDERRUN", "CURSOR")


def rate_limit_key(client_key: str, window: int) -> Key:
    """The pay pages' hit counter of one client in one fixed window."""
    return (f"RATELIMIT#{client_key}#{window}", "RATELIMIT")


# -- webhooks (docs/data-model.md, "Webhooks")
WEBHOOK_EVENT_SK = "WHEVENT"
WEBHOOK_ENDPOINT_SK = "WHENDPOINT"
WEBHOOK_ENDPOINTS_LIST = "WHENDPOINTS"  # gsi1: every endpoint (a handful per account)
DELIVERY_PREFIX = "DELIVERY#"


def webhook_event_key(event_id: str) -> Key:
    """The outbox record of a public event (GET /events/{id}); the table's stream carries it out."""
    return (f"WHEVENT#{event_id}", WEBHOOK_EVENT_SK)


def webhook_event_id_of(pk: str) -> str:
    """The event id an outbox record's partition key holds (the inverse of webhook_event_key)."""
    return pk.removeprefix("WHEVENT#")


def object_events_pk(object_id: str) -> str:
    """gsi1: the public events of one object, newest first (GET /events?object_id=)."""
    return f"OBJEVENTS#{object_id}"


def event_feed_pk(event_id: str) -> str:
    """The KEYS_ONLY `feed` index: every public event, newest first, in the event's shard of
    `index_shards()` (GET /events). Every outbox record of a billing run lands here, so it is sharded
    like STATUS#/DUE#, and its index entry is keys only (1 WCU) while the record carries the object."""
    return event_feed_shard(index_shard(event_id))


def event_feed_shard(shard: int) -> str:
    return f"EVENTS#{shard}"


def event_position_sk(created_at: str, event_id: str) -> str:
    """The feed's sort key (and gsi1's under OBJEVENTS#): newest first, unique, one order every shard shares."""
    return f"{created_at}#{event_id}"


def webhook_endpoint_key(endpoint_id: str) -> Key:
    return (f"WHENDPOINT#{endpoint_id}", WEBHOOK_ENDPOINT_SK)


def delivery_sk(delivery_id: str) -> str:
    """Under the endpoint's partition; delivery ids sort by creation, so the list reads newest first."""
    return f"{DELIVERY_PREFIX}{delivery_id}"


# ---------------------------------------------------------------- bulk billing runs (POST /billing-runs)
# A run's job item and its per-draft records share one item collection (RUN#{id}); the listing of runs
# is one item per run under BILLINGRUNS (a few runs a month: no hot key). Kept apart from the index
# keys above, which are sharded separately.
BILLING_RUN_JOB_SK = "RUN"
BILLING_RUNS_LIST = "BILLINGRUNS"
BILLING_RUN_RESULT_PREFIX = "RESULT#"
BILLING_RUN_FAILURE_PREFIX = "FAILURE#"


def billing_run_job_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


def billing_run_job_key(run_id: str) -> Key:
    return (billing_run_job_pk(run_id), BILLING_RUN_JOB_SK)


def billing_run_result_key(run_id: str, index: int) -> Key:
    return (billing_run_job_pk(run_id), f"{BILLING_RUN_RESULT_PREFIX}{index:07d}")


def billing_run_failure_key(run_id: str, index: int) -> Key:
    return (billing_run_job_pk(run_id), f"{BILLING_RUN_FAILURE_PREFIX}{index:07d}")


def billing_run_listing_key(created_at: str, run_id: str) -> Key:
    return (BILLING_RUNS_LIST, f"{created_at}#{run_id}")


def billing_run_input_object(run_id: str) -> str:
    """The S3 object holding a run's drafts, one JSON object per line (uploaded or written by the API)."""
    return f"billing-runs/{run_id}/input.jsonl"
