"""Reports: accounts-receivable aging and invoiced/collected per month, and their inline SVG charts.

Reads are bounded: the open invoices (aging, invoiced) and the paid ones (invoiced) by status, at
most MAX_PAGES pages of 100 each, newest first; and the payments paid in the last MONTHS months
(collected), from the payments feed's 4 shards, at most 5 pages of 100 each. The page says when a
limit cut the figures. Amounts are summed per currency and never converted.

Collected is money received against invoices, in the month of each payment's date: a partial payment
counts when it was paid, an invoice paid in three instalments counts in three months, and refunds
are not subtracted. Money that reached a voided or already-paid invoice (kept unapplied, for a
refund) is not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import views

MAX_PAGES = 10
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
MONTHS = 12


@dataclass
class Report:
    aging: dict[str, dict[str, int]] = field(default_factory=dict)  # currency -> bucket -> minor units
    months: list[str] = field(default_factory=list)  # "2026-01" .. oldest first
    invoiced: dict[str, dict[str, int]] = field(default_factory=dict)  # currency -> month -> minor units
    collected: dict[str, dict[str, int]] = field(default_factory=dict)
    truncated: bool = False
    reads: int = 0


def bucket(due: date | None, today: date) -> str:
    days = (today - due).days if due else 0
    if days <= 0:
        return "current"
    if days <= 30:
        return "1-30"
    if days <= 60:
        return "31-60"
    if days <= 90:
        return "61-90"
    return "90+"


def _month_keys(today: date) -> list[str]:
    keys = []
    year, month = today.year, today.month
    for _ in range(MONTHS):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(keys))


def build(
    svc: Any,
    today: date,
    page_of: Callable[[str, str | None], Any],
    payments_since: Callable[[str], tuple[list[Any], bool]],
) -> Report:
    report = Report(months=_month_keys(today))
    payments, complete = payments_since(f"{report.months[0]}-01T00:00:00")
    report.reads += 4
    report.truncated = not complete
    for payment in payments:
        month = payment.paid_at[:7]
        if payment.applied and month in report.months:
            per = report.collected.setdefault(payment.currency, dict.fromkeys(report.months, 0))
            per[month] += payment.amount_cents
    for status in ("open", "paid"):
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            listing = page_of(status, cursor)
            report.reads += 1
            for inv in listing.items:
                if status == "open":
                    aging = report.aging.setdefault(inv.currency, dict.fromkeys(BUCKETS, 0))
                    aging[bucket(inv.due_date, today)] += inv.amount_remaining_cents
                if inv.finalized_at and inv.finalized_at[:7] in report.months:
                    per = report.invoiced.setdefault(inv.currency, dict.fromkeys(report.months, 0))
                    per[inv.finalized_at[:7]] += inv.total_cents
            cursor = listing.next_cursor
            if not cursor:
                break
        else:
            report.truncated = True
    return report


# ---------------------------------------------------------------- charts (inline SVG, no JavaScript)
def _label(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def aging_bars(values: dict[str, int], currency: str, locale: str) -> str:
    width, height, pad, bar_gap = 520, 220, 40, 18
    top = max(values.values()) or 1
    slot = (width - 2 * pad) / len(BUCKETS)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Amounts due by age, {currency}">'
    ]
    for i, name in enumerate(BUCKETS):
        value = values.get(name, 0)
        bar_h = (height - 2 * pad) * value / top
        x = pad + i * slot + bar_gap / 2
        y = height - pad - bar_h
        css = "bar late" if name != "current" else "bar"
        parts.append(
            f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{slot - bar_gap:.1f}" height="{bar_h:.1f}" rx="3">'
            f"<title>{_label(name)}: {_label(views.fmt_money(value, currency, locale))}</title></rect>"
        )
        parts.append(
            f'<text class="axis" x="{x + (slot - bar_gap) / 2:.1f}" y="{height - pad + 16}" text-anchor="middle">'
            f"{_label(name if name == 'current' else name + ' d')}</text>"
        )
        if value:
            parts.append(
                f'<text class="value" x="{x + (slot - bar_gap) / 2:.1f}" y="{y - 6:.1f}" text-anchor="middle">'
                f"{_label(views.fmt_money(value, currency, locale))}</text>"
            )
    parts.append(f'<line class="base" x1="{pad}" x2="{width - pad}" y1="{height - pad}" y2="{height - pad}"/>')
    parts.append("</svg>")
    return "".join(parts)


def monthly_lines(
    months: list[str], invoiced: dict[str, int], collected: dict[str, int], currency: str, locale: str
) -> str:
    """Invoiced (dashed) and collected (solid) per month, on one scale."""
    width, height, pad = 520, 230, 40
    top = max([*invoiced.values(), *collected.values(), 0]) or 1
    step = (width - 2 * pad) / max(len(months) - 1, 1)

    def points(values: dict[str, int]) -> list[tuple[float, float]]:
        return [
            (pad + i * step, height - pad - (height - 2 * pad) * values.get(m, 0) / top) for i, m in enumerate(months)
        ]

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Invoiced and collected per month, {currency}">',
        f'<line class="base" x1="{pad}" x2="{width - pad}" y1="{height - pad}" y2="{height - pad}"/>',
    ]
    for css, values, name in (("line invoiced", invoiced, "invoiced"), ("line", collected, "collected")):
        line = points(values)
        parts.append(f'<polyline class="{css}" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in line)}"/>')
        for (x, y), month in zip(line, months, strict=True):
            parts.append(
                f'<circle class="dot {name}" cx="{x:.1f}" cy="{y:.1f}" r="3.5"><title>{_label(month)} {name}: '
                f"{_label(views.fmt_money(values.get(month, 0), currency, locale))}</title></circle>"
            )
    for i in (0, len(months) // 2, len(months) - 1):
        parts.append(
            f'<text class="axis" x="{points(collected)[i][0]:.1f}" y="{height - pad + 16}" text-anchor="middle">'
            f"{_label(months[i])}</text>"
        )
    parts.append(
        f'<text class="axis" x="{pad}" y="16">- - invoiced</text><text class="axis" x="{pad + 90}" y="16">— collected</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def charts(report: Report, locale: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"aging": {}, "collected": {}}
    for currency, values in sorted(report.aging.items()):
        out["aging"][currency] = aging_bars(values, currency, locale)
    for currency in sorted({*report.invoiced, *report.collected}):
        out["collected"][currency] = monthly_lines(
            report.months, report.invoiced.get(currency, {}), report.collected.get(currency, {}), currency, locale
        )
    return out
