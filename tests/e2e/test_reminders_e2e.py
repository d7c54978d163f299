"""Reminders through the whole local stack (`make dev`): the schedule fired over HTTP, the job through
the local SQS poller to the worker, the mail read back from the local SES outbox.

The stack runs on today's clock, so the test back-dates one invoice in the local DynamoDB (issued ten
days ago, due four days ago: its `overdue` step fell due yesterday) and removes the run cursor, as if
this were the first run.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from invoicing.store import keys

pytestmark = pytest.mark.e2e


def call(stack: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = requests.request(
        method,
        stack.api_url + path,
        json=body,
        headers={"Authorization": f"Bearer {stack.api_key}"},
        timeout=60,
    )
    return response.status_code, (response.json() if response.content else None)


def wait_for_mail(stack: Any, to: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        mails = [m for m in requests.get(stack.outbox_url, timeout=30).json() if to in (m.get("to") or [])]
        if len(mails) >= count or time.monotonic() > deadline:
            return mails
        time.sleep(0.25)


def test_schedule_sends_the_overdue_reminder_and_the_api_a_manual_one(local_stack):
    stack = local_stack
    email = f"ap-{uuid.uuid4().hex[:8]}@e2e.test"
    status, customer = call(stack, "POST", "/customers", {"name": "E2E Reminders", "email": email})
    assert status == 201, customer
    line = {"description": "Support, November", "quantity": "1", "unit_amount_cents": 4200}
    status, draft = call(stack, "POST", "/invoices", {"customer_id": customer["id"], "lines": [line]})
    assert status == 201, draft
    status, invoice = call(stack, "POST", f"/invoices/{draft['id']}/finalize")
    assert status == 200, invoice

    # back-date it in the local store (the stack cannot travel in time)
    ddb = stack.client("dynamodb")
    table = next(t for t in ddb.list_tables()["TableNames"] if t.endswith("InvoicesTable"))
    now = datetime.now(UTC)
    due = (now - timedelta(days=4)).date().isoformat()
    issued = (now - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    # and its due-index entry at now, as a backfill puts an entry (its overdue step, +3 days, was yesterday)
    due_pk, due_sk = keys.due_keys(now, invoice["id"])
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": f"INVOICE#{invoice['id']}"}, "sk": {"S": "INVOICE"}},
        UpdateExpression="SET due_date = :d, due_pk = :p, due_sk = :s, finalized_at = :f",
        ExpressionAttributeValues={
            ":d": {"S": due},
            ":p": {"S": due_pk},
            ":s": {"S": due_sk},
            ":f": {"S": issued},
        },
    )
    ddb.delete_item(TableName=table, Key={"pk": {"S": "REMINDERRUN"}, "sk": {"S": "CURSOR"}})

    # When the daily schedule fires
    fired = requests.post(f"{stack.api_url}/_local/schedules/SendRemindersFunction", timeout=120)
    assert fired.status_code == 200, fired.text
    assert fired.json()["reminders_enqueued"] >= 1
    # Then the worker sends the overdue notice, with a payment link
    (mail,) = wait_for_mail(stack, email, 1)
    assert mail["subject"].startswith(f"Overdue: invoice {invoice['invoice_number']}")
    assert "$42.00" in mail["html"] and "$42.00" in mail["text"]
    # pointing at this stack: the worker runs outside a request and reads the base URL from SSM
    assert re.search(re.escape(stack.api_url) + r"/pay/[A-Za-z0-9_-]{32,}", mail["text"])
    # And a second fire sends nothing more
    requests.post(f"{stack.api_url}/_local/schedules/SendRemindersFunction", timeout=120)
    time.sleep(2)
    assert len(wait_for_mail(stack, email, 2, timeout=3)) == 1

    # When a manual reminder is sent through the API
    status, entry = call(stack, "POST", f"/invoices/{invoice['id']}/reminders")
    assert status == 201 and entry["kind"] == "manual" and entry["status"] == "sent", entry
    assert len(wait_for_mail(stack, email, 2)) == 2
    status, listed = call(stack, "GET", f"/invoices/{invoice['id']}/reminders")
    assert status == 200 and sorted(r["kind"] for r in listed["data"]) == ["manual", "overdue"]
