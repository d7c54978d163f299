"""E-mail through Amazon SES v2 (`sesv2` SendEmail): one message, HTML with its plain-text alternative.

SES has no idempotency key, so this adapter never retries a send itself (botocore retries off): a
timeout after SES accepted the mail would otherwise send it twice. Retries happen one level up,
through the reminder ledger's lease and the queue's redelivery. boto3 is imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from invoicing import root
from invoicing.errors import ServiceUnavailable


class EmailNotConfigured(ServiceUnavailable):
    code = "email_not_configured"


class EmailDeliveryFailed(ServiceUnavailable):
    """SES did not accept the mail (or did not answer). `reason` is SES's error code, safe to store."""

    code = "email_unavailable"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message, details={"reason": reason})
        self.reason = reason


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str


class EmailSender(Protocol):
    def send(self, mail: OutgoingEmail) -> str:
        """Returns the provider's message id once it accepted the mail."""
        ...


def _sesv2(region: str) -> Any:
    # one attempt per send (the reminder job's own retries decide), so not the shared adapters.aws client
    return root.current().once(("sesv2", region), lambda: _build_sesv2(region))


def _build_sesv2(region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sesv2", region_name=region, config=Config(retries={"total_max_attempts": 1, "mode": "standard"})
    )


class SesEmailSender:
    def __init__(self, from_address: str, region: str, reply_to: str = "") -> None:
        self.from_address = from_address
        self.region = region
        self.reply_to = reply_to

    def send(self, mail: OutgoingEmail) -> str:
        if not self.from_address:
            raise EmailNotConfigured("no sender address: set REMINDER_FROM_EMAIL (a verified SES identity)")
        from botocore.exceptions import BotoCoreError, ClientError

        params: dict[str, Any] = {
            "FromEmailAddress": self.from_address,
            "Destination": {"ToAddresses": [mail.to]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": mail.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": mail.text, "Charset": "UTF-8"},
                        "Html": {"Data": mail.html, "Charset": "UTF-8"},
                    },
                }
            },
        }
        if self.reply_to:
            params["ReplyToAddresses"] = [self.reply_to]
        try:
            response = _sesv2(self.region).send_email(**params)
        except ClientError as exc:
            reason = str(exc.response.get("Error", {}).get("Code") or "ClientError")
            raise EmailDeliveryFailed(f"SES did not accept the mail ({reason})", reason) from exc
        except BotoCoreError as exc:  # no answer: SES may or may not have accepted it
            raise EmailDeliveryFailed("SES did not answer", type(exc).__name__) from exc
        return str(response["MessageId"])
