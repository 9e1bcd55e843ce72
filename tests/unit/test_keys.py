"""The key schema: a live ranking build's items never collide with another build's, and the
rider index's pages are stable across processes."""

from __future__ import annotations

from shared import keys
from shared.ranking import index_page


def test_each_build_has_keys_of_its_own_and_the_head_sits_beside_the_race_record() -> None:
    a = keys.live_chunk_key("race-1", 1_795_374_300_000, 0)
    b = keys.live_chunk_key("race-1", 1_795_374_301_000, 0)
    index = keys.live_index_key("race-1", 1_795_374_300_000, 0)

    assert len({a[keys.PK], b[keys.PK], index[keys.PK]}) == 3
    head, race = keys.live_head_key("race-1"), keys.race_key("race-1")
    assert head[keys.PK] == race[keys.PK]
    # The head sorts just before the race record and after every entry: one Query reads both.
    assert keys.entry_key("race-1", "zzzz")[keys.SK] < head[keys.SK] < race[keys.SK]


def test_rider_index_page_is_crc32_of_the_rider_id() -> None:
    # Stable across processes and Python versions (never the salted built-in hash()).
    assert [index_page(r, 52) for r in ("ann", "bob", "rider-00001")] == [51, 28, 31]
