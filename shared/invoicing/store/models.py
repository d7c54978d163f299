"""PynamoDB models: every entity is an item in the one InvoicesTable (see docs/data-model.md).

A discriminator attribute (`type`) lets one Query over an invoice's item collection return the
header and its lines as their own classes. Table name and region are bound at start-up from
settings (`bind`), never hard-coded; the schema itself lives in template.yaml.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model


class Gsi1(GlobalSecondaryIndex["TableItem"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex["TableItem"]):
    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class DueIndex(GlobalSecondaryIndex["TableItem"]):
    class Meta:
        index_name = "due"
        projection = AllProjection()

    due_pk = UnicodeAttribute(hash_key=True)
    due_sk = UnicodeAttribute(range_key=True)


class PdfPendingIndex(GlobalSecondaryIndex["TableItem"]):
    class Meta:
        index_name = "pdf_pending"
        projection = IncludeProjection(["type"])  # the discriminator, so PynamoDB can type the rows

    pdf_pk = UnicodeAttribute(hash_key=True)
    pdf_sk = UnicodeAttribute(range_key=True)


class FeedIndex(GlobalSecondaryIndex["TableItem"]):
    """The webhook event feed (GET /events): keys only, so each outbox record costs its shard 1 WCU;
    readers take the keys of a page and BatchGet the records (store/webhooks.py)."""

    class Meta:
        index_name = "feed"
        projection = KeysOnlyProjection()

    feed_pk = UnicodeAttribute(hash_key=True)
    feed_sk = UnicodeAttribute(range_key=True)


class TableItem(Model):
    class Meta:
        table_name = "invoices"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    type = DiscriminatorAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    due_pk = UnicodeAttribute(null=True)
    due_sk = UnicodeAttribute(null=True)
    pdf_pk = UnicodeAttribute(null=True)
    pdf_sk = UnicodeAttribute(null=True)
    feed_pk = UnicodeAttribute(null=True)
    feed_sk = UnicodeAttribute(null=True)
    ttl = NumberAttribute(null=True)

    gsi1 = Gsi1()
    gsi2 = Gsi2()
    due = DueIndex()
    pdf_pending = PdfPendingIndex()
    feed = FeedIndex()


class CustomerItem(TableItem, discriminator="Customer"):
    customer_id = UnicodeAttribute()
    name = UnicodeAttribute()
    email = UnicodeAttribute()
    address = MapAttribute(null=True)  # type: ignore[var-annotated]
    currency = UnicodeAttribute()
    locale = UnicodeAttribute()
    timezone = UnicodeAttribute()
    tax_id = UnicodeAttribute(null=True)
    reminders_enabled = BooleanAttribute(default=True)
    balances = MapAttribute(null=True)  # type: ignore[var-annotated]  # currency -> minor units
    metadata = MapAttribute(null=True)  # type: ignore[var-annotated]
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute(null=True)  # + 1 on every write (edits and balance moves); absent on old items
    # e-invoicing; absent on items written before them (read as the domain's defaults)
    einvoice_format = UnicodeAttribute(null=True)
    vat_id = UnicodeAttribute(null=True)
    electronic_address = UnicodeAttribute(null=True)
    electronic_address_scheme = UnicodeAttribute(null=True)
    buyer_reference = UnicodeAttribute(null=True)


class SequenceItem(TableItem, discriminator="Sequence"):
    customer_id = UnicodeAttribute()
    next_value = NumberAttribute()


class InvoiceItem(TableItem, discriminator="Invoice"):
    invoice_id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    status = UnicodeAttribute()
    currency = UnicodeAttribute()
    version = NumberAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    subscription_id = UnicodeAttribute(null=True)
    period_start = UnicodeAttribute(null=True)
    period_end = UnicodeAttribute(null=True)
    due_date = UnicodeAttribute(null=True)
    days_until_due = NumberAttribute(default=30)
    memo = UnicodeAttribute(null=True)
    invoice_number = UnicodeAttribute(null=True)
    finalized_at = UnicodeAttribute(null=True)
    voided_at = UnicodeAttribute(null=True)
    paid_at = UnicodeAttribute(null=True)
    marked_uncollectible_at = UnicodeAttribute(null=True)
    subtotal_cents = NumberAttribute(default=0)
    tax_cents = NumberAttribute(default=0)
    total_cents = NumberAttribute(default=0)
    amount_paid_cents = NumberAttribute(default=0)
    amount_remaining_cents = NumberAttribute(default=0)
    # credit notes and customer balance (store/credit_notes.py); absent on older items = 0
    credited_cents = NumberAttribute(null=True)
    pre_payment_credited_cents = NumberAttribute(null=True)
    post_payment_credited_cents = NumberAttribute(null=True)
    refunded_cents = NumberAttribute(null=True)
    starting_balance_cents = NumberAttribute(null=True)
    applied_balance_cents = NumberAttribute(null=True)
    usd_total_cents = NumberAttribute(null=True)
    fx_rate = UnicodeAttribute(null=True)
    fx_rate_source = UnicodeAttribute(null=True)
    fx_rate_as_of = UnicodeAttribute(null=True)
    customer_snapshot = MapAttribute(null=True)  # type: ignore[var-annotated]
    line_taxes = MapAttribute(null=True)  # type: ignore[var-annotated]
    line_count = NumberAttribute(default=0)
    pdf_status = UnicodeAttribute(null=True)
    pdf_s3_key = UnicodeAttribute(null=True)
    pdf_job_id = UnicodeAttribute(null=True)
    pdf_requested_at = UnicodeAttribute(null=True)
    pdf_rendered_at = UnicodeAttribute(null=True)
    reissue_of = UnicodeAttribute(null=True)
    reissued_as = UnicodeAttribute(null=True)
    metadata = MapAttribute(null=True)  # type: ignore[var-annotated]
    purchase_order = UnicodeAttribute(null=True)
    custom_fields = ListAttribute(null=True)  # type: ignore[var-annotated]  # [{"key", "value"}], at most 4
    # the payment link that may be active (domain Invoice.links_tracked); absent on older items
    links_tracked = BooleanAttribute(null=True)
    link_id = UnicodeAttribute(null=True)
    link_expires_at = UnicodeAttribute(null=True)


class LineItem(TableItem, discriminator="InvoiceLine"):
    invoice_id = UnicodeAttribute()
    line_id = UnicodeAttribute()
    description = UnicodeAttribute()
    quantity = UnicodeAttribute()  # DECIMAL(10,4) as text, e.g. "1.5000"
    unit_amount_cents = NumberAttribute()
    amount_cents = NumberAttribute()
    tax_rate_id = UnicodeAttribute(null=True)
    tax_preview = MapAttribute(null=True)  # type: ignore[var-annotated]
    created_at = UnicodeAttribute()
    unit_code = UnicodeAttribute(null=True)  # UN/ECE Rec 20; absent: C62


class EventItem(TableItem, discriminator="InvoiceEvent"):
    invoice_id = UnicodeAttribute()
    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    actor = UnicodeAttribute()
    at = UnicodeAttribute()
    request_id = UnicodeAttribute(null=True)
    from_status = UnicodeAttribute(null=True)
    to_status = UnicodeAttribute(null=True)
    data = MapAttribute(null=True)  # type: ignore[var-annotated]


class WebhookEventItem(TableItem, discriminator="WebhookEvent"):
    """The outbox record of a public event: written in the transaction of the change it reports, read
    by the event log, carried to the webhook fan-out by the table's stream. `ttl`: 30 days."""

    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    object_type = UnicodeAttribute()
    object_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    sequence = NumberAttribute()
    payload = UnicodeAttribute()  # the public event's JSON, exactly as delivered


