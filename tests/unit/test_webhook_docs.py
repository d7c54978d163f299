"""docs/webhooks.md stays true to the code: its catalogue names every public event type, and its
example payloads (one per type) show only fields the objects really have, in sequences that grow
within each object."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from invoicing.domain import webhooks as rules
from invoicing.schemas.objects import CreditNoteOut, CustomerOut, InvoiceOut, LineOut, RefundOut, SentReminderOut

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "webhooks.md").read_text(encoding="utf-8")
ENDPOINT_FIELDS = {"id", "url", "events", "description", "status", "created_at", "updated_at", "disabled_reason"}
FIELDS = {
    "invoice": set(InvoiceOut.model_fields),
    "credit_note": set(CreditNoteOut.model_fields),
    "refund": set(RefundOut.model_fields),
    "customer": set(CustomerOut.model_fields),
    "reminder": set(SentReminderOut.model_fields),
    "webhook_endpoint": ENDPOINT_FIELDS,
}


def _examples() -> list[dict[str, Any]]:
    section = DOCS[DOCS.index("One example payload per type") :]
    block = section[section.index("```json") + len("```json") : section.index("```", section.index("```json") + 7)]
    return [json.loads(line) for line in block.strip().splitlines()]


def test_the_catalogue_table_names_every_public_type():
    rows = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", DOCS, re.MULTILINE))
    assert rows == set(rules.PUBLIC_TYPES)


def test_one_example_per_type_with_the_envelope_and_real_fields():
    examples = _examples()
    assert sorted(e["type"] for e in examples) == sorted(rules.PUBLIC_TYPES)
    for event in examples:
        assert set(event) == {"id", "type", "created_at", "data", "sequence"}, event["type"]
        obj = event["data"]["object"]
        kind = event["type"].split(".")[0]
        assert set(obj) <= FIELDS[kind], (event["type"], set(obj) - FIELDS[kind])
        for line in obj.get("lines") or []:
            assert set(line) <= set(LineOut.model_fields)
        if "version" in obj:  # a deleted draft is shown as it was: its event is one version on
            deleted = event["type"] == "invoice.deleted"
            assert event["sequence"] // 100 == obj["version"] + deleted, event["type"]


def test_the_examples_sequences_grow_within_each_object():
    by_object: dict[str, list[int]] = {}
    for event in _examples():
        by_object.setdefault(event["data"]["object"]["id"], []).append(event["sequence"])
    for object_id, sequences in by_object.items():
        assert sequences == sorted(set(sequences)), object_id
