"""Issue #17: 50 concurrent state changes reach 2 endpoints; each event is delivered to each endpoint,
none is missing, and a duplicate is only ever another copy of the same webhook-id. On a moto server
(its lock keeps DynamoDB's per-item atomicity under threads), the pipeline run as in the other tests."""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3

from tests.integration.conftest import LambdaContext, load_function
from tests.support.builders import draft_of
from tests.support.webhooks import Pipeline, Receiver


def _physical(served_aws) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    kms = boto3.client("kms")
    key_id = next(
        k["KeyId"]
        for k in kms.list_keys()["Keys"]
        if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["Description"].startswith("Seals webhook")
    )
    queue = next(u for u in boto3.client("sqs").list_queues()["QueueUrls"] if "WebhookQueue" in u)
    return key_id, queue


def test_50_concurrent_changes_reach_2_endpoints_each_event_once_per_endpoint(served_aws, monkeypatch):
    from invoicing import root
    from invoicing.domain.events import Actor
    from invoicing.root import get_services
    from invoicing.use_cases import webhooks
    from invoicing.use_cases.customers import create_customer
    from invoicing.use_cases.finalize import finalize_invoice

    key_id, queue_url = _physical(served_aws)
    for name, value in {
        "STAGE": "local",
        "WEBHOOK_SECRETS_KEY_ID": key_id,
        "WEBHOOK_QUEUE_URL": queue_url,
        "WEBHOOK_RETRY_COMPRESSION": "100000",
    }.items():
        monkeypatch.setenv(name, value)
    root.reset()
    svc = get_services()
    actor = Actor("api_key:test")
    first, second = Receiver(), Receiver()
    pipeline = Pipeline(svc.settings.table_name, queue_url, load_function, LambdaContext("Webhooks"))
    try:
        # one customer per draft: 50 changes that do not contend for one number counter (their
        # customer.created events fanned out before any endpoint exists)
        customers = [create_customer(svc, name=f"Customer {i}", email=f"c{i}@example.test").id for i in range(50)]
        pipeline.drain()
        # Given 2 endpoints: one for every event, one for finalizations only
        webhooks.create_endpoint(svc, actor, url=first.url, events=["*"])
        webhooks.create_endpoint(svc, actor, url=second.url, events=["invoice.finalized"])
        drafts = [draft_of(svc, customer_id) for customer_id in customers]
        # When 50 drafts are finalized at once
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda d: finalize_invoice(svc, actor, d.id), drafts))
        page = webhooks.list_events(svc, event_type=None, object_id=None, limit=100, starting_after=None)
        every = {e.id for e in page.items}  # the newest 100: 50 invoice.created (the drafts) + 50 invoice.finalized
        finalized = {e.id for e in page.items if e.type == "invoice.finalized"}
        assert (len(every), len(finalized), {e.type for e in page.items}) == (
            100,
            50,
            {"invoice.created", "invoice.finalized"},
        )
        pipeline.run(until=lambda: set(first.ids()) >= every and set(second.ids()) >= finalized, timeout=240)
        # Then each endpoint got every event it subscribed to, and nothing else
        for receiver, expected in ((first, every), (second, finalized)):
            counts = Counter(receiver.ids())
            assert set(counts) == expected  # none missing; any second copy carries an id seen before
    finally:
        first.close()
        second.close()
        root.reset()
        os.environ.pop("WEBHOOK_RETRY_COMPRESSION", None)