class WebhookEndpointItem(TableItem, discriminator="WebhookEndpoint"):
    endpoint_id = UnicodeAttribute()
    url = UnicodeAttribute()
    events = ListAttribute(of=UnicodeAttribute)  # type: ignore[var-annotated]
    description = UnicodeAttribute()
    status = UnicodeAttribute()
    secrets = UnicodeAttribute()  # KMS ciphertext (base64) of the signing secrets' JSON; never plain
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute()
    first_failure_at = UnicodeAttribute(null=True)


class WebhookDeliveryItem(TableItem, discriminator="WebhookDelivery"):
    delivery_id = UnicodeAttribute()
    endpoint_id = UnicodeAttribute()
    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    status = UnicodeAttribute()  # pending, succeeded, failed
    attempts = ListAttribute(null=True)  # type: ignore[var-annotated]  # {at, status_code, latency_ms, error}
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class BillingRunItem(TableItem, discriminator="BillingRun"):
    invoice_id = UnicodeAttribute()


class ApiKeyItem(TableItem, discriminator="ApiKey"):
    name = UnicodeAttribute()
    scopes = ListAttribute(of=UnicodeAttribute)  # type: ignore[var-annotated]
    hint = UnicodeAttribute()
    created_at = UnicodeAttribute()
    revoked_at = UnicodeAttribute(null=True)


