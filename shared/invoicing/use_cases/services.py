"""The wiring of use cases to the store and adapters, built once per process from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from invoicing.adapters.aws import DocumentStore, JobQueue
from invoicing.adapters.tax import HttpTaxService, TaxRateService, TaxService
from invoicing.domain.events import Actor, InvoiceEvent
from invoicing.ids import new_id
from invoicing.settings import Settings, get_settings
from invoicing.store.repository import Repository
from invoicing.store.tax_rates import ExchangeRateStore, TaxRateStore


@dataclass
class Services:
    settings: Settings
    repo: Repository
    tax_rates: TaxRateStore
    exchange_rates: ExchangeRateStore
    tax: TaxService
    documents: DocumentStore
    render_queue: JobQueue
    adapters: dict[str, Any] = field(default_factory=dict)


def build_services(settings: Settings) -> Services:
    repo = Repository(settings.table_name, settings.region)
    tax_rates = TaxRateStore()
    tax: TaxService
    if settings.tax_service == "http":
        tax = HttpTaxService(settings.tax_service_url, settings.tax_service_timeout_seconds)
    else:
        tax = TaxRateService(tax_rates)
    return Services(
        settings=settings,
        repo=repo,
        tax_rates=tax_rates,
        exchange_rates=ExchangeRateStore(),
        tax=tax,
        documents=DocumentStore(settings.bucket_name, settings.region),
        render_queue=JobQueue(settings.render_queue_url, settings.region),
    )


@lru_cache(maxsize=1)
def get_services() -> Services:
    return build_services(get_settings())


def new_event(
    invoice_id: str,
    type_: str,
    actor: Actor,
    at: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    data: dict[str, object] | None = None,
) -> InvoiceEvent:
    return InvoiceEvent(
        id=new_id("evt"),
        invoice_id=invoice_id,
        type=type_,
        actor=actor.principal,
        at=at,
        request_id=actor.request_id,
        from_status=from_status,
        to_status=to_status,
        data=data or {},
    )
