"""The lifecycle state machine and the document-number format: pure rules, no AWS."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing.domain.invoice import (
    TRANSITIONS,
    Invoice,
    InvoiceStatus,
    can_transition,
    ensure_transition,
    settle_if_nothing_due,
    sources_of,
)
from invoicing.domain.numbering import credit_note_number, invoice_number, parse_number
from invoicing.errors import InvalidTransition, InvoiceNotOpen
from invoicing.ids import new_id

S = InvoiceStatus
LEGAL = {
    (S.DRAFT, S.OPEN),
    (S.OPEN, S.PAID),
    (S.OPEN, S.VOID),
    (S.OPEN, S.UNCOLLECTIBLE),
    (S.UNCOLLECTIBLE, S.PAID),
    (S.UNCOLLECTIBLE, S.VOID),
}


@pytest.mark.parametrize("source,target", list(itertools.product(S, S)))
def test_exactly_the_documented_transitions_are_legal(source, target):
    assert can_transition(source, target) == ((source, target) in LEGAL)
    if (source, target) in LEGAL:
        ensure_transition(source, target)
    else:
        with pytest.raises((InvalidTransition, InvoiceNotOpen)):
            ensure_transition(source, target)


def test_nothing_goes_back():
    order = {S.DRAFT: 0, S.OPEN: 1, S.UNCOLLECTIBLE: 2, S.PAID: 3, S.VOID: 3}
    for source, targets in TRANSITIONS.items():
        for target in targets:
            assert order[target] > order[source]


def test_paid_and_void_are_final():
    assert not TRANSITIONS[S.PAID] and not TRANSITIONS[S.VOID]


def test_sources_are_the_inverse_of_transitions():
    for target in S:
        assert sources_of(target) == {s for s in S if target in TRANSITIONS[s]}


def test_a_draft_is_not_open():
    with pytest.raises(InvoiceNotOpen):
        ensure_transition(S.DRAFT, S.VOID)


@given(remaining=st.integers(min_value=0, max_value=10**9), status=st.sampled_from(list(S)))
def test_an_invoice_with_nothing_due_is_paid_at_finalization(remaining, status):
    finalized = Invoice(
        id="in_1",
        customer_id="cus_1",
        status=status,
        currency="USD",
        created_at="2026-11-24T00:00:00Z",
        updated_at="2026-11-24T00:00:00Z",
        finalized_at="2026-11-24T09:00:00Z",
        total_cents=remaining,
        amount_remaining_cents=remaining,
    )
    settled = settle_if_nothing_due(finalized)
    if status is S.OPEN and remaining == 0:
        assert (settled.status, settled.paid_at) == (S.PAID, finalized.finalized_at)
        assert can_transition(S.OPEN, S.PAID)
    else:
        assert settled is finalized  # something is due, or it is not a freshly opened invoice


@pytest.mark.parametrize(
    "year,seq,expected",
    [
        (2026, 1, "INV-2026-00001"),
        (2026, 42, "INV-2026-00042"),
        (2027, 99999, "INV-2027-99999"),
        (2027, 100000, "INV-2027-100000"),
    ],
)
def test_invoice_number_format(year, seq, expected):
    assert invoice_number(year, seq) == expected


def test_credit_note_number_format():
    assert credit_note_number(2026, 7) == "CN-2026-00007"


@given(st.integers(1000, 9999), st.integers(1, 10**7))
def test_numbers_round_trip_and_sort_within_a_year(year, seq):
    number = invoice_number(year, seq)
    assert parse_number(number) == ("INV", year, seq)
    if seq < 99999:
        assert number < invoice_number(year, seq + 1)


@pytest.mark.parametrize("bad", [(2026, 0), (2026, -1), (999, 1), (10000, 1)])
def test_invalid_numbers_are_refused(bad):
    with pytest.raises(ValueError):
        invoice_number(*bad)


@pytest.mark.parametrize("text", ["INV-2026-1", "inv-2026-00001", "INV-26-00001", "", "CN-2026-0000x"])
def test_parse_rejects_malformed(text):
    with pytest.raises(ValueError):
        parse_number(text)


def test_ids_are_prefixed_unique_and_time_sortable():
    ids = [new_id("in") for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("in_") and len(i) == 29 for i in ids)
    stamps = [i[3:13] for i in ids]
    assert stamps == sorted(stamps)
