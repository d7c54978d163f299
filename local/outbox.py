"""Mail sent through the local SES (v1 and v2), read back from moto's SES backend."""

from __future__ import annotations

import email
import email.policy
import html
from datetime import UTC, datetime
from typing import Any

from .aws import EmbeddedAWS


def _looks_like_html(body: str | None) -> bool:
    return bool(body) and body.lstrip().startswith("<")  # type: ignore[union-attr]


def _addresses(destinations: Any) -> dict[str, list[str]]:
    if isinstance(destinations, dict):
        out: dict[str, list[str]] = {"to": [], "cc": [], "bcc": []}
        for key, values in destinations.items():
            bucket = {"toaddresses": "to", "ccaddresses": "cc", "bccaddresses": "bcc"}.get(key.lower())
            if bucket:
                out[bucket].extend(values or [])
        return out
    return {"to": list(destinations or []), "cc": [], "bcc": []}


def _parse_raw(raw: str) -> dict[str, Any]:
    message = email.message_from_string(raw, policy=email.policy.default)
    text = html_part = None
    attachments: list[dict[str, Any]] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        disposition = part.get_content_disposition()
        ctype = part.get_content_type()
        if disposition == "attachment" or (disposition == "inline" and part.get_filename()):
            payload = part.get_payload(decode=True) or b""
            attachments.append({"filename": part.get_filename(), "content_type": ctype, "size": len(payload)})
        elif ctype == "text/plain" and text is None:
            text = part.get_content()
        elif ctype == "text/html" and html_part is None:
            html_part = part.get_content()
    return {
        "subject": message.get("Subject"),
        "from": message.get("From"),
        "text": text,
        "html": html_part,
        "attachments": attachments,
    }


def outbox(aws: EmbeddedAWS) -> list[dict[str, Any]]:
    """Every mail sent so far, oldest first: from, to, subject, text, html, message id, timestamp."""
    assert aws.app is not None
    parts_by_id = aws.app.mail_parts
    times = aws.app.mail_times
    items: list[dict[str, Any]] = []
    for message in aws.sent_messages():
        kind = type(message).__name__
        message_id = getattr(message, "id", None) or ",".join(getattr(message, "ids", []) or [])
        entry: dict[str, Any] = {
            "message_id": message_id,
            "kind": kind,
            "from": message.source,
            "subject": None,
            "text": None,
            "html": None,
            "attachments": [],
        }
        if kind == "RawMessage":
            parsed = _parse_raw(message.raw_data)
            entry.update({k: v for k, v in parsed.items() if v is not None and k != "from"})
            entry["from"] = message.source or parsed.get("from")
            entry.update(_addresses(message.destinations))
        elif kind == "Message":
            entry["subject"] = message.subject
            if _looks_like_html(message.body):
                entry["html"] = message.body
            else:
                entry["text"] = message.body
            entry.update(_addresses(message.destinations))
            extra = parts_by_id.get(message_id) or {}
            for key in ("subject", "text", "html"):
                if extra.get(key) is not None:
                    entry[key] = extra[key]
            entry["reply_to"] = extra.get("reply_to", [])
        else:  # templated mail: moto does not render templates
            entry["template"] = getattr(message, "template", None)
            entry["template_data"] = getattr(message, "template_data", None)
            entry.update(_addresses(message.destinations))
        sent_at = times.get(message_id)
        entry["timestamp"] = (
            datetime.fromtimestamp(sent_at, UTC).isoformat().replace("+00:00", "Z") if sent_at else None
        )
        items.append(entry)
    return items


def outbox_html(items: list[dict[str, Any]]) -> str:
    esc = html.escape
    rows = []
    for index, item in reversed(list(enumerate(items))):
        body_html = item.get("html")
        preview = (
            f'<iframe sandbox="" srcdoc="{esc(body_html)}"></iframe>'
            if body_html
            else f"<pre>{esc(item.get('text') or '')}</pre>"
        )
        text_block = (
            f"<details><summary>text part</summary><pre>{esc(item['text'])}</pre></details>"
            if body_html and item.get("text")
            else ""
        )
        attachments = ", ".join(
            f"{esc(str(a.get('filename')))} ({esc(str(a.get('content_type')))}, {a.get('size')} bytes)"
            for a in item.get("attachments") or []
        )
        rows.append(
            f"""<article><h2>#{index + 1} {esc(item.get("subject") or "(no subject)")}</h2>
<dl><dt>From</dt><dd>{esc(str(item.get("from")))}</dd>
<dt>To</dt><dd>{esc(", ".join(item.get("to") or []))}</dd>
<dt>Cc</dt><dd>{esc(", ".join(item.get("cc") or []))}</dd>
<dt>Sent</dt><dd>{esc(str(item.get("timestamp")))}</dd>
<dt>Message id</dt><dd><code>{esc(str(item.get("message_id")))}</code></dd>
{f"<dt>Attachments</dt><dd>{attachments}</dd>" if attachments else ""}</dl>
{preview}{text_block}</article>"""
        )
    body = "\n".join(rows) or "<p>No mail sent yet.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Local outbox ({len(items)})</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; background: #f6f6f6; }}
article {{ background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 1rem; margin-bottom: 1.5rem; }}
dl {{ display: grid; grid-template-columns: 8rem 1fr; gap: .2rem 1rem; }}
dt {{ color: #666; }} dd {{ margin: 0; }}
iframe {{ width: 100%; height: 28rem; border: 1px solid #ccc; }}
pre {{ white-space: pre-wrap; }}
</style></head>
<body><h1>Local outbox</h1>
<p>Mail sent through the local SES. JSON: <a href="/_local/outbox">/_local/outbox</a>.
Nothing here left this machine.</p>
{body}
</body></html>
"""
