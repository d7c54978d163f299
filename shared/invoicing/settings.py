"""Typed settings, read from the environment once per process. Use cases never read os.environ."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

# the seller's e-invoice terms: the same patterns as the template's AllowedPattern
SELLER_VAT_ID_PATTERN = "^([A-Z]{2}[A-Za-z0-9+*.]{2,13})?$"
SELLER_COUNTRY_PATTERN = "^([A-Z]{2})?$"
SELLER_EAS_PATTERN = "^([0-9]{4}|EM|AN|AQ|AS|AU)?$"
SELLER_IBAN_PATTERN = "^([A-Z]{2}[0-9]{2}[A-Z0-9]{11,30})?$"
SELLER_BIC_PATTERN = "^([A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?)?$"
SELLER_PAYMENT_MEANS_PATTERN = "^(30|48|58|59)$"


class Settings(BaseModel):
    stage: str = "dev"
    table_name: str = "invoices"
    # N of the sharded index keys STATUS#/DUE# (store/keys.py; the template's IndexShards parameter)
    index_shards: int = Field(default=8, ge=1, le=64)
    idempotency_table_name: str = "idempotency"
    bucket_name: str = "invoices-documents"
    render_queue_url: str = ""
    reminder_queue_url: str = ""
    # empty: derived per request, else read from public_base_url_param (adapters/public_url.py)
    public_base_url: str = ""
    public_base_url_param: str = ""
    region: str = "us-east-1"
    seller_name: str = "Example Billing Ltd"
    seller_address: str = ""
    seller_tax_id: str = ""
    seller_email: str = ""
    seller_logo_url: str = ""  # a data:image/png|svg+xml URL (the renderer has no network)
    # or: a PNG/SVG in the documents bucket under branding/, checked and inlined at render (invoicing.logo)
    seller_logo_key: str = Field(default="", pattern=r"^(branding/[A-Za-z0-9._-]{1,100})?$")
    # the seller's language and formats where a customer's locale has none we ship (i18n.localize)
    seller_locale: str = "en_US"
    seller_accent_color: str = Field(default="#243b53", pattern="^#[0-9a-fA-F]{6}$")
    seller_footer_text: str = Field(default="", max_length=500)
    # legal lines printed on every document (registration number, managing directors), "|" between lines
    seller_legal_lines: str = Field(default="", max_length=1000)
    # e-invoices (docs/einvoicing.md): the seller's EN 16931 terms, each named after its business term.
    # seller_name is BT-27. Every one may stay empty: the finalize check then names what an e-invoice
    # customer's invoice lacks (422 einvoice_terms_missing) instead of issuing an invalid one.
    seller_trading_name: str = Field(default="", max_length=200)  # BT-28
    seller_legal_registration_id: str = Field(default="", max_length=100)  # BT-30 (company register number)
    seller_vat_id: str = Field(default="", pattern=SELLER_VAT_ID_PATTERN)  # BT-31, with its country prefix
    seller_tax_registration_id: str = Field(default="", max_length=100)  # BT-32 (e.g. the Steuernummer)
    seller_street: str = Field(default="", max_length=200)  # BT-35
    seller_city: str = Field(default="", max_length=100)  # BT-37
    seller_postal_code: str = Field(default="", max_length=20)  # BT-38
    seller_country: str = Field(default="", pattern=SELLER_COUNTRY_PATTERN)  # BT-40, ISO 3166-1 alpha-2
    seller_electronic_address: str = Field(default="", max_length=200)  # BT-34
    seller_electronic_address_scheme: str = Field(default="", pattern=SELLER_EAS_PATTERN)  # BT-34-1 (EAS code)
    seller_contact_name: str = Field(default="", max_length=200)  # BT-41
    seller_contact_phone: str = Field(default="", max_length=50)  # BT-42
    seller_contact_email: str = Field(default="", max_length=254)  # BT-43
    seller_iban: str = Field(default="", pattern=SELLER_IBAN_PATTERN)  # BT-84
    seller_bic: str = Field(default="", pattern=SELLER_BIC_PATTERN)  # BT-86
    seller_account_name: str = Field(default="", max_length=200)  # BT-85
    seller_payment_means: str = Field(default="58", pattern=SELLER_PAYMENT_MEANS_PATTERN)  # BT-81 (UNTDID 4461)
    default_days_until_due: int = Field(default=30, ge=0, le=3650)
    idempotency_ttl_seconds: int = 24 * 3600
    finalize_max_attempts: int = Field(default=8, ge=1, le=50)
    pdf_url_ttl_seconds: int = Field(default=300, ge=30, le=7 * 24 * 3600)
    tax_service: str = Field(default="rates", pattern="^(rates|http)$")
    tax_service_url: str = ""
    tax_service_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # payments and payment links (see use_cases/payments.py)
    payment_provider: str = Field(default="manual", pattern="^(manual|local|stripe)$")
    payment_link_ttl_days_after_due: int = Field(default=30, ge=0, le=3650)
    bank_transfer_instructions: str = ""
    stripe_secret_key: SecretStr = SecretStr("")  # direct value (tests, local); deployed: the SSM parameter below
    stripe_secret_key_param: str = ""  # SSM SecureString name, read once per container
    stripe_webhook_secret: SecretStr = SecretStr("")
    stripe_webhook_secret_param: str = ""
    stripe_checkout_origin: str = "https://checkout.stripe.com"
    pay_rate_limit_per_minute: int = Field(default=30, ge=1, le=100_000)  # per client IP, pay pages only
    # reminders and dunning (see use_cases/reminders.py and domain/reminders.py)
    reminder_steps: str = "upcoming:-7,due:0,overdue:+3"  # kind:offset days from the due date
    reminder_lookback_days: int = Field(default=7, ge=0, le=60)  # catch-up: a step older than this is dropped
    reminder_lease_seconds: int = Field(default=120, ge=30, le=3600)  # > any one send attempt (worker timeout)
    reminder_max_attempts: int = Field(default=5, ge=1, le=50)
    reminder_from_email: str = ""  # a verified SES identity; empty: seller_email
    reminder_reply_to: str = ""
    reminder_pdf_url_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60, le=7 * 24 * 3600)
    dunning_enabled: bool = True
    dunning_grace_days: int = Field(default=7, ge=1, le=3650)
    # webhooks (docs/webhooks.md)
    webhook_secrets_key_id: str = ""  # the KMS key sealing endpoint signing secrets
    webhook_queue_url: str = ""
    event_bus_name: str = ""
    # divides every wait of the retry schedule; the local stack runs it compressed (docs/webhooks.md)
    webhook_retry_compression: float = Field(default=1.0, ge=1.0, le=100_000.0)
    # bulk billing runs (docs/billing-runs in README): the FIFO queue the drafts go through
    billing_run_queue_url: str = ""
    billing_run_start_queue_url: str = ""  # uploaded runs: the starter reads them (functions/api/starter.py)
    billing_run_upload_ttl_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)

    @field_validator("reminder_steps")
    @classmethod
    def _valid_reminder_steps(cls, value: str) -> str:
        from invoicing.domain.reminders import parse_steps

        parse_steps(value)  # ReminderPolicyError (a ValueError) names what is wrong
        return value

    @field_validator("seller_locale")
    @classmethod
    def _known_seller_locale(cls, value: str) -> str:
        from invoicing.i18n import parse_locale

        if parse_locale(value) is None:
            raise ValueError(f"SELLER_LOCALE {value!r} is not a CLDR locale (e.g. en_US, de_DE)")
        return value

    @property
    def seller_legal_line_list(self) -> list[str]:
        return [line.strip() for line in self.seller_legal_lines.split("|") if line.strip()]

    @model_validator(mode="after")
    def _local_provider_only_in_local_stages(self) -> Settings:
        # the local provider marks invoices paid without any money moving: never outside dev/test
        if self.payment_provider == "local" and self.stage not in ("local", "test"):
            raise ValueError("PAYMENT_PROVIDER=local is only allowed when STAGE is local or test")
        return self

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for name in cls.model_fields:
            key = name.upper()
            if key in env and env[key] != "":
                values[name] = env[key]
        if "region" not in values:
            values["region"] = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        return cls.model_validate(values)
