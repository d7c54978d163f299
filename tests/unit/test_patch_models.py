"""The PATCH bodies' null rules, stated once per model (functions/api/schemas.py `Patch`): null leaves
a required field as it is, clears an optional one to its empty value, and a field not sent is no change."""

from __future__ import annotations

import importlib.util
import sys
from decimal import Decimal

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "functions" / "api"))
try:
    _spec = importlib.util.spec_from_file_location("api_schemas_under_test", ROOT / "functions" / "api" / "schemas.py")
    assert _spec and _spec.loader
    schemas = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = schemas  # pydantic resolves the annotations through it
    _spec.loader.exec_module(schemas)
finally:
    sys.path.remove(str(ROOT / "functions" / "api"))


def test_a_customer_patch_ignores_null_on_required_fields_and_clears_optional_ones():
    body = schemas.CustomerUpdate.model_validate(
        {"name": None, "email": None, "tax_id": None, "address": None, "metadata": None, "electronic_address": None}
    )
    assert body.changes() == {
        "tax_id": "",
        "address": {},
        "metadata": {},
        "electronic_address": "",
        "electronic_address_scheme": "",
    }


def test_a_customer_patch_sends_only_what_was_sent_and_flattens_the_electronic_address():
    body = schemas.CustomerUpdate.model_validate(
        {"name": "Acme", "electronic_address": {"scheme": "0088", "identifier": "4000001000005"}}
    )
    assert body.changes() == {
        "name": "Acme",
        "electronic_address": "4000001000005",
        "electronic_address_scheme": "0088",
    }
    assert schemas.CustomerUpdate.model_validate({}).changes() == {}


def test_a_line_patch_keeps_its_fields_on_null_but_null_tax_rate_removes_the_tax():
    body = schemas.LineUpdate.model_validate({"description": None, "quantity": "2.5", "tax_rate_id": None})
    assert body.changes() == {"quantity": Decimal("2.5"), "tax_rate_id": None}


def test_an_invoice_patch_keeps_its_currency_on_null_and_clears_custom_fields():
    body = schemas.InvoiceUpdate.model_validate({"currency": None, "custom_fields": None, "memo": None})
    assert body.changes() == {"custom_fields": None, "memo": None}
    body = schemas.InvoiceUpdate.model_validate({"custom_fields": [{"key": "PO", "value": "42"}]})
    assert body.changes() == {"custom_fields": [("PO", "42")]}


def test_the_empty_value_a_null_clears_to_is_never_shared_between_requests():
    first = schemas.CustomerUpdate.model_validate({"metadata": None}).changes()
    first["metadata"]["x"] = "1"
    assert schemas.CustomerUpdate.model_validate({"metadata": None}).changes() == {"metadata": {}}
