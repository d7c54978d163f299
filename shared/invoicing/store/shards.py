"""Reading a sharded index key: query every shard, merge in sort order (docs/data-model.md, "Sharded index keys").

A listing over `STATUS#{status}#{0..N-1}` is N sorted runs of one order (the index sort key,
"{created_at}#{id}", unique per item). A page is a k-way merge (`heapq.merge`) of the N runs.

The cursor needs no per-shard state: every shard is sorted by the same total order, so "just after
the last item shown" IS each shard's position (each shard's Query starts with an ExclusiveStartKey at
that sort key, whether or not the shard holds that item). The cursor stays the opaque, validated
position of store/cursor.py, and a page costs at most N Queries of `limit + 1` items each.

When a shard stops early (a read bound, a filter), only what every shard has read is certain: the
page ends at the `frontier`, the position reached by the shard that got least far, and items past it
from other shards are dropped here and read again by the next page.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ShardRead(Generic[T]):
    """What one shard's Query returned: items in index order, and the sort key it stopped at when
    more remain in that shard (None: the shard is exhausted past the cursor)."""

    items: Sequence[T]
    stopped_at: str | None


@dataclass(frozen=True)
class MergedPage(Generic[T]):
    items: list[T]
    more: bool  # another page may follow
    last_position: str | None  # the sort key to continue after (the last item's, or the frontier)


def merge_shards(
    reads: Iterable[ShardRead[T]], *, sort_key: Callable[[T], str], limit: int, descending: bool = True
) -> MergedPage[T]:
    """One page of at most `limit` items from N shard reads, each sorted by `sort_key` (newest first
    when `descending`). Each read must hold `limit + 1` items or stop early with `stopped_at`."""
    runs = list(reads)
    frontier: str | None = None
    for run in runs:
        if run.stopped_at is not None:
            if frontier is None:
                frontier = run.stopped_at
            else:
                frontier = max(frontier, run.stopped_at) if descending else min(frontier, run.stopped_at)
    merged = heapq.merge(*(run.items for run in runs), key=sort_key, reverse=descending)
    page: list[T] = []
    for item in merged:
        key = sort_key(item)
        if frontier is not None and (key < frontier if descending else key > frontier):
            break  # past what every shard has read: the next page reads it again
        page.append(item)
        if len(page) > limit:
            break
    if len(page) > limit:
        page = page[:limit]
        return MergedPage(page, more=True, last_position=sort_key(page[-1]))
    if frontier is not None:
        return MergedPage(page, more=True, last_position=frontier)
    return MergedPage(page, more=False, last_position=sort_key(page[-1]) if page else None)
