"""E-invoices through the API (issue #19, docs/einvoicing.md): the stored terms (seller parameters,
customer, tax rate, line), the finalize-time check, and GET .../einvoice judged by the official rules.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.support.builders import (
    BELGIAN_BUYER,
    GERMAN_BUYER,
    create_customer,
    create_draft,
    create_tax_rate,
    finalize,
    set_exchange_rate,
)
from tests.support.einvoice_validation import assert_valid


@pytest.fixture
def eur(api) -> None:  # type: ignore[no-untyped-def]
    set_exchange_rate(api, "EUR", "1.08")


def table_items(table: str) -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    items = [i for page in ddb.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


# ---------------------------------------------------------------- stored terms
def test_customer_einvoice_terms_are_created_read_patched_and_cleared(api):
    created = create_customer(api, **GERMAN_BUYER)
    assert created["einvoice_format"] == "xrechnung"
    assert created["electronic_address"] == {"scheme": "EM", "identifier": "rechnungseingang@kunde.test"}
    assert (created["vat_id"], created["buyer_reference"]) == ("DE987654321", "04011000-12345-34")

    status, patched, _ = api(
        "PATCH", f"/customers/{created['id']}", {"einvoice_format": "cii", "electronic_address": None, "vat_id": None}
    )
    assert status == 200, patched
    assert (patched["einvoice_format"], patched["electronic_address"], patched["vat_id"]) == ("cii", None, "")
    _, read, _ = api("GET", f"/customers/{created['id']}")
    assert read == patched


def test_a_customer_without_einvoice_terms_reads_the_defaults(api):
    plain = create_customer(api, name="Old Ltd", email="a@old.test")
    assert (plain["einvoice_format"], plain["vat_id"], plain["electronic_address"], plain["buyer_reference"]) == (
        "none",
        "",
        None,
        "",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"einvoice_format": "pdf"}, "einvoice_format"),
        ({"vat_id": "123456789"}, "vat_id"),
        ({"electronic_address": {"scheme": "9999", "identifier": "x"}}, "electronic_address.scheme"),
        ({"electronic_address": {"scheme": "EM", "identifier": "  "}}, "electronic_address.identifier"),
        ({"electronic_address": {"scheme": "EM"}}, "electronic_address.identifier"),
        ({"buyer_reference": "x" * 201}, "buyer_reference"),
    ],
)
def test_bad_customer_einvoice_terms_are_a_422_naming_the_field(api, customer, body, field):
    for method, path, payload in (
        ("POST", "/customers", {"name": "X", "email": "x@x.test", **body}),
        ("PATCH", f"/customers/{customer['id']}", body),
    ):
        status, error, _ = api(method, path, payload)
        assert status == 422, error
        assert error["error"]["code"] == "validation_error"
        assert field in error["error"]["message"] or field in str(error["error"].get("details")), error


def test_tax_rate_vat_category_and_exemption_are_stored_and_validated(api):
    rate = create_tax_rate(
        api, "0", vat_category="AE", exemption_reason_code="VATEX-EU-AE", exemption_reason="Reverse charge"
    )
    assert (rate["vat_category"], rate["exemption_reason_code"], rate["exemption_reason"]) == (
        "AE",
        "VATEX-EU-AE",
        "Reverse charge",
    )
    assert create_tax_rate(api, "19")["vat_category"] == "S"  # the default
    for bad in ({"vat_category": "X"}, {"exemption_reason_code": "VATEX-EU-NOPE"}, {"exemption_reason": "x" * 501}):
        status, error, _ = api("PATCH", f"/tax-rates/{rate['id']}", bad)
        assert status == 422, (bad, error)
    status, edited, _ = api("PATCH", f"/tax-rates/{rate['id']}", {"exemption_reason_code": None})
    assert status == 200 and edited["exemption_reason_code"] is None


def test_line_unit_code_defaults_to_c62_is_kept_and_validated(api, customer):
    draft = create_draft(
        api,
        customer,
        {"description": "Support", "quantity": "3", "unit_amount_cents": 9000, "unit_code": "HUR"},
        {"description": "Licence", "unit_amount_cents": 1000},
    )
    assert [ln["unit_code"] for ln in draft["lines"]] == ["HUR", "C62"]
    line_id = draft["lines"][1]["id"]
    status, edited, _ = api("PATCH", f"/invoices/{draft['id']}/lines/{line_id}", {"unit_code": "MON"})
    assert status == 200 and edited["lines"][1]["unit_code"] == "MON"
    for method, path, body in (
        ("POST", f"/invoices/{draft['id']}/lines", {"description": "x", "unit_amount_cents": 1, "unit_code": "QQQ"}),
        ("PATCH", f"/invoices/{draft['id']}/lines/{line_id}", {"unit_code": "hur"}),
    ):
        status, error, _ = api(method, path, body)
        assert status == 422 and "unit_code" in error["error"]["message"], error
    assert finalize(api, draft["id"])["lines"][0]["unit_code"] == "HUR"  # frozen lines keep it


# ---------------------------------------------------------------- finalize
def test_finalize_refuses_an_einvoice_customer_s_invoice_with_missing_terms_and_writes_nothing(api, aws, eur):
    buyer = create_customer(api, **GERMAN_BUYER)
    rate = create_tax_rate(api, "19")
    draft = create_draft(api, buyer, {"description": "Beratung", "unit_amount_cents": 10000, "tax_rate_id": rate["id"]})
    before = table_items(aws.table_name)

    status, error, _ = api("POST", f"/invoices/{draft['id']}/finalize")

    assert status == 422, error
    assert error["error"]["code"] == "einvoice_terms_missing"
    details = error["error"]["details"]
    assert {
        "term": "BT-31",
        "rule": "BR-S-02",
        "message": "BT-31 seller VAT identifier is required for category S",
    } in (details)
    assert {d["term"] for d in details} >= {"BT-31", "BT-40", "BT-84", "BT-41", "BT-34"}
    assert table_items(aws.table_name) == before  # no number, no status, no event, the rate not marked used


def test_a_customer_who_receives_pdfs_only_is_not_checked(api, eur):
    buyer = create_customer(api, **{**GERMAN_BUYER, "einvoice_format": "none"})
    invoice = finalize(api, create_draft(api, buyer)["id"])
    assert invoice["status"] == "open"


# ---------------------------------------------------------------- GET .../einvoice
def test_a_german_business_customer_s_invoice_is_a_valid_xrechnung(api, german_seller, eur):
    buyer = create_customer(api, **GERMAN_BUYER)
    rate = create_tax_rate(api, "19")
    draft = create_draft(
        api,
        buyer,
        {
            "description": "Beratung",
            "quantity": "2.5",
            "unit_amount_cents": 12000,
            "unit_code": "HUR",
            "tax_rate_id": rate["id"],
        },
        {"description": "Lizenz", "unit_amount_cents": 4999, "tax_rate_id": rate["id"]},
        purchase_order="PO-1",
    )
    invoice = finalize(api, draft["id"])

    status, xml, headers = api("GET", f"/invoices/{invoice['id']}/einvoice", query={"format": "xrechnung"})

    assert status == 200, xml
    assert headers["Content-Type"] == "application/xml"
    assert f"<cbc:ID>{invoice['invoice_number']}</cbc:ID>" in xml
    assert 'unitCode="HUR"' in xml
    total = f"{invoice['total_cents'] // 100}.{invoice['total_cents'] % 100:02d}"
    assert f'<cbc:TaxInclusiveAmount currencyID="EUR">{total}</cbc:TaxInclusiveAmount>' in xml
    assert_valid(xml.encode(), "xrechnung")


def test_a_belgian_customer_s_reverse_charge_invoice_is_valid_peppol_ubl(api, german_seller, eur):
    buyer = create_customer(api, **BELGIAN_BUYER)
    rate = create_tax_rate(
        api, "0", vat_category="AE", exemption_reason_code="VATEX-EU-AE", exemption_reason="Reverse charge"
    )
    invoice = finalize(
        api,
        create_draft(api, buyer, {"description": "Software", "unit_amount_cents": 50000, "tax_rate_id": rate["id"]})[
            "id"
        ],
    )

    status, xml, _ = api("GET", f"/invoices/{invoice['id']}/einvoice", query={"format": "ubl"})

    assert status == 200, xml
    assert "VATEX-EU-AE" in xml and 'schemeID="0208"' in xml
    assert_valid(xml.encode(), "ubl")


def test_a_credit_note_is_a_valid_cii_e_invoice_referencing_its_invoice(api, german_seller, eur):
    buyer = create_customer(api, **{**GERMAN_BUYER, "einvoice_format": "cii"})
    rate = create_tax_rate(api, "19")
    invoice = finalize(
        api,
        create_draft(api, buyer, {"description": "Beratung", "unit_amount_cents": 10000, "tax_rate_id": rate["id"]})[
            "id"
        ],
    )
    status, note, _ = api(
        "POST",
        f"/invoices/{invoice['id']}/credit-notes",
        {"reason": "order_change", "lines": [{"line_id": invoice["lines"][0]["id"], "quantity": "1"}]},
    )
    assert status == 201, note

    status, xml, _ = api("GET", f"/credit-notes/{note['id']}/einvoice", query={"format": "cii"})

    assert status == 200, xml
    assert "<ram:TypeCode>381</ram:TypeCode>" in xml and invoice["invoice_number"] in xml
    assert_valid(xml.encode(), "cii")


def test_einvoice_answers_404_409_and_422(api, customer, eur):
    status, error, _ = api("GET", "/invoices/in_unknown/einvoice", query={"format": "ubl"})
    assert status == 404, error
    status, error, _ = api("GET", "/credit-notes/cn_unknown/einvoice", query={"format": "ubl"})
    assert status == 404, error
    draft = create_draft(api, customer)
    status, error, _ = api("GET", f"/invoices/{draft['id']}/einvoice", query={"format": "ubl"})
    assert (status, error["error"]["code"]) == (409, "invoice_not_finalized")
    for query in ({"format": "pdf"}, None):
        status, error, _ = api("GET", f"/invoices/{draft['id']}/einvoice", query=query)
        assert (status, error["error"]["code"]) == (422, "validation_error"), error
    # a PDF-only customer's invoice, asked for as UBL without any seller terms: every missing term
    invoice = finalize(api, draft["id"])
    status, error, _ = api("GET", f"/invoices/{invoice['id']}/einvoice", query={"format": "ubl"})
    assert (status, error["error"]["code"]) == (422, "einvoice_terms_missing")
    assert any(d["term"] == "BT-49" for d in error["error"]["details"])
