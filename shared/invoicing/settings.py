"""Typed settings, read from the environment once per process. Use cases never read os.environ."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    stage: str = "dev"
    table_name: str = "invoices"
    idempotency_table_name: str = "idempotency"
    bucket_name: str = "invoices-documents"
    render_queue_url: str = ""
    reminder_queue_url: str = ""
    public_base_url: str = "http://127.0.0.1:3000"
    region: str = "us-east-1"
    seller_name: str = "Example Billing Ltd"
    seller_address: str = ""
    seller_tax_id: str = ""
    seller_email: str = ""
    seller_logo_url: str = ""
    default_days_until_due: int = Field(default=30, ge=0, le=3650)
    idempotency_ttl_seconds: int = 24 * 3600
    finalize_max_attempts: int = Field(default=8, ge=1, le=50)
    pdf_url_ttl_seconds: int = Field(default=300, ge=30, le=7 * 24 * 3600)
    tax_service: str = Field(default="rates", pattern="^(rates|http)$")
    tax_service_url: str = ""
    tax_service_timeout_seconds: float = Field(default=3.0, gt=0, le=30)

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
