"""The invoice header names its one payment link that may still be active (Invoice.links_tracked), so
a reminder decides "the customer has a working link" without reading the links (issue #20). Every
write that issues, revokes or uses a link keeps it true; an invoice finalized before the header kept
it has its links read, and tracks them from its next link change. Against moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.support.payments import open_invoice


def header(services: Any, invoice_id: str) -> Any:
    return services.repo.get_invoice_header(invoice_id)


def links(services: Any, invoice_id: str) -> dict[str, Any]:
    return {link.id: link for link in services.payment_store.list_links(invoice_id)}


def pay_partly(services: Any, invoice: Any, cents: int, link_id: str, *, strict: bool) -> None:
    from invoicing import clock
    from invoicing.domain.events import Actor
    from invoicing.domain.payments import Payment, PaymentMethod, PaymentSource
    from invoicing.ids import new_id
    from invoicing.settlement import settle
    from invoicing.store.writes.payments import LinkUse

    now = clock.iso(clock.now())

    def make(current: Any) -> Payment:
        return Payment(
            id=new_id("pay"),
            invoice_id=current.id,
            amount_cents=cents,
            currency=current.currency,
            method=PaymentMethod.CARD,
            reference="",
            paid_at=now,
            recorded_at=now,
            actor="pay_link:" + link_id,
            source=PaymentSource.PAY_LINK if strict else PaymentSource.STRIPE,
            link_id=link_id,
        )

    settle(services, Actor.system("test"), invoice.id, make, lambda: LinkUse(link_id=link_id, at=now, strict=strict))


def test_finalize_names_its_link_and_issuing_or_revoking_keeps_the_header_true(api, customer, services):
    # Given a finalized invoice: its header names the link finalize issued
    inv = open_invoice(api, customer)
    first = header(services, inv["id"])
    [issued] = links(services, inv["id"]).values()
    assert first.links_tracked and first.active_link_id == issued.id
    assert first.active_link_expires_at == issued.expires_at
    assert first.link_active("2000-01-01T00:00:00Z") is True
    # When a new link is issued: the header names it, the first is revoked, the version is unchanged
    status, new, _ = api("POST", f"/invoices/{inv['id']}/payment-link")
    assert status == 201, new
    second = header(services, inv["id"])
    assert second.active_link_id == new["link_id"] and second.version == first.version
    assert links(services, inv["id"])[issued.id].revoked_at is not None
    # When the links are revoked: the header names none, and every link is revoked
    assert api("DELETE", f"/invoices/{inv['id']}/payment-link")[0] == 204
    third = header(services, inv["id"])
    assert third.links_tracked and third.active_link_id is None and third.link_active("2000-01-01T00:00:00Z") is False
    assert all(link.revoked_at for link in links(services, inv["id"]).values())


def test_paying_through_the_headers_link_uses_it_up_and_an_older_links_payment_does_not(api, customer, services):
    # Given an open invoice of 150.00 and its link
    inv = open_invoice(api, customer)
    link_id = header(services, inv["id"]).active_link_id
    # When part of it is paid through that link: the link is used, the header names no link
    pay_partly(services, header(services, inv["id"]), 5000, link_id, strict=True)
    after = header(services, inv["id"])
    assert after.amount_remaining_cents == 10000 and after.active_link_id is None and after.links_tracked
    # Given a new link, when a provider confirms money for the older link (its checkout began
    # before it was used): the payment is recorded and the header still names the new link
    status, new, _ = api("POST", f"/invoices/{inv['id']}/payment-link")
    assert status == 201, new
    pay_partly(services, header(services, inv["id"]), 2500, link_id, strict=False)
    last = header(services, inv["id"])
    assert last.amount_remaining_cents == 7500 and last.active_link_id == new["link_id"]


@pytest.fixture
def untracked(api, customer, services):
    """An open invoice as finalized before the header kept its link: no link attributes."""
    inv = open_invoice(api, customer)
    table = boto3.client("dynamodb", region_name="us-east-1")
    name = services.settings.table_name
    table.update_item(
        TableName=name,
        Key={"pk": {"S": f"INVOICE#{inv['id']}"}, "sk": {"S": "INVOICE"}},
        UpdateExpression="REMOVE links_tracked, link_id, link_expires_at",
        ConditionExpression="attribute_exists(pk)",
    )
    return inv


def test_an_invoice_from_before_reads_its_links_and_tracks_them_from_its_next_link(services, api, untracked):
    before = header(services, untracked["id"])
    assert not before.links_tracked and before.link_active("2000-01-01T00:00:00Z") is None
    [old] = links(services, untracked["id"]).values()
    status, new, _ = api("POST", f"/invoices/{untracked['id']}/payment-link")
    assert status == 201, new
    after = header(services, untracked["id"])
    assert after.links_tracked and after.active_link_id == new["link_id"]
    assert links(services, untracked["id"])[old.id].revoked_at is not None  # read, then revoked


def test_a_link_issued_meanwhile_makes_the_other_issue_read_again_so_one_link_stays_active(api, customer, services):
    # Given an invoice whose header names link A, read by one issuer
    from invoicing.domain.events import Actor
    from invoicing.domain.invoice import LinkState
    from invoicing.payment_links import new_issued_link
    from invoicing.store.writes.payments import InvoiceNotPayableNow

    inv = open_invoice(api, customer)
    read = LinkState.of(header(services, inv["id"]))
    # When another issue replaces A meanwhile
    status, other, _ = api("POST", f"/invoices/{inv['id']}/payment-link")
    assert status == 201, other
    # Then the first issuer's write, made from its stale read (revoking A only), is refused
    late = new_issued_link(services, read, Actor.system("test"))
    with pytest.raises(InvoiceNotPayableNow), services.uow() as tx:
        tx.replace_links(read, new=late.link, revoke=[read.link_id or ""], at="2026-01-01T00:00:00Z")
    # and through the use case it reads again: exactly one link is left active, the one the header names
    status, last, _ = api("POST", f"/invoices/{inv['id']}/payment-link")
    assert status == 201, last
    active = [link.id for link in links(services, inv["id"]).values() if not link.revoked_at and not link.used_at]
    assert active == [last["link_id"]] == [header(services, inv["id"]).active_link_id]
