"""Tax services. The use cases see only `TaxService.calculate(invoice, lines, customer)`.

- `TaxRateService` (default) reads TaxRate records from the store.
- `HttpTaxService` asks an external tax service over HTTP (settings.tax_service_url).
Both return one `LineTax` per line id; rounding is per line (then summed), under the money rule.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from invoicing.domain import money
from invoicing.domain.invoice import Invoice, InvoiceLine, LineTax, tax_for_line
from invoicing.errors import InvoicingError, ServiceUnavailable, ValidationFailed

MAX_RESPONSE_BYTES = 1_000_000

if TYPE_CHECKING:
    from invoicing.domain.customer import Customer
    from invoicing.store.tax_rates import TaxRate, TaxRateStore


class TaxService(Protocol):
    def calculate(self, invoice: Invoice, lines: list[InvoiceLine], customer: Customer) -> dict[str, LineTax]: ...


class TaxRateService:
    def __init__(self, rates: TaxRateStore) -> None:
        self.rates = rates

    def calculate(self, invoice: Invoice, lines: list[InvoiceLine], customer: Customer) -> dict[str, LineTax]:
        wanted = {line.tax_rate_id for line in lines if line.tax_rate_id}
        return taxes_from_rates(lines, self.rates.get_many(sorted(wanted)) if wanted else {})


def taxes_from_rates(lines: list[InvoiceLine], rates: dict[str, TaxRate]) -> dict[str, LineTax]:
    """Each line's tax from its rate record (finalize passes the rates it read in its one batch)."""
    out: dict[str, LineTax] = {}
    for line in lines:
        if not line.tax_rate_id:
            out[line.id] = LineTax.none()
            continue
        rate = rates.get(line.tax_rate_id)
        if rate is None:
            raise ValidationFailed(
                f"tax rate {line.tax_rate_id} does not exist",
                code="tax_rate_not_found",
                details={"field": "tax_rate_id"},
            )
        out[line.id] = LineTax(
            tax_rate_id=rate.id,
            percentage=rate.percentage,
            inclusive=rate.inclusive,
            tax_cents=tax_for_line(line.amount_cents, rate.percentage, rate.inclusive),
            display_name=rate.display_name,
        )
    return out


class HttpTaxService:
    """POSTs {"currency", "customer": {...}, "lines": [{"id", "amount_cents", "tax_code"}]} and expects
    {"lines": [{"id", "percentage": "19", "inclusive": false, "display_name": "VAT"}]}.

    The service tells the rate; the tax amount is computed here so that rounding follows our one rule.
    Failure, a malformed answer or timeout -> ServiceUnavailable (503 tax_service_unavailable), before
    anything is written. `timeout_s` bounds each socket operation (connect, each read), and the Lambda's
    own timeout bounds the whole call.
    """

    def __init__(self, url: str, timeout_s: float = 3.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("TAX_SERVICE_URL must be an http(s) URL")
        self.url = url
        self.timeout_s = timeout_s

    def calculate(self, invoice: Invoice, lines: list[InvoiceLine], customer: Customer) -> dict[str, LineTax]:
        payload = {
            "currency": invoice.currency,
            "customer": {
                "id": customer.id,
                "country": customer.address.country,
                "postal_code": customer.address.postal_code,
                "tax_id": customer.tax_id,
            },
            "lines": [{"id": ln.id, "amount_cents": ln.amount_cents, "tax_code": ln.tax_rate_id} for ln in lines],
        }
        request = urllib.request.Request(  # noqa: S310 (http(s) checked in __init__)
            self.url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 (http(s) checked above)
                raw = response.read(MAX_RESPONSE_BYTES + 1)
            if len(raw) > MAX_RESPONSE_BYTES:
                raise ValueError("tax service response too large")
            return self._results(json.loads(raw, parse_float=Decimal), lines)
        except (urllib.error.URLError, TimeoutError, OSError, KeyError, TypeError, ValueError, InvoicingError) as exc:
            raise ServiceUnavailable(
                "the tax service is unavailable; nothing was changed, retry later", code="tax_service_unavailable"
            ) from exc

    @staticmethod
    def _results(body: Any, lines: list[InvoiceLine]) -> dict[str, LineTax]:
        """Reads the answer strictly: anything malformed is a failure of the service (TypeError,
        ValueError, KeyError), never a guess (`bool("false")` is True; a number id is not an id)."""
        if not isinstance(body, dict) or not isinstance(body.get("lines"), list):
            raise TypeError("tax service answer has no lines list")
        results: dict[str, dict[str, Any]] = {}
        for r in body["lines"]:
            if not isinstance(r, dict) or not isinstance(r.get("id"), str):
                raise TypeError("tax service line result without a string id")
            results[r["id"]] = r
        out: dict[str, LineTax] = {}
        for ln in lines:
            r = results[ln.id]
            pct = money.parse_percent(r["percentage"])
            inclusive = r.get("inclusive", False)
            rate_id = r.get("tax_rate_id") or ln.tax_rate_id
            display_name = r.get("display_name", "")
            if not isinstance(inclusive, bool):
                raise TypeError("inclusive must be a JSON boolean")
            if rate_id is not None and not isinstance(rate_id, str):
                raise TypeError("tax_rate_id must be a string")
            if not isinstance(display_name, str):
                raise TypeError("display_name must be a string")
            out[ln.id] = LineTax(
                tax_rate_id=rate_id,
                percentage=pct,
                inclusive=inclusive,
                tax_cents=tax_for_line(ln.amount_cents, pct, inclusive),
                display_name=display_name[:200],
            )
        return out


def percent_label(pct: Decimal) -> str:
    return f"{pct.normalize():f}%"