class BillingRunJobItem(TableItem, discriminator="BillingRunJob"):
    """A bulk billing run (RUN#{id} / RUN): its counters only ever grow, by atomic ADD per SQS batch."""

    run_id = UnicodeAttribute()
    source = UnicodeAttribute()  # inline | upload
    finalize = BooleanAttribute()
    total = NumberAttribute()
    queued = NumberAttribute()
    processed = NumberAttribute()
    created = NumberAttribute()
    finalized = NumberAttribute()
    skipped_duplicates = NumberAttribute()
    failed = NumberAttribute()
    created_at = UnicodeAttribute()
    started_at = UnicodeAttribute(null=True)  # null: an upload not started yet
    upload_expires_at = UnicodeAttribute(null=True)
    reading = BooleanAttribute(null=True)  # true while the starter reads an uploaded run's lines
    next_line = NumberAttribute(null=True)  # the starter's checkpoint (the next line to read)


class BillingRunListingItem(TableItem, discriminator="BillingRunListing"):
    run_id = UnicodeAttribute()


class BillingRunResultItem(TableItem, discriminator="BillingRunResult"):
    """One draft's outcome (RESULT#{index}); a failure has a FAILURE#{index} twin for GET /billing-runs/{id}."""

    index = NumberAttribute()
    outcome = UnicodeAttribute()  # created | finalized | skipped_duplicate | failed
    customer_id = UnicodeAttribute(null=True)
    subscription_id = UnicodeAttribute(null=True)
    period_start = UnicodeAttribute(null=True)
    period_end = UnicodeAttribute(null=True)
    invoice_id = UnicodeAttribute(null=True)
    number = UnicodeAttribute(null=True)
    error_code = UnicodeAttribute(null=True)
    error_message = UnicodeAttribute(null=True)


def bind(table_name: str, region: str) -> None:
    """Point the models at a table; resets cached connections so a rebind takes effect."""
    TableItem.Meta.table_name = table_name
    TableItem.Meta.region = region
    for cls in [TableItem, *_all_subclasses(TableItem)]:
        cls._connection = None  # type: ignore[attr-defined]


def _all_subclasses(cls: type) -> list[type]:
    out: list[type] = []
    subclasses: list[type] = cls.__subclasses__()
    for sub in subclasses:
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


class TaxRateItem(TableItem, discriminator="TaxRate"):
    tax_rate_id = UnicodeAttribute()
    display_name = UnicodeAttribute()
    percentage = UnicodeAttribute()  # decimal text, e.g. "19.0000"
    inclusive = BooleanAttribute()
    country = UnicodeAttribute(null=True)
    jurisdiction = UnicodeAttribute(null=True)
    description = UnicodeAttribute(null=True)
    active = BooleanAttribute(default=True)
    used = BooleanAttribute(default=False)
    created_at = UnicodeAttribute()
    archived_at = UnicodeAttribute(null=True)
    vat_category = UnicodeAttribute(null=True)  # absent: S (rates written before e-invoicing)
    exemption_reason_code = UnicodeAttribute(null=True)
    exemption_reason = UnicodeAttribute(null=True)


class ExchangeRateItem(TableItem, discriminator="ExchangeRate"):
    currency = UnicodeAttribute()
    rate_to_usd = UnicodeAttribute()  # decimal text: USD per one unit of `currency`
    source = UnicodeAttribute()
    as_of = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class PaymentItem(TableItem, discriminator="Payment"):
    invoice_id = UnicodeAttribute()
    payment_id = UnicodeAttribute()
    amount_cents = NumberAttribute()
    currency = UnicodeAttribute()
    method = UnicodeAttribute()
    reference = UnicodeAttribute(null=True)
    paid_at = UnicodeAttribute()
    recorded_at = UnicodeAttribute()
    actor = UnicodeAttribute()
    source = UnicodeAttribute()
    link_id = UnicodeAttribute(null=True)
    provider_ref = UnicodeAttribute(null=True)
    applied = BooleanAttribute(default=True)
    refunded_cents = NumberAttribute(null=True)  # refunds through credit notes (store/credit_notes.py)


class PaymentLinkItem(TableItem, discriminator="InvoicePaymentLink"):
    invoice_id = UnicodeAttribute()
    link_id = UnicodeAttribute()
    token_hash = UnicodeAttribute()  # SHA-256 of the token; the token itself is never stored
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute(null=True)
    expires_at = UnicodeAttribute()
    revoked_at = UnicodeAttribute(null=True)
    used_at = UnicodeAttribute(null=True)
    payment_id = UnicodeAttribute(null=True)


class RateLimitItem(TableItem, discriminator="RateLimit"):
    """A fixed-window counter (one per client and minute); `ttl` lets DynamoDB delete it."""

    hits = NumberAttribute(null=True)


