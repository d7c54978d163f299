"""The composition root: the store and the adapters every use case is given, built from settings.

Handlers ask the process's root (invoicing.root) for its instance; tests build a `Services` themselves and
pass fakes through the constructor (tests/support/fakes.py), so no use case needs moto to be tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from invoicing.adapters.aws import DocumentStore, FifoJobQueue, JobQueue, RunInputs
from invoicing.adapters.tax import HttpTaxService, TaxRateService, TaxService
from invoicing.settings import Settings
from invoicing.store.billing_runs import BillingRunStore
from invoicing.store.credit_notes import CreditNoteStore
from invoicing.store.payments import PaymentStore
from invoicing.store.refunds import RefundStore
from invoicing.store.repository import Repository
from invoicing.store.tax_rates import ExchangeRateStore, TaxRateStore
from invoicing.store.uow import UnitOfWork
from invoicing.store.webhooks import WebhookStore

if TYPE_CHECKING:
    from invoicing.adapters.payments import PaymentProvider
    from invoicing.adapters.webhooks import DeliveryQueue, EventBus, SecretBox


@dataclass
class Services:
    settings: Settings
    repo: Repository
    tax_rates: TaxRateStore
    exchange_rates: ExchangeRateStore
    tax: TaxService
    documents: DocumentStore
    render_queue: JobQueue
    payment_store: PaymentStore
    credit_note_store: CreditNoteStore
    refund_store: RefundStore
    # built on first use (the provider may read a secret; the mailer and reminder queue are for jobs);
    # tests may put their own under "payments", "mailer", "reminder_queue", "reminder_store"
    adapters: dict[str, Any] = field(default_factory=dict)
    webhooks: WebhookStore = field(default_factory=WebhookStore)
    billing_runs: BillingRunStore = field(default_factory=BillingRunStore)

    def billing_run_queue(self) -> FifoJobQueue:
        queue = self.adapters.get("billing_run_queue")
        if queue is None:
            queue = self.adapters.setdefault(
                "billing_run_queue", FifoJobQueue(self.settings.billing_run_queue_url, self.settings.region)
            )
        return queue  # type: ignore[no-any-return]

    def billing_run_starts(self) -> JobQueue:
        """The starter's queue: one message per uploaded run (and per continuation of a long read)."""
        queue = self.adapters.get("billing_run_starts")
        if queue is None:
            queue = self.adapters.setdefault(
                "billing_run_starts", JobQueue(self.settings.billing_run_start_queue_url, self.settings.region)
            )
        return queue  # type: ignore[no-any-return]

    def run_inputs(self) -> RunInputs:
        inputs = self.adapters.get("run_inputs")
        if inputs is None:
            inputs = self.adapters.setdefault("run_inputs", RunInputs(self.settings.bucket_name, self.settings.region))
        return inputs  # type: ignore[no-any-return]

    def uow(self) -> UnitOfWork:
        """One use case's writes, committed as one transaction: `with svc.uow() as tx: ...`."""
        return self.repo.uow()

    def secret_box(self) -> SecretBox:
        box = self.adapters.get("secret_box")
        if box is None:
            from invoicing.adapters.webhooks import KmsSecretBox

            box = self.adapters.setdefault(
                "secret_box", KmsSecretBox(self.settings.webhook_secrets_key_id, self.settings.region)
            )
        return box

    def delivery_queue(self) -> DeliveryQueue:
        queue = self.adapters.get("delivery_queue")
        if queue is None:
            from invoicing.adapters.webhooks import DeliveryQueue

            queue = self.adapters.setdefault(
                "delivery_queue", DeliveryQueue(self.settings.webhook_queue_url, self.settings.region)
            )
        return queue

    def event_bus(self) -> EventBus:
        bus = self.adapters.get("event_bus")
        if bus is None:
            from invoicing.adapters.webhooks import EventBus

            bus = self.adapters.setdefault("event_bus", EventBus(self.settings.event_bus_name, self.settings.region))
        return bus

    def payment_provider(self) -> PaymentProvider:
        provider = self.adapters.get("payments")
        if provider is None:
            from invoicing.adapters.payments import build_payment_provider

            provider = self.adapters.setdefault("payments", build_payment_provider(self.settings))
        return provider


def build_services(settings: Settings) -> Services:
    repo = Repository(settings.table_name, settings.region, index_shards=settings.index_shards)
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
        payment_store=PaymentStore(repo),
        credit_note_store=CreditNoteStore(repo),
        refund_store=RefundStore(repo),
    )
