"""Paging through a sharded index key (store/shards.py): every item exactly once, in order, whatever
the number of shards, the page size, the read bound and the filter."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from invoicing.store import keys
from invoicing.store.shards import MergedPage, ShardRead, merge_shards

ITEMS = st.lists(st.integers(min_value=0, max_value=10_000), unique=True, max_size=60)


def read_shard(
    items: list[str], after: str | None, *, limit: int, read_size: int | None, keep: set[str] | None
) -> ShardRead[str]:
    """One shard's Query newest first, starting after `after`: `limit + 1` matches (a plain listing),
    or `read_size` items read of which only the `keep` ones match (a filtered, bounded read)."""
    rest = sorted((i for i in items if after is None or i < after), reverse=True)
    if read_size is None:
        got = rest[: limit + 1]
        return ShardRead(got, got[-1] if len(got) > limit else None)
    read = rest[:read_size]
    matched = [i for i in read if keep is None or i in keep]
    return ShardRead(matched, read[-1] if len(rest) > read_size else None)


def page_through(shards: list[list[str]], *, limit: int, read_size: int | None, keep: set[str] | None) -> list[str]:
    seen: list[str] = []
    after: str | None = None
    for _ in range(10_000):
        reads = [read_shard(s, after, limit=limit, read_size=read_size, keep=keep) for s in shards]
        page: MergedPage[str] = merge_shards(reads, sort_key=str, limit=limit)
        assert len(page.items) <= limit
        seen += page.items
        if not page.more:
            return seen
        assert page.last_position is not None and (after is None or page.last_position < after)  # progress
        after = page.last_position
    raise AssertionError("paging did not end")


@settings(max_examples=150, deadline=None)
@given(
    ITEMS,
    st.integers(min_value=1, max_value=9),
    st.integers(min_value=1, max_value=7),
    st.one_of(st.none(), st.integers(min_value=1, max_value=5)),
    st.one_of(st.none(), st.integers(min_value=1, max_value=3)),
)
def test_paging_across_shards_returns_each_item_once_in_order(
    numbers: list[int], shard_count: int, limit: int, read_size: int | None, keep_every: int | None
) -> None:
    # Given items spread over N shards by the production shard function
    items = [f"2026-11-{n:05d}#in_{n}" for n in numbers]
    shards: list[list[str]] = [[] for _ in range(shard_count)]
    for item in items:
        shards[keys.index_shard(item, shard_count)].append(item)
    keep = {i for k, i in enumerate(sorted(items)) if k % keep_every == 0} if keep_every else None
    # When a reader pages through them (plain listing, or a filtered read bounded per shard)
    seen = page_through(shards, limit=limit, read_size=read_size, keep=keep if read_size else None)
    # Then each (matching) item comes exactly once, newest first
    expected = sorted(items if read_size is None or keep is None else keep, reverse=True)
    assert seen == expected


def test_a_page_never_costs_more_than_n_reads_of_limit_plus_one() -> None:
    shards = [[f"k{i:03d}" for i in range(s, 100, 4)] for s in range(4)]
    reads = [read_shard(s, None, limit=10, read_size=None, keep=None) for s in shards]
    assert all(len(r.items) <= 11 for r in reads)
    page = merge_shards(reads, sort_key=str, limit=10)
    assert page.items == [f"k{i:03d}" for i in range(99, 89, -1)] and page.more and page.last_position == "k090"


def test_a_shard_that_stopped_early_ends_the_page_at_its_frontier() -> None:
    # shard 0 read only down to "k5" (a read bound), shard 1 is exhausted and holds older items
    page = merge_shards([ShardRead(["k9", "k5"], "k5"), ShardRead(["k8", "k3", "k1"], None)], sort_key=str, limit=10)
    assert page.items == ["k9", "k8", "k5"] and page.more and page.last_position == "k5"  # k3, k1 next page


def test_shard_count_is_validated() -> None:
    for bad in (0, keys.MAX_INDEX_SHARDS + 1):
        try:
            keys.configure_index_shards(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} shards accepted")
    assert keys.status_shard_pk("open", 3) == "STATUS#open#3"
    assert keys.status_pk("open", "in_x") == f"STATUS#open#{keys.index_shard('in_x')}"
