"""The OpenAPI document: what Powertools derives from the routes and models, plus what it cannot.

- `components.securitySchemes` (HTTP bearer: the API key) and `security` on every admin operation, so
  Swagger UI shows its Authorize button and a generated client sends the key;
- `servers`, per request: the host and path prefix the caller reached us on (`/<stage>` on the
  execute-api URL, nothing locally or on a custom domain without a base path), so "Try it out" works
  wherever the document was read;
- `tags`, one per resource, to group the operations;
- response `links`, which chain create customer -> create invoice -> add line -> finalize -> record
  payment -> credit note, for readers and for stateful fuzzers;
- `GET /invoices` requires customer_id or status: one exploded query object whose schema says so
  (a plain parameter list cannot say "at least one of").
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any

from invoicing.adapters.public_url import base_url_of_request

SECURITY_SCHEME = "ApiKey"
TAGS: list[dict[str, str]] = [
    {"name": "customers", "description": "Who is billed"},
    {"name": "invoices", "description": "Drafts, lines, the lifecycle and the audit trail"},
    {"name": "payments", "description": "Payments and payment links"},
    {"name": "credit notes", "description": "Credit notes, their refunds and the customer balance ledger"},
    {"name": "documents", "description": "PDFs"},
    {"name": "reminders", "description": "Reminder mails"},
    {"name": "rates", "description": "Tax rates and exchange rates"},
    {"name": "webhooks", "description": "The public event log and signed webhook endpoints"},
]


def tag_of(path: str) -> str:
    if path.startswith(("/credit-notes", "/invoices/{invoice_id}/credit-notes")) or path.endswith(
        "/balance-transactions"
    ):
        return "credit notes"
    if path.startswith(("/invoices/{invoice_id}/payments", "/invoices/{invoice_id}/payment-link")):
        return "payments"
    if path.startswith("/invoices/{invoice_id}/pdf"):
        return "documents"
    if path.startswith("/invoices/{invoice_id}/reminders"):
        return "reminders"
    if path.startswith(("/tax-rates", "/exchange-rates")):
        return "rates"
    if path.startswith("/customers"):
        return "customers"
    if path.startswith(("/events", "/webhook-endpoints")):
        return "webhooks"
    return "invoices"


# (method, path, status) of a response -> links: (name, method, path, parameters, request body)
_ID = "$response.body#/id"
_INVOICE_ID = {"invoice_id": _ID}
LINKS: dict[tuple[str, str, str], list[tuple[str, str, str, dict[str, str], dict[str, str] | None]]] = {
    ("post", "/customers", "201"): [
        ("GetCustomer", "get", "/customers/{customer_id}", {"customer_id": _ID}, None),
        ("UpdateCustomer", "patch", "/customers/{customer_id}", {"customer_id": _ID}, None),
        ("CreateInvoice", "post", "/invoices", {}, {"customer_id": _ID}),
        ("ListBalanceTransactions", "get", "/customers/{customer_id}/balance-transactions", {"customer_id": _ID}, None),
    ],
    ("post", "/invoices", "201"): [
        ("GetInvoice", "get", "/invoices/{invoice_id}", _INVOICE_ID, None),
        ("UpdateInvoice", "patch", "/invoices/{invoice_id}", _INVOICE_ID, None),
        ("AddLine", "post", "/invoices/{invoice_id}/lines", _INVOICE_ID, None),
        ("FinalizeInvoice", "post", "/invoices/{invoice_id}/finalize", _INVOICE_ID, None),
        ("DeleteInvoice", "delete", "/invoices/{invoice_id}", _INVOICE_ID, None),
        ("ListEvents", "get", "/invoices/{invoice_id}/events", _INVOICE_ID, None),
    ],
    ("post", "/invoices/{invoice_id}/lines", "201"): [
        (
            "UpdateLine",
            "patch",
            "/invoices/{invoice_id}/lines/{line_id}",
            {"invoice_id": _ID, "line_id": "$response.body#/lines/0/id"},
            None,
        ),
        (
            "DeleteLine",
            "delete",
            "/invoices/{invoice_id}/lines/{line_id}",
            {"invoice_id": _ID, "line_id": "$response.body#/lines/0/id"},
            None,
        ),
        ("FinalizeInvoice", "post", "/invoices/{invoice_id}/finalize", _INVOICE_ID, None),
    ],
    ("post", "/invoices/{invoice_id}/finalize", "200"): [
        ("GetInvoice", "get", "/invoices/{invoice_id}", _INVOICE_ID, None),
        ("RecordPayment", "post", "/invoices/{invoice_id}/payments", _INVOICE_ID, None),
        ("IssuePaymentLink", "post", "/invoices/{invoice_id}/payment-link", _INVOICE_ID, None),
        ("RevokePaymentLinks", "delete", "/invoices/{invoice_id}/payment-link", _INVOICE_ID, None),
        ("IssueCreditNote", "post", "/invoices/{invoice_id}/credit-notes", _INVOICE_ID, None),
        ("VoidInvoice", "post", "/invoices/{invoice_id}/void", _INVOICE_ID, None),
        ("MarkUncollectible", "post", "/invoices/{invoice_id}/mark-uncollectible", _INVOICE_ID, None),
        ("SendReminder", "post", "/invoices/{invoice_id}/reminders", _INVOICE_ID, None),
        ("GetPdf", "get", "/invoices/{invoice_id}/pdf", _INVOICE_ID, None),
    ],
    ("post", "/invoices/{invoice_id}/payments", "201"): [
        ("GetInvoice", "get", "/invoices/{invoice_id}", {"invoice_id": "$response.body#/invoice/id"}, None),
        ("ListPayments", "get", "/invoices/{invoice_id}/payments", {"invoice_id": "$response.body#/invoice/id"}, None),
        (
            "IssueCreditNote",
            "post",
            "/invoices/{invoice_id}/credit-notes",
            {"invoice_id": "$response.body#/invoice/id"},
            None,
        ),
    ],
    ("post", "/invoices/{invoice_id}/credit-notes", "201"): [
        ("GetCreditNote", "get", "/credit-notes/{credit_note_id}", {"credit_note_id": _ID}, None),
        ("VoidCreditNote", "post", "/credit-notes/{credit_note_id}/void", {"credit_note_id": _ID}, None),
        ("GetCreditNotePdf", "get", "/credit-notes/{credit_note_id}/pdf", {"credit_note_id": _ID}, None),
    ],
    ("post", "/tax-rates", "201"): [
        ("GetTaxRate", "get", "/tax-rates/{tax_rate_id}", {"tax_rate_id": _ID}, None),
        ("UpdateTaxRate", "patch", "/tax-rates/{tax_rate_id}", {"tax_rate_id": _ID}, None),
    ],
    ("put", "/exchange-rates/{currency}", "200"): [
        ("GetExchangeRate", "get", "/exchange-rates/{currency}", {"currency": "$response.body#/currency"}, None),
    ],
}


LINKS[("post", "/invoices", "200")] = LINKS[("post", "/invoices", "201")]  # a billing run's repeat: the same draft


def _add_links(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    for (method, path, status), links in LINKS.items():
        response = paths[path][method]["responses"][status]
        response["links"] = {}
        for name, to_method, to_path, parameters, body in links:
            link: dict[str, Any] = {"operationId": paths[to_path][to_method]["operationId"]}
            if parameters:
                link["parameters"] = dict(parameters)
            if body:
                link["requestBody"] = dict(body)
            response["links"][name] = link


def _invoice_filter(doc: dict[str, Any]) -> None:
    """GET /invoices: customer_id and status as one exploded query object that needs at least one of them.

    `?customer_id=...&status=...` is exactly how such an object is sent (style form, explode true), so
    the URL does not change; the schema now says what the server requires (else a 422)."""
    operation = doc["paths"]["/invoices"]["get"]
    params = operation["parameters"]
    by_name = {p["name"]: p for p in params}
    properties = {name: copy.deepcopy(by_name[name]["schema"]) for name in ("customer_id", "status")}
    for schema in properties.values():  # null is "absent" in a query string
        if "anyOf" in schema:
            schema.update(next(s for s in schema.pop("anyOf") if s.get("type") != "null"))
    properties["customer_id"]["description"] = "The customer's invoices (newest first); with status, only those"
    properties["status"]["description"] = "Invoices in this status (newest first)"
    operation["parameters"] = [
        {
            "name": "filter",
            "in": "query",
            "required": True,
            "style": "form",
            "explode": True,
            "description": "customer_id, status or both (at least one): sent as ?customer_id=...&status=...",
            "schema": {
                "type": "object",
                "properties": properties,
                "additionalProperties": False,
                "minProperties": 1,
            },
        },
        *[p for p in params if p["name"] not in ("customer_id", "status")],
    ]


@lru_cache(maxsize=1)
def _base_document(spec_json: str) -> str:
    doc = json.loads(spec_json)
    doc.setdefault("components", {})["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (make api-key), sent as Authorization: Bearer <key>",
        }
    }
    doc["tags"] = TAGS
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            operation["security"] = [{SECURITY_SCHEME: []}]
            operation["tags"] = [tag_of(path)]
    _add_links(doc)
    _invoice_filter(doc)
    doc.pop("servers", None)
    return json.dumps(doc)


def server_url(event: dict[str, Any]) -> str:
    """Where the caller reached this API: the same base URL payment links are made from."""
    return base_url_of_request(event) or ""


def openapi_document(spec_json: str, event: dict[str, Any]) -> str:
    """The document for this request: the static part (built once) with this caller's `servers`."""
    doc = json.loads(_base_document(spec_json))
    doc = {
        "openapi": doc.pop("openapi"),
        "info": doc.pop("info"),
        "servers": [{"url": server_url(event)}],
        **doc,
    }
    return json.dumps(doc)
