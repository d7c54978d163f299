"""Payment links, issued and revoked: the step that the payments use cases (issue, revoke) and the
reminder job (a fresh link in an overdue mail) share. Not a use case itself: it is called by them,
so that no use case imports another (tests/unit/test_architecture.py).
"""

from __future__ import annotations

from invoicing import clock
from invoicing.adapters.public_url import pay_url
from invoicing.domain.events import Actor, new_event
from invoicing.domain.invoice import LinkState
from invoicing.domain.payments import IssuedLink, ensure_payable, new_link
from invoicing.errors import ConcurrentModification
from invoicing.observability import logger
from invoicing.services import Services
from invoicing.store.retry import SHORT, retry
from invoicing.store.writes.payments import InvoiceNotPayableNow

MAX_ATTEMPTS = 5


def new_issued_link(svc: Services, invoice: LinkState, actor: Actor) -> IssuedLink:
    """A new link for `invoice` with its URL; the token in the URL is seen this once."""
    ttl = svc.settings.payment_link_ttl_days_after_due
    link, token = new_link(invoice.invoice_id, invoice.due_date, actor.principal, ttl, clock.now())
    return IssuedLink(link=link, url=pay_url(svc.settings.public_base_url, svc.settings.public_base_url_param, token))


def replace_links(
    svc: Services, actor: Actor, invoice_id: str, *, issue: bool, read: LinkState | None = None
) -> tuple[IssuedLink | None, int]:
    """Issue a new link (`issue`) and revoke every earlier active one, in one transaction with the
    audit event, conditioned on the invoice still taking payments and naming the link it was read
    with; a lost race re-reads the header. `read`: the header as the caller read it (a reminder
    job), for the first attempt. Returns the new link and how many were revoked. Open or
    uncollectible invoices only (409 otherwise)."""
    known = [read] if read is not None else []

    def attempt() -> tuple[IssuedLink | None, list[str]]:
        invoice = known.pop() if known else LinkState.of(svc.repo.get_invoice_header(invoice_id))
        ensure_payable(invoice)
        now = clock.iso(clock.now())
        revoke = _revocable(svc, invoice)
        new = new_issued_link(svc, invoice, actor) if issue else None
        event = new_event(
            invoice_id,
            "invoice.payment_link_issued" if issue else "invoice.payment_links_revoked",
            actor,
            now,
            data={
                **({"link_id": new.link.id, "expires_at": new.link.expires_at} if new else {}),
                "revoked_link_ids": revoke,
            },
        )
        with svc.uow() as tx:
            tx.replace_links(invoice, new=new.link if new else None, revoke=revoke, at=now)
            tx.add_events(event)
        return new, revoke

    new, revoked = retry(
        attempt,
        on=(InvoiceNotPayableNow,),
        attempts=MAX_ATTEMPTS,
        exhausted=lambda: ConcurrentModification(f"invoice {invoice_id} kept changing; retry"),
        backoff=SHORT,
    )
    logger.info(
        "payment links replaced", extra={"invoice_id": invoice_id, "issued": bool(new), "revoked": len(revoked)}
    )
    return new, len(revoked)


def _revocable(svc: Services, invoice: LinkState) -> list[str]:
    """The ids of the links that may still be active. An invoice that tracks its links has at most
    one (every issue revokes the others), named on its header, and an expired one is not revoked
    (nothing to stop); an older invoice's links are read."""
    now = clock.iso(clock.now())
    if invoice.links_tracked:
        active = invoice.link_active(now)
        return [invoice.link_id] if active and invoice.link_id else []
    return [
        link.id
        for link in svc.payment_store.list_links(invoice.invoice_id)
        if link.revoked_at is None and link.used_at is None
    ]


def pdf_url_for_link(url: str) -> str:
    """The mail's link to the PDF: behind the pay link's token, so it lives as long as the link."""
    return f"{url}/pdf"