class ReminderItem(TableItem, discriminator="InvoiceReminder"):
    """The reminder ledger (store/reminders.py): pk INVOICE#{id}, sk REMINDER#{kind} (manual:
    REMINDER#manual#{id}). While `sending` it is also on gsi2 (`REMINDERSENDING#{shard}`), the list a
    run retries once the lease has expired."""

    invoice_id = UnicodeAttribute()
    reminder_key = UnicodeAttribute()
    kind = UnicodeAttribute()
    status = UnicodeAttribute()
    trigger = UnicodeAttribute()
    actor = UnicodeAttribute()
    claim_id = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    claimed_at = UnicodeAttribute()
    lease_until = UnicodeAttribute(null=True)
    step_date = UnicodeAttribute(null=True)
    recipient = UnicodeAttribute(null=True)
    sent_at = UnicodeAttribute(null=True)
    message_id = UnicodeAttribute(null=True)
    payment_link_id = UnicodeAttribute(null=True)
    last_error = UnicodeAttribute(null=True)


class ReminderRunItem(TableItem, discriminator="ReminderRun"):
    """The instant of the last completed reminder run: the next run's query window starts after it."""

    ran_at = UnicodeAttribute()
    run_id = UnicodeAttribute(null=True)


class CreditNoteItem(TableItem, discriminator="CreditNote"):
    """pk INVOICE#{iid}, sk CREDITNOTE#{cnid}; gsi1 CREDITNOTE#{cnid} (by id); gsi2
    CUSTOMER#{cid}#CREDITNOTES (a customer's credit notes, newest first)."""

    credit_note_id = UnicodeAttribute()
    invoice_id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    number = UnicodeAttribute()
    invoice_number = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    currency = UnicodeAttribute()
    reason = UnicodeAttribute()
    method = UnicodeAttribute()
    memo = UnicodeAttribute(null=True)
    lines = ListAttribute(null=True)  # type: ignore[var-annotated]
    subtotal_cents = NumberAttribute()
    tax_cents = NumberAttribute()
    total_cents = NumberAttribute()
    pre_payment_cents = NumberAttribute()
    post_payment_cents = NumberAttribute()
    balance_cents = NumberAttribute()
    refund_cents = NumberAttribute()
    out_of_band_cents = NumberAttribute()
    refunds = ListAttribute(null=True)  # type: ignore[var-annotated]
    created_at = UnicodeAttribute()
    actor = UnicodeAttribute()
    voided_at = UnicodeAttribute(null=True)
    pdf_status = UnicodeAttribute(null=True)
    pdf_s3_key = UnicodeAttribute(null=True)
    pdf_job_id = UnicodeAttribute(null=True)
    pdf_rendered_at = UnicodeAttribute(null=True)


class BalanceTransactionItem(TableItem, discriminator="BalanceTransaction"):
    """The customer balance ledger: pk CUSTOMER#{cid}, sk BALTXN#{created_at}#{id}."""

    balance_transaction_id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    currency = UnicodeAttribute()
    amount_cents = NumberAttribute()  # > 0 credit to the customer, < 0 applied to an invoice
    ending_balance_cents = NumberAttribute()
    kind = UnicodeAttribute()
    credit_note_id = UnicodeAttribute(null=True)
    invoice_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    actor = UnicodeAttribute()


class RefundItem(TableItem, discriminator="Refund"):
    """A refund of (part of) a payment: pk INVOICE#{iid}, sk REFUND#{rid}."""

    refund_id = UnicodeAttribute()
    invoice_id = UnicodeAttribute()
    payment_id = UnicodeAttribute()
    credit_note_id = UnicodeAttribute()
    amount_cents = NumberAttribute()
    currency = UnicodeAttribute()
    provider = UnicodeAttribute()  # "manual" (made by hand) or "stripe"
    status = UnicodeAttribute()  # pending (to do by hand / in flight), succeeded, failed
    provider_ref = UnicodeAttribute(null=True)
    payment_reference = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    failure = UnicodeAttribute(null=True)
    # the refund lifecycle (store/refunds.py); absent on older items
    attempts = NumberAttribute(null=True)  # stripe: calls made, each under its own idempotency key
    provider_created = NumberAttribute(null=True)  # stripe: `created` of provider_ref (epoch seconds)
    reference = UnicodeAttribute(null=True)  # manual: finance's reference of the money paid back
    paid_at = UnicodeAttribute(null=True)  # manual: when it was paid back
    completed_by = UnicodeAttribute(null=True)  # manual: who recorded it
    claimed_at = UnicodeAttribute(null=True)  # stripe: the latest attempt's claim, until its outcome
    version = NumberAttribute(null=True)  # every write: + 1, conditioned on the value read
