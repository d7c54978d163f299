"""The partition-heat bench's arithmetic (bench/heat.py), on a tiny run: DynamoDB's size rules, and the
sharded keys of the real write path spreading a status over N index partitions."""

from __future__ import annotations

import contextlib
import io

from bench.heat import Scenario, item_size, simulate, summarize, units, value_size
from invoicing.store import keys


def test_item_size_follows_dynamodb_rules() -> None:
    assert value_size({"S": "héllo"}) == 6  # UTF-8 bytes
    assert value_size({"N": "12345"}) == 4  # 1 byte per 2 significant digits + 1
    assert value_size({"M": {"a": {"S": "xy"}}}) == 3 + 1 + 2 + 1
    assert item_size({"pk": {"S": "INVOICE#1"}, "n": {"N": "7"}}) == 2 + 9 + 1 + 2
    assert (units(1024, 1024), units(1025, 1024), units(0, 1024)) == (1, 2, 1)


def test_sharding_divides_the_status_keys_heat() -> None:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            one = simulate(40, 4, 2, Scenario("one", 1, "ALL"))["heat"]
            eight = simulate(40, 4, 2, Scenario("eight", 8, "ALL"))["heat"]
    finally:
        keys.configure_index_shards(keys.DEFAULT_INDEX_SHARDS)
    status_one = {k: v for k, v in one.writes["gsi2"].items() if k.startswith("STATUS#")}
    status_eight = {k: v for k, v in eight.writes["gsi2"].items() if k.startswith("STATUS#")}
    # N=1: every draft is put on STATUS#draft#0 and moved off it at finalize (2 writes), onto STATUS#open#0
    assert status_one == {"STATUS#draft#0": 80, "STATUS#open#0": 40}
    # N=8: the same writes, spread over the shards
    assert sum(status_eight.values()) == 120 and max(status_eight.values()) < 80 and len(status_eight) > 8
    assert set(one.writes["due"]) == {next(iter(one.writes["due"]))} and len(eight.writes["due"]) > 1
    rows = {r["where"]: r for r in summarize({"heat": one, "invoices": 40})}
    assert rows["due"]["share"] == 1.0 and rows["due"]["ceiling"] == 40 * 1000 / one.wcu["due"].most_common(1)[0][1]


def test_the_event_feed_is_keys_only_and_sharded_off_gsi2() -> None:
    # Given the template's own projections and N=8
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            heat = simulate(40, 4, 2, Scenario("template", 8, None))["heat"]
    finally:
        keys.configure_index_shards(keys.DEFAULT_INDEX_SHARDS)
    # Then each invoice's 2 outbox records cost the feed 1 WCU each (keys only), over several shards,
    assert sum(heat.wcu["feed"].values()) == sum(heat.writes["feed"].values()) == 80
    assert set(heat.writes["feed"]) <= {keys.event_feed_shard(s) for s in range(8)} and len(heat.writes["feed"]) > 1
    # and nothing of the feed is written to gsi2 any more
    assert not [k for k in heat.writes["gsi2"] if k.startswith("EVENTS#")]
