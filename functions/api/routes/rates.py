"""/tax-rates and /exchange-rates: the reference data finalization reads (rules in docs/money.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, Field, StrictBool

from invoicing.domain import money
from invoicing.einvoice import codes
from invoicing.root import get_services
from invoicing.store.tax_rates import ExchangeRate, TaxRate
from invoicing.use_cases import rates
from rules import COUNTRIES
from schemas import (
    NOT_BLANK,
    AwareInstant,
    Currency,
    ForeignCurrency,
    Id,
    Patch,
    Strict,
    code_type,
    decimal_type,
    error_responses,
)

router = Router()


Percentage = decimal_type(
    "percentage",
    3,
    4,
    positive=False,
    high=int(money.MAX_PERCENT),
    description='a decimal string from 0 to 100 with at most 4 decimals ("19", "7.65"), or an integer',
)
RateToUsd = decimal_type(
    "rate_to_usd",
    7,
    money.RATE_MAX_PLACES,
    positive=True,
    high=int(money.MAX_RATE),
    description="USD per one unit of the currency: a decimal string greater than 0, at most 1000000, with at most "
    '12 decimals ("0.0067"), or an integer',
)
DisplayName = Annotated[str, Field(min_length=1, max_length=rates.MAX_DISPLAY_NAME, pattern=NOT_BLANK)]
# "" clears the country like null does
TaxCountry = code_type(("", *COUNTRIES), 'an ISO 3166-1 alpha-2 country code, upper case, e.g. DE (or "" for none)')
Jurisdiction = Annotated[str, Field(max_length=rates.MAX_JURISDICTION)]
Description = Annotated[str, Field(max_length=rates.MAX_DESCRIPTION)]
VatCategory = Annotated[
    Literal["S", "Z", "E", "AE", "K", "G", "O", "L", "M"],
    Field(
        description="BT-118 the VAT category of e-invoices: S standard, Z zero rated, E exempt, AE reverse charge, "
        "K intra-community supply, G export, O not subject to VAT, L Canary Islands IGIC, M Ceuta and Melilla IPSI"
    ),
]
# "" clears the code like null does
ExemptionCode = code_type(
    ("", *sorted(codes.VATEX_CODES)), 'BT-121 a VATEX exemption reason code, e.g. VATEX-EU-AE (or "" for none)'
)
ExemptionReason = Annotated[
    str, Field(max_length=rates.MAX_EXEMPTION_REASON, description="BT-120 the exemption reason in words")
]
# three letters: a path segment the router matches whatever the characters (a free-form value could
# carry characters outside the route pattern and end up as a 404 route_not_found instead of a 422)
CurrencyPath = Annotated[Currency, Path(description="ISO 4217 code, e.g. EUR (USD answers the identity)")]
# USD is the base currency: its rate is always 1 and cannot be set
ForeignCurrencyPath = Annotated[ForeignCurrency, Path(description="ISO 4217 code other than USD, e.g. EUR")]


class TaxRateCreate(Strict):
    display_name: DisplayName
    percentage: Percentage
    inclusive: StrictBool
    country: TaxCountry | None = None
    jurisdiction: Jurisdiction | None = None
    description: Description | None = None
    active: StrictBool = True
    vat_category: VatCategory = "S"
    exemption_reason_code: ExemptionCode | None = None
    exemption_reason: ExemptionReason | None = None


class TaxRateUpdate(Patch):
    """Terms change only while the rate is unused (else 409 tax_rate_in_use); `active` always."""

    keep_on_null = frozenset({"display_name", "percentage", "inclusive", "active", "vat_category"})

    display_name: DisplayName | None = None
    percentage: Percentage | None = None
    inclusive: StrictBool | None = None
    country: TaxCountry | None = None
    jurisdiction: Jurisdiction | None = None
    description: Description | None = None
    active: StrictBool | None = Field(default=None, description="false archives the rate, true restores it")
    vat_category: VatCategory | None = None
    exemption_reason_code: ExemptionCode | None = None
    exemption_reason: ExemptionReason | None = None


class TaxRateOut(BaseModel):
    id: str
    display_name: str
    percentage: str = Field(description='Decimal string with 4 places, e.g. "19.0000"')
    inclusive: bool
    country: str | None
    jurisdiction: str | None
    description: str | None
    active: bool
    used: bool = Field(description="Used on a finalized invoice: its terms are frozen, it can only be archived")
    created_at: str
    archived_at: str | None
    vat_category: str
    exemption_reason_code: str | None
    exemption_reason: str | None


class TaxRateList(BaseModel):
    data: list[TaxRateOut]


class ExchangeRatePut(Strict):
    rate_to_usd: RateToUsd
    source: Annotated[
        str, Field(min_length=1, max_length=100, pattern=NOT_BLANK, description="Where the rate comes from, e.g. ecb")
    ]
    as_of: AwareInstant = Field(description="When the rate was published, with a timezone")


class ExchangeRateOut(BaseModel):
    currency: str
    rate_to_usd: str
    source: str
    as_of: str
    updated_at: str


def tax_rate_out(rate: TaxRate) -> TaxRateOut:
    return TaxRateOut(
        id=rate.id,
        display_name=rate.display_name,
        percentage=f"{rate.percentage:.4f}",
        inclusive=rate.inclusive,
        country=rate.country,
        jurisdiction=rate.jurisdiction,
        description=rate.description,
        active=rate.active,
        used=rate.used,
        created_at=rate.created_at,
        archived_at=rate.archived_at,
        vat_category=rate.vat_category,
        exemption_reason_code=rate.exemption_reason_code,
        exemption_reason=rate.exemption_reason,
    )


def exchange_rate_out(rate: ExchangeRate) -> ExchangeRateOut:
    return ExchangeRateOut(
        currency=rate.currency,
        rate_to_usd=f"{rate.rate_to_usd:f}",
        source=rate.source,
        as_of=rate.as_of,
        updated_at=rate.updated_at,
    )


@router.post("/tax-rates", summary="Create a tax rate", responses=error_responses(422, success=201))
def handle_create_tax_rate(body: Annotated[TaxRateCreate, Body()]) -> Response[TaxRateOut]:
    created = rates.create_tax_rate(get_services(), **body.model_dump())
    return Response(status_code=201, body=tax_rate_out(created), content_type="application/json")


@router.get("/tax-rates", summary="List tax rates, newest first", responses=error_responses(422))
def handle_list_tax_rates(active: Annotated[bool | None, Query()] = None) -> TaxRateList:
    return TaxRateList(data=[tax_rate_out(r) for r in rates.list_tax_rates(get_services(), active=active)])


@router.get("/tax-rates/<tax_rate_id>", summary="Get a tax rate", responses=error_responses(404))
def handle_get_tax_rate(tax_rate_id: Annotated[Id, Path()]) -> TaxRateOut:
    return tax_rate_out(rates.get_tax_rate(get_services(), tax_rate_id))


@router.patch(
    "/tax-rates/<tax_rate_id>",
    summary="Edit an unused tax rate, or archive / restore any rate",
    responses=error_responses(404, 409, 422),
)
def handle_update_tax_rate(tax_rate_id: Annotated[Id, Path()], body: Annotated[TaxRateUpdate, Body()]) -> TaxRateOut:
    return tax_rate_out(rates.update_tax_rate(get_services(), tax_rate_id, rates.UpdateTaxRate(**body.changes())))


@router.put(
    "/exchange-rates/<currency>",
    summary="Set the rate to USD of a currency (finalized invoices keep the rate they locked)",
    responses=error_responses(422),
)
def handle_put_exchange_rate(
    currency: ForeignCurrencyPath, body: Annotated[ExchangeRatePut, Body()]
) -> ExchangeRateOut:
    rate = rates.put_exchange_rate(
        get_services(), currency, rate_to_usd=body.rate_to_usd, source=body.source, as_of=body.as_of
    )
    return exchange_rate_out(rate)


@router.get(
    "/exchange-rates/<currency>",
    summary="Get the current rate to USD of a currency (USD answers the identity)",
    responses=error_responses(404, 422),
)
def handle_get_exchange_rate(currency: CurrencyPath) -> ExchangeRateOut:
    return exchange_rate_out(rates.get_exchange_rate(get_services(), currency))
