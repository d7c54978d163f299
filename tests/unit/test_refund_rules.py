"""The refund lifecycle rules (domain/credit.py): which word of Stripe's moves a refund, retry and
completion guards, the idempotency key of each attempt. Webhooks arrive late, twice and out of order,
so the rules are checked against every order of delivery."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing.domain.refunds import (
    MANUAL,
    STRIPE,
    Refund,
    RefundNotCompletable,
    RefundNotRetryable,
    RefundStatus,
    attempt_idempotency_key,
    ensure_completable,
    ensure_retryable,
    pick_provider_refund,
    provider_refund_status,
    takes_provider_word,
)

PENDING, SUCCEEDED, FAILED = RefundStatus.PENDING, RefundStatus.SUCCEEDED, RefundStatus.FAILED
ORDER = [PENDING, SUCCEEDED, FAILED]


def _refund(**extra) -> Refund:
    base = Refund(
        id="re_1",
        invoice_id="in_1",
        payment_id="pay_1",
        credit_note_id="cn_1",
        amount_cents=2500,
        currency="USD",
        provider=STRIPE,
        status=PENDING,
        created_at="2026-11-24T10:00:00.000Z",
        updated_at="2026-11-24T10:00:00.000Z",
        payment_reference="pi_1",
        attempts=1,
    )
    return replace(base, **extra)


def _apply(refund: Refund, words) -> Refund:
    """What the webhook use case does with each word: take it or leave it."""
    for ref, status, created in words:
        if takes_provider_word(refund, ref, status, created):
            refund = replace(refund, status=status, provider_ref=ref, provider_created=created)
    return refund


words_of_one_refund = st.lists(st.sampled_from(ORDER), min_size=1, max_size=8).flatmap(
    lambda reached: st.permutations([("re_a", s, 100) for s in reached])
)


@given(words=words_of_one_refund)
def test_one_stripe_refund_ends_where_its_most_advanced_word_says_whatever_the_order(words):
    # the refund Stripe gave us when it answered: pending, re_a
    refund = _refund(provider_ref="re_a", provider_created=100)
    final = _apply(refund, words)
    assert final.status is max((w[1] for w in words), key=ORDER.index)
    assert final.provider_ref == "re_a"


@given(words=words_of_one_refund)
def test_a_refund_whose_answer_was_lost_takes_the_first_word_and_then_only_moves_forward(words):
    refund = _refund(status=FAILED, failure="timeout")  # the call errored: no Stripe refund known
    final = _apply(refund, words)
    assert final.provider_ref == "re_a"
    # the first word is taken as it is, the later ones only forward from it
    assert ORDER.index(final.status) >= ORDER.index(words[0][1])
    assert final.status is max((w[1] for w in words), key=ORDER.index)


@given(status=st.sampled_from(ORDER), known=st.sampled_from(ORDER))
def test_words_about_an_earlier_attempt_change_nothing(status, known):
    # attempt 2 (re_b, created at 200) is what we know; re_a (created at 100) was attempt 1
    refund = _refund(status=known, provider_ref="re_b", provider_created=200, attempts=2)
    assert not takes_provider_word(refund, "re_a", status, 100)
    assert not takes_provider_word(refund, "re_a", status, None)


@given(status=st.sampled_from(ORDER))
def test_a_later_attempt_is_taken_only_once_the_known_one_failed(status):
    failed = _refund(status=FAILED, provider_ref="re_a", provider_created=100, attempts=2)
    assert takes_provider_word(failed, "re_b", status, 200)
    for alive in (PENDING, SUCCEEDED):  # the known attempt stands: a second refund is not ours to count
        assert not takes_provider_word(replace(failed, status=alive), "re_b", status, 200)


def test_manual_refunds_take_no_word_from_stripe():
    assert not takes_provider_word(_refund(provider=MANUAL, attempts=0), "re_a", SUCCEEDED, 100)


def test_stripe_statuses():
    assert [provider_refund_status(s) for s in ("pending", "requires_action", "succeeded", "failed", "canceled")] == [
        PENDING,
        PENDING,
        SUCCEEDED,
        FAILED,
        FAILED,
    ]
    assert provider_refund_status("something_new") is None and provider_refund_status(None) is None


def test_only_a_failed_stripe_refund_is_retried_and_only_a_pending_manual_one_completed():
    ensure_retryable(_refund(status=FAILED))
    for refund in (_refund(status=PENDING), _refund(status=SUCCEEDED), _refund(provider=MANUAL, status=FAILED)):
        with pytest.raises(RefundNotRetryable):
            ensure_retryable(refund)
    ensure_completable(_refund(provider=MANUAL, status=PENDING, attempts=0))
    for refund in (_refund(status=PENDING), _refund(provider=MANUAL, status=SUCCEEDED)):
        with pytest.raises(RefundNotCompletable):
            ensure_completable(refund)


def test_each_attempt_has_its_own_key_and_the_first_keeps_the_old_one():
    keys = [attempt_idempotency_key("re_1", n) for n in range(1, 6)]
    assert keys[0] == "refund-re_1" and keys[1] == "refund-re_1-attempt-2"
    assert len(set(keys)) == 5 and keys == [attempt_idempotency_key("re_1", n) for n in range(1, 6)]
    # refunds written before attempts were counted made their one call
    assert _refund(attempts=0).attempts_made == 1 and _refund(provider=MANUAL, attempts=0).attempts_made == 0


def test_the_standing_refund_at_stripe_is_a_succeeded_one_else_the_latest_in_flight():
    assert pick_provider_refund([]) is None
    assert pick_provider_refund([("re_a", FAILED, 100), ("re_b", FAILED, 200)]) is None
    assert pick_provider_refund([("re_a", SUCCEEDED, 100), ("re_b", PENDING, 200)]) == ("re_a", SUCCEEDED, 100)
    assert pick_provider_refund([("re_a", PENDING, 100), ("re_b", PENDING, 200), ("re_c", FAILED, 300)]) == (
        "re_b",
        PENDING,
        200,
    )
