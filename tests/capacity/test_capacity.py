"""The capacity model's arithmetic against hand-computed cases, and the `breakaway capacity` CLI.

Every expected value below is worked out by hand in the comment beside it, from the AWS limits
and prices the model states (infra/capacity/) and the project's own constants.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.capacity import model as cap
from infra.capacity.facts import (
    ARCHIVE_COMPRESSION_RATIO,
    ASSUMED_API_CPU_MS,
    ASSUMED_READINGS_PER_CPU_SECOND,
)
from infra.capacity.measured import RESULTS_KEYS, Measured, load_measured
from infra.capacity.prices import PRICE_DATE, PRICES
from infra.capacity.sizes import (
    RETIRED_INDEX_ATTRIBUTES,
    SAMPLE_START_MS,
    announcement_bytes,
    best_bytes,
    board_json,
    entry_bytes,
    idempotency_record_bytes,
    item_bytes,
    live_build_write_units,
    live_chunk_bytes,
    live_head_bytes,
    live_index_page_bytes,
    live_standing_item,
    mean_standing_write_units,
    placings_page_bytes,
    put_write_units,
    race_bytes,
    races_json,
    records_bytes,
    result_bytes,
    sample_reading,
    sample_standing,
    sent_bytes,
    standing_bytes,
)
from infra.config import BreakawayConfig, CdnConfig, FunctionConfig
from local import cli
from shared import keys
from shared.ranking import ROWS_PER_CHUNK, SNAPSHOT_MAX_AGE_MS

# A fixed measurement, so the arithmetic does not depend on benchmarks/results.json.
MEASURED = Measured(
    readings_per_cpu_second=25_000,
    readings_per_cpu_second_source="test",
    api_cpu_ms=2.0,
    api_cpu_ms_source="test",
    writes_per_reading=None,
)
# A processor with exactly one vCPU (1,769 MB), so CPU seconds are readings / 25,000.
ONE_VCPU = dataclasses.replace(
    BreakawayConfig(), processor=FunctionConfig(memory_mb=1769, timeout_seconds=60)
)


def run(**kwargs: Any) -> dict[str, Any]:
    return cap.model(cap.Scenario(**kwargs), MEASURED).as_dict()


# --- Kinesis ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("records", "bytes_", "shards"),
    [
        (1_000, 245_000, 2),  # 1,000 / (1,000 x 50%) = 2; 245,000 B is under 2 x 512 KiB
        (500, 0, 1),  # exactly half a shard's records
        (501, 0, 2),
        (10, 600_000, 2),  # bytes bind: 600,000 / 524,288 = 1.14 -> 2
        (10_000, 2_450_000, 20),
        (100_000, 24_500_000, 200),
        (1, 1, 1),
    ],
)
def test_kinesis_shards_at_half_the_write_limits(records: int, bytes_: int, shards: int) -> None:
    assert cap.kinesis_shards(records, bytes_) == shards


def test_one_thousand_riders_kinesis_on_demand_cost_and_shape() -> None:
    d = run(riders=1_000)
    k = d["kinesis"]
    assert k["records_per_s_in"] == 1_000
    # record = 228 B reading (contract v2, with the deviceId the rule writes) + 11 B partition
    # key ("rider-04217")
    assert d["sizes"]["reading_bytes"] == 228
    assert d["sizes"]["kinesis_record_bytes"] == 239
    assert k["bytes_per_s_in"] == 239_000
    assert k["bytes_per_s_out"] == 478_000  # two consumers: the ESM and Firehose
    assert k["shards"] == 2
    assert k["mode"] == "on-demand"  # infra/config.py: shard_count None
    # on-demand: 1,000 x 3,600 records x 1 KiB = 3,600,000 KiB = 3.4332275 GiB per hour
    gib = 3_600_000 / 1024**2
    expected = 0.04 + gib * 0.08 + 2 * gib * 0.04
    assert d["cost"]["per_hour_usd"]["kinesis"] == pytest.approx(expected, abs=1e-4)
    assert round(expected, 4) == 0.5893


def test_provisioned_kinesis_cost() -> None:
    d = run(riders=1_000, stream_mode="provisioned")
    # 2 shards x $0.015 + 3,600,000 PUT payload units x $0.014 / million
    assert d["cost"]["per_hour_usd"]["kinesis"] == pytest.approx(0.03 + 0.0504)
    assert d["kinesis"]["idle_monthly_usd"] == pytest.approx(2 * 0.015 * 730)


# --- IoT Core -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("publishes", "connections"),
    [(1_000, 12), (10_000, 112), (90, 1), (91, 2), (1, 1), (100_000, 1_112)],
)
def test_pooled_connections_at_90_publishes_each(publishes: int, connections: int) -> None:
    assert cap.iot_connections(publishes) == connections


def test_the_default_ingest_is_what_the_simulator_publishes_on_in_aws() -> None:
    """``breakaway simulate --target aws`` publishes through Basic Ingest where the device
    policy allows it (``basic_ingest``, on by default), on the plain topic otherwise."""
    assert run(riders=1_000)["scenario"]["transport"] == "basic-ingest"
    plain = dataclasses.replace(BreakawayConfig(), basic_ingest=False)
    assert run(riders=1_000, config=plain)["scenario"]["transport"] == "iot"


def test_iot_messages_and_cost_and_basic_ingest() -> None:
    d = run(riders=1_000, transport="iot")
    i = d["iot"]
    assert i["device_connections"] == 1_000
    assert i["publishes_per_s"] == 1_000
    # 38 B topic (breakaway/devices/bike-04217/telemetry) + 228 B payload < 5 KB
    assert i["metered_messages_per_s"] == 1_000
    assert d["sizes"]["iot_metered_bytes"] == 38 + 228
    # connectivity 60,000 min x $0.08/M + 3.6 M messages x $1/M + 3.6 M x ($0.15 + $0.15)/M
    assert d["cost"]["per_hour_usd"]["iot"] == pytest.approx(0.0048 + 3.6 + 1.08)
    basic = run(riders=1_000, transport="basic-ingest")
    assert basic["cost"]["per_hour_usd"]["iot"] == pytest.approx(0.0048 + 1.08)
    assert i["messaging_usd_per_hour_saved_by_basic_ingest"] == pytest.approx(3.6)
    direct = run(riders=1_000, transport="kinesis")
    assert "iot" not in direct["cost"]["per_hour_usd"]


def test_iot_publish_quota_is_the_first_limit_at_100000_riders_on_provisioned_shards() -> None:
    d = run(riders=100_000, viewers=0, stream_mode="provisioned")
    first = d["first_limit"]
    assert (first["service"], first["demand"], first["limit"]) == ("IoT Core", 100_000, 20_000)
    assert first["utilization"] == 5.0
    below = run(riders=10_000, viewers=0, transport="basic-ingest")
    publish = [lim for lim in below["limits"] if "rule evaluations" in lim["what"]]
    assert publish[0]["utilization"] == 0.5


# --- the event source mapping and the processor ---------------------------------------------------
def test_esm_concurrency_invocations_and_duration() -> None:
    d = run(riders=1_000, config=ONE_VCPU)
    e = d["esm"]
    assert e["concurrency"] == 4  # 2 shards x parallelization 2
    assert e["invocations_per_s"] == 4  # one batch a second (1 s window) per slot
    assert e["records_per_invocation"] == 250
    # 250 / 25,000 CPU-s + ceil(250 / 16) = 16 rounds x 10 ms + 1 race record x 10 ms + 5 ms
    assert e["duration_s"] == pytest.approx(0.01 + 0.16 + 0.01 + 0.005)
    assert e["busy_fraction"] == pytest.approx(0.185)


def test_batch_size_caps_the_window() -> None:
    config = dataclasses.replace(
        BreakawayConfig(),
        event_source=dataclasses.replace(
            BreakawayConfig().event_source, max_batching_window_seconds=5
        ),
    )
    d = run(riders=10_000, viewers=0, config=config)
    # 20 shards x 2 = 40 slots, 250 records/s each: 5 s would be 1,250 > batch size 1,000, so
    # a batch every 4 s: 0.25 writes per rider per second.
    assert d["esm"]["invocations_per_s"] == 10
    assert d["esm"]["records_per_invocation"] == 1_000
    assert d["dynamodb"]["writes_per_rider_per_s"] == 0.25
    assert d["dynamodb"]["standing_writes_per_s"] == 2_500


# --- DynamoDB -------------------------------------------------------------------------------------
def test_dynamodb_writes_and_reads_at_1000_riders_and_viewers() -> None:
    d = run(riders=1_000)
    db = d["dynamodb"]
    assert db["writes_per_rider_per_s"] == keys.MAX_RIDER_WRITES_PER_SECOND == 1
    assert db["standing_writes_per_s"] == 1_000
    assert db["race_record_writes_per_s"] == 4  # one per slot per batch: 2 shards x 2 x 1/s
    # standings: 1,000 x 1 WRU (682 B at the last second); race record 4; one live build a
    # second: 10 chunks of 6 WRU, 5 rider-index pages of 4, the head twice (lease, build)
    assert db["write_units_per_s_standings"] == 1_000
    assert db["write_units_per_s_live_builds"] == 10 * 6 + 5 * 4 + 2 == 82
    assert db["write_units_per_s"] == 1_000 + 4 + 82
    # reads: the processor loads each rider once a race (its cache): 1,000 / 3,600 x 1 RRU;
    # a build reads every standing eventually consistent (0.5 each); each of 7 board origin
    # requests reads the head (0.5), the first chunk strongly (5,662 B: 2) and the race (0.5);
    # the race list, once per 5 s, 0.5 x 51
    assert db["read_units_per_s_processor"] == round(1_000 / 3_600, 2)
    assert db["read_units_per_s_live_builds"] == 500
    assert db["read_units_per_s_origin_requests"] == 7 * 3 + 0.2 * 25.5
    assert db["read_units_per_s"] == round(1_000 / 3_600 + 500 + 26.1, 1)
    hourly = (1_086 * 0.625 + (1_000 / 3_600 + 526.1) * 0.125) * 3600 / 1e6
    assert d["cost"]["per_hour_usd"]["dynamodb"] == round(hourly, 4)


def test_dynamodb_at_10000_riders_and_viewers() -> None:
    db = run(riders=10_000)["dynamodb"]
    # standings 10,000; race record 40 (20 shards x 2); a build: 99 chunks of 6 WRU and one of
    # 7, 41 rider-index pages of 4 and 9 of 5, the head (3: each chunk's class counts) and its
    # lease
    # the build (chunks, index pages, head: 3 units) and its lease, an update of the same head
    assert db["write_units_per_s_live_builds"] == 99 * 6 + 7 + 41 * 4 + 9 * 5 + 3 + 3 == 816
    assert db["write_units_per_s"] == 10_000 + 40 + 816
    assert db["read_units_per_s_live_builds"] == 5_000  # 10,000 standings x 0.5
    assert db["read_units_per_s_origin_requests"] == 26.1  # viewers do not reach DynamoDB
    assert db["read_units_per_s_live_head"] == 7 * 0.5 + 1 * 0.5  # board requests and a build


def test_the_processor_standings_cache_is_a_switch() -> None:
    cached = run(riders=1_000)
    uncached = run(riders=1_000, standings_cache=False)
    # without the cache every rider is loaded, strongly consistent (1 RRU), in every batch
    assert uncached["dynamodb"]["read_units_per_s_processor"] == 1_000
    assert cached["scenario"]["standings_cache"] is True
    saved = (
        uncached["cost"]["per_hour_usd"]["dynamodb"] - cached["cost"]["per_hour_usd"]["dynamodb"]
    )
    assert saved == pytest.approx((1_000 - 1_000 / 3_600) * 3_600 * 0.125 / 1e6, abs=1e-4)


def test_small_races_are_written_by_the_slots_holding_their_riders() -> None:
    d = run(riders=50, races=50, viewers=0)
    # 1 shard x 2 slots; each 1-rider race sits in one slot: 1 write/s per race record
    assert d["dynamodb"]["race_record_writes_per_s"] == 1
    # 50 standings x 1 WRU + 50 race records x 1; no viewers, no builds
    assert d["dynamodb"]["write_units_per_s"] == 50 + 50
    assert d["api"]["live_builds_per_s"] == 0


def test_each_race_viewed_is_built_once_a_second() -> None:
    d = run(riders=1_000, races=2, viewers=3)
    # 3 viewers over 2 races poll 1.5 board keys each: every race is asked at least once a
    # second, and rebuilt at most once per SNAPSHOT_MAX_AGE_MS
    assert SNAPSHOT_MAX_AGE_MS == 1_000
    assert d["api"]["live_builds_per_s"] == 2
    assert d["api"]["live_build_read_units"] == 500 * 0.5  # 500 riders a race


def test_standing_loses_the_retired_index_keys() -> None:
    item = live_standing_item(sample_standing(10), SAMPLE_START_MS // 1000)
    assert not set(RETIRED_INDEX_ATTRIBUTES) & set(item)
    assert {"pk", "sk", "points", "counted", "ver"} <= set(item)


def test_item_sizes_follow_dynamodb_rules() -> None:
    assert item_bytes({"pk": {"S": "ab"}}) == 4
    assert item_bytes({"n": {"N": "12345"}}) == 1 + 4  # 5 digits: 3 bytes + 1
    assert item_bytes({"b": {"B": b"\x00\x01\x02"}}) == 4


def test_standing_write_units_grow_with_the_bitmap() -> None:
    assert mean_standing_write_units(3600) == 1.0
    assert standing_bytes(3599) == 682  # ~232 B of attributes + a 450 B bitmap
    # Directly from the codec, every second of a two-hour race. The model sizes the numbers at
    # their end-of-race width throughout, so it may exceed the direct mean, by very little.
    direct = [
        math.ceil(
            item_bytes(live_standing_item(sample_standing(s), SAMPLE_START_MS // 1000)) / 1024
        )
        for s in range(7200)
    ]
    mean = sum(direct) / len(direct)
    assert mean <= mean_standing_write_units(7200) <= mean + 0.005
    # the item passes 1 KB from second 6,328: 872 of 7,200 writes cost two units
    assert mean_standing_write_units(7200) == pytest.approx(1 + 872 / 7200)


# --- Firehose -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "billed"), [(1, 5120), (234, 5120), (5120, 5120), (5121, 10240), (12_000, 15_360)]
)
def test_firehose_rounds_records_up_to_5_kb(size: int, billed: int) -> None:
    assert cap.firehose_billed_bytes(size) == billed


def test_firehose_billed_volume_at_1000_riders() -> None:
    f = run(riders=1_000)["firehose"]
    assert f["billed_bytes_per_record"] == 5_120
    assert f["billed_gb_per_hour"] == round(1_000 * 3_600 * 5_120 / 1024**3, 3)  # 17.166
    assert f["actual_gb_per_hour"] == round(1_000 * 3_600 * 228 / 1024**3, 3)
    assert f["s3_objects_per_hour"] == 12  # one day partition, a 300 s buffer


def test_archive_compression_assumption_is_conservative() -> None:
    from simulator.model import RaceConfig, tick

    config = RaceConfig("race-2026-11-22-1900", 500, 600, start_ms=SAMPLE_START_MS)
    ndjson = b"".join(r.to_json() + b"\n" for s in (0, 1, 2) for r in tick(config, s))
    assert len(ndjson) / len(gzip.compress(ndjson)) >= ARCHIVE_COMPRESSION_RATIO


def test_sample_reading_is_the_size_of_a_simulated_one() -> None:
    """As the stream carries it: the simulator's reading with the deviceId the rule adds."""
    from infra.capacity.sizes import SAMPLE_DEVICE_ID
    from simulator.model import RaceConfig, reading

    config = RaceConfig("race-2026-11-22-1900", 5_000, 3_600, start_ms=SAMPLE_START_MS)
    sizes = [
        len(reading(config, i, 1_799).model_copy(update={"device_id": SAMPLE_DEVICE_ID}).to_json())
        for i in range(0, 5_000, 97)
    ]
    assert abs(sum(sizes) / len(sizes) - len(sample_reading().to_json())) < 4


# --- the live ranking snapshot --------------------------------------------------------------------
def test_live_items_from_the_codecs() -> None:
    assert live_head_bytes() == 181  # one read unit, eventually consistent: 0.5
    assert ROWS_PER_CHUNK == 100
    assert live_chunk_bytes(1_000, 3_600) == 5_662  # the first chunk: 2 RRU strongly, 6 WRU
    assert live_index_page_bytes(1_000, 3_600) == 3_876  # the largest of 5 pages: 1 RRU
    assert live_index_page_bytes(10_000, 3_600) == 4_513  # the largest of 50: 2 RRU
    assert live_build_write_units(1_000, 3_600) == 10 * 6 + 5 * 4 + 1
    assert live_build_write_units(10_000, 3_600) == 99 * 6 + 7 + 41 * 4 + 9 * 5 + 3


@pytest.mark.parametrize(
    ("riders", "build_rru", "build_wru", "lookup_rru"),
    [
        (1_000, 500, 82, 0.5 + 1 + 2),  # the head, a rider-index page, a chunk
        (10_000, 5_000, 816, 0.5 + 2 + 2),
    ],
)
def test_a_build_and_a_rider_lookup_in_request_units(
    riders: int, build_rru: float, build_wru: int, lookup_rru: float
) -> None:
    a = run(riders=riders)["api"]
    assert (a["live_build_read_units"], a["live_build_write_units"]) == (build_rru, build_wru)
    assert a["read_units_per_rider_lookup"] == lookup_rru
    assert a["read_units_per_leaderboard_request"] == 0.5 + 2 + 0.5


def test_a_build_fits_its_lease_and_the_api_timeout_at_10000_riders() -> None:
    d = run(riders=10_000)
    limits = {lim["what"]: lim for lim in d["limits"]}
    lease = limits["one live-ranking build (s), against its lease on the race's head"]
    timeout = limits["one live-ranking build (s), against the API function's timeout"]
    # 100 BatchGetItems 10 at a time (10 x 5 ms), 10,000 x 20 us of CPU on 512/1,769 of a vCPU,
    # 150 items in 6 BatchWriteItems (one round) and the head twice (3 x 10 ms)
    duration = 10 * 0.005 + 10_000 * 20e-6 * 1769 / 512 + 3 * 0.010
    assert lease["demand"] == timeout["demand"] == pytest.approx(duration)
    assert (lease["limit"], timeout["limit"]) == (5, 10)


# --- CloudFront, WAF and the API behind them ----------------------------------------------------
def test_viewer_requests_shield_and_origin_at_1000_viewers() -> None:
    d = run(riders=1_000)
    c, a = d["cdn"], d["api"]
    # 1 leaderboard a second and 1 race list every 10 s per viewer, all through CloudFront
    assert (c["leaderboard_requests_per_s"], c["race_list_requests_per_s"]) == (1_000, 100)
    assert c["leaderboard_cache_keys"] == 7  # overall and six classes
    # the shield: 10 edge caches x 7 keys a second, 10 x 1 list per 5 s
    assert c["origin_shield_requests_per_s"] == 70 + 2
    # the API: one per key per max-age (7 x 1/1 s, 1 x 1/5 s)
    assert a["requests_per_s"] == c["origin_requests_per_s"] == 7.2
    assert c["hit_ratio"] == round(1 - 7.2 / 1_100, 4)
    assert c["function_invocations_per_s"] == 1_100


def test_responses_are_sized_from_the_api_models() -> None:
    board, races = board_json(1_000, 3_600, 10), races_json()
    assert (len(board), sent_bytes(board)) == (1_463, 385)  # gzip
    assert (len(races), sent_bytes(races)) == (18_767, 847)
    assert json.loads(board)["entries"][0]["rank"] == 1
    assert len(json.loads(races)["races"]) == 50
    small = b"{}" * 400
    assert sent_bytes(small) == 800  # under 1,000 bytes CloudFront sends it as it is


def test_cloudfront_cost_at_1000_viewers() -> None:
    d = run(riders=1_000)
    out_bytes = 1_000 * (385 + 300) + 100 * (847 + 300)  # bodies sent and 300 B of headers
    assert d["cdn"]["data_out_gb_per_hour"] == round(out_bytes * 3_600 / 1024**3, 3)
    expected = (
        3_960_000 * 0.0100 / 1e4  # HTTPS requests
        + out_bytes * 3_600 / 1024**3 * 0.085  # data out
        + 72 * 3_600 * 0.0075 / 1e4  # into Origin Shield
        + 3_960_000 * 0.10 / 1e6  # the viewer-request function
    )
    assert d["cost"]["per_hour_usd"]["cloudfront"] == round(expected, 4) == 4.7783
    assert "waf" not in d["cost"]["per_hour_usd"]  # dev: cdn.waf_enabled off
    without = run(riders=1_000, viewer_function=False)
    assert without["cost"]["per_hour_usd"]["cloudfront"] == round(expected - 0.396, 4)


def test_waf_costs_its_monthly_fees_and_a_price_per_request() -> None:
    d = run(riders=1_000, waf=True)
    assert d["cdn"]["waf"] is True
    assert d["cost"]["per_hour_usd"]["waf"] == round((5 + 1) / 730 + 3_960_000 * 0.60 / 1e6, 4)


def test_waf_follows_the_configuration() -> None:
    prod = dataclasses.replace(BreakawayConfig(), cdn=CdnConfig(waf_enabled=True))  # cdk.json
    assert cap.Scenario(riders=10, config=prod).waf_on is True
    assert cap.Scenario(riders=10, config=prod, waf=False).waf_on is False
    assert cap.Scenario(riders=10).waf_on is BreakawayConfig().cdn.waf_enabled is False


def test_api_gateway_and_lambda_see_only_origin_requests() -> None:
    d = run(riders=1_000)
    assert d["cost"]["per_hour_usd"]["api_gateway"] == round(7.2 * 3_600 * 3.50 / 1e6, 4)
    limits = {lim["what"]: lim for lim in d["limits"]}
    throttle = limits["stage throttle (requests/s)"]
    assert (throttle["demand"], throttle["limit"]) == (7.2, 200)


def test_xray_default_sampling() -> None:
    assert cap.xray_traces_per_s(0) == 0
    assert cap.xray_traces_per_s(1) == 1
    assert cap.xray_traces_per_s(101) == pytest.approx(1 + 5)


RACE_HOUR_1000 = {
    "kinesis": 0.5893,
    "iot": 1.0848,  # Basic Ingest: rules and actions 1.08 (no messaging charge)
    "lambda_processor": 0.0398,
    "cloudfront": 4.7783,
    "api_gateway": 0.0907,
    "lambda_api": 0.0123,
    "closing": 0.0038,
    "dynamodb": 2.6804,
    "firehose": 0.4978,  # 17.17 GB billed at $0.029
    "s3_archive_month": 0.0035,
    "cloudwatch_logs": 0.0261,
    "xray": 0.0443,
}


def test_a_race_hour_at_1000_riders_and_1000_viewers() -> None:
    d = run(riders=1_000, viewers=1_000)
    assert d["cost"]["per_hour_usd"] == RACE_HOUR_1000
    assert d["cost"]["race_hour_usd"] == round(sum(RACE_HOUR_1000.values()), 2) == 9.85
    assert max(lim["utilization"] for lim in d["limits"]) < 1
    plain = run(riders=1_000, viewers=1_000, transport="iot")
    assert plain["cost"]["race_hour_usd"] == 13.45  # with the $3.60 of IoT messaging


def test_a_race_hour_at_10000_riders_and_10000_viewers() -> None:
    d = run(riders=10_000, viewers=10_000)
    assert d["cost"]["race_hour_usd"] == 94.91
    cost = d["cost"]["per_hour_usd"]
    assert (cost["iot"], cost["cloudfront"], cost["dynamodb"]) == (10.848, 46.0448, 26.689)
    over = [lim for lim in d["limits"] if lim["utilization"] > 1]
    # Only a new on-demand stream: not an account quota, it is lifted by provisioning
    assert [(lim["service"], lim["demand"], lim["limit"]) for lim in over] == [
        ("Kinesis", 10_000, 4_000)
    ]
    assert "stream.shard_count=20" in over[0]["lift"]
    provisioned = run(riders=10_000, viewers=10_000, stream_mode="provisioned")
    assert max(lim["utilization"] for lim in provisioned["limits"]) <= 1


def test_a_limit_that_is_an_account_quota_names_it() -> None:
    d = run(riders=100_000, viewers=100_000)
    quotas = [lim for lim in d["limits"] if "Service Quotas" in lim["lift"]]
    assert len(quotas) >= 10
    for lim in quotas:
        assert re.search(r'Service Quotas: [A-Za-z ]+ "[^"]+"', lim["lift"]), lim


def test_the_deployed_shard_count_is_a_limit() -> None:
    stream = dataclasses.replace(BreakawayConfig().stream, shard_count=4)  # a 4-shard stream
    config = dataclasses.replace(BreakawayConfig(), stream=stream)
    d = run(riders=10_000, viewers=0, config=config)
    (lim,) = [lim for lim in d["limits"] if "deployed shards" in lim["what"]]
    assert (lim["demand"], lim["limit"], lim["utilization"]) == (10_000, 4_000, 2.5)
    assert "stream.shard_count=20" in lim["lift"]


def test_costs_add_up() -> None:
    c = cap.model(cap.Scenario(riders=1_000), MEASURED)
    d = c.as_dict()
    assert d["cost"]["race_hour_usd"] == round(sum(c.cost_per_hour.values()), 2)
    assert d["cost"]["monthly_24x7_usd"] == round(sum(c.cost_per_hour.values()) * 730, 2)


# --- closing races --------------------------------------------------------------------------------
def test_closing_item_sizes_from_the_codecs() -> None:
    assert race_bytes() == 306  # one write unit, one read unit
    assert entry_bytes() == 159  # 10,000 entries: 1.5 MB, two Query pages
    assert placings_page_bytes() == 7_813  # 100 rows with their two flags: 8 write units a page
    assert announcement_bytes() == 202  # the flags included
    assert idempotency_record_bytes() == 343  # the announcement and Powertools' bookkeeping
    assert best_bytes() == 166  # a personal best: one write unit
    assert result_bytes() == 241  # a result in a rider's history: one write unit
    assert records_bytes() == 9_159  # 100 rows: 9 write units, 3 strongly consistent reads


def test_a_10000_rider_close_sends_these_requests() -> None:
    classes = cap.class_split(10_000)
    assert classes == (1_667, 1_667, 1_667, 1_667, 1_666, 1_666)
    # 100 overall pages and 17 a class: 100 + 6 x 17
    assert cap.placings_pages(classes) == 202
    assert cap.close_requests(classes) == {
        "GetItem": 1 + 6,  # the race, each class's records
        "Query": 2,  # 10,000 entries x 159 B = 1.59 MB: two 1 MB pages
        "BatchGetItem": 100,  # standings, 100 a request
        "BatchWriteItem": 9 + 400,  # 202 pages, and 10,000 results, 25 a request
        "UpdateItem": 10_002,  # closing, closed, and each idempotency record completed
        "PutItem": 10_000 + 10_000 + 6,  # each idempotency record in progress, each personal
        # best claimed, each class's records saved
        "Publish": 10_000,  # each rider's placing
    }
    # 30,114 requests before the close weighed the results


def test_only_ranked_riders_are_weighed() -> None:
    requests = cap.close_requests((100, 100, 0, 0, 0, 0), ranked=(90, 0, 0, 0, 0, 0))
    assert requests == {
        "GetItem": 1 + 1,  # one class has ranked riders
        "Query": 1,
        "BatchGetItem": 2,
        "BatchWriteItem": 1 + 4,  # 2 + 2 + 4 x 1 = 8 pages; 90 results
        "UpdateItem": 202,
        "PutItem": 200 + 90 + 1,
        "Publish": 200,
    }


def test_a_race_of_five_stores_a_page_for_every_scope() -> None:
    classes = cap.class_split(5)
    assert classes == (1, 1, 1, 1, 1, 0)
    assert cap.placings_pages(classes) == 7  # the overall page and one per class, empty or not
    requests = cap.close_requests(classes)
    # 7 pages and 5 results: one BatchWriteItem each
    assert (requests["BatchGetItem"], requests["BatchWriteItem"], requests["Publish"]) == (1, 2, 5)


def test_a_10000_rider_close_in_units_time_and_dollars() -> None:
    c = cap.close_of(cap.class_split(10_000), 3_600, BreakawayConfig())
    # Strongly consistent reads: the race (1), the entries (1.59 MB / 4 KB = 389), each
    # standing (777 B: 1 each), and each class's records (9,159 B: 3 each)
    assert c.read_units == 1 + 389 + 10_000 + 6 * 3
    # The race twice (1 each), 202 pages of 8, two writes of each announcement's record, each
    # class's records (9 each), each personal best claimed (1) and result kept (1)
    assert c.write_units == 2 + 202 * 8 + 2 * 10_000 + 6 * 9 + 10_000 + 10_000
    # Waits: 9 reads (the race, 6 classes' records, 2 entry pages), ceil(100 / 16) rounds of
    # BatchGetItem, ceil(10,000 / 16) rounds of claims, 6 records saved, 411 writes (409
    # batches, closing, closed), then ceil(10,000 / 16) rounds of (PutItem, Publish,
    # UpdateItem) at 10 ms each
    assert c.io_s == pytest.approx(
        9 * 0.005 + 7 * 0.005 + 625 * 0.010 + 6 * 0.010 + 411 * 0.010 + 625 * 0.030
    )
    # 40,526 requests x 0.3 ms on 1,024 / 1,769 of a vCPU
    assert c.cpu_s == pytest.approx(40_526 * 0.0003 * 1769 / 1024)
    assert c.duration == pytest.approx(29.25 + 0.005)
    cost = cap.close_cost(c, 1024)
    assert cost == pytest.approx(
        1.00 / 1e6  # one scheduled invocation
        + 0.20 / 1e6  # one Lambda request
        + 29.255 * 1 * 0.0000133334  # GB-seconds
        + 10_408 * 0.125 / 1e6  # RRU
        + 41_672 * 0.625 / 1e6  # WRU
        + 10_000 * 1.00 / 1e6  # IoT messages
    )


def test_closes_per_hour_follow_the_races_and_their_length() -> None:
    d = run(riders=10_000, races=2, race_minutes=30, viewers=0)
    closing = d["closing"]
    assert closing["riders_per_race"] == 5_000
    assert closing["closes_per_hour"] == 4  # two races every 30 minutes
    assert closing["schedule_invocations_per_close"] == 1
    assert closing["timeout_s"] == BreakawayConfig().closer.timeout_seconds == 600
    per_close = cap.close_cost(cap.close_of(cap.class_split(5_000), 1_800, BreakawayConfig()), 1024)
    assert closing["cost_per_close_usd"] == round(per_close, 5)
    assert d["cost"]["per_hour_usd"]["closing"] == round(4 * per_close, 4)


def test_a_10000_rider_close_fits_one_invocation_and_the_account() -> None:
    d = run(riders=10_000)
    limits = {lim["what"]: lim for lim in d["limits"]}
    duration = limits["race closer duration for one race (s), against its timeout"]
    assert (duration["demand"], duration["limit"]) == (pytest.approx(29.255), 600)
    writes = limits["idempotency writes/s with every race closing at once (a new on-demand table)"]
    assert writes["demand"] == pytest.approx(2 * 10_000 / 29.255)
    assert writes["limit"] == 4_000
    publishes = limits["result publishes/s with every race closing at once"]
    assert publishes["demand"] == pytest.approx(10_000 / 29.255)


def test_a_longer_timeout_is_what_a_race_past_the_design_size_needs() -> None:
    config = dataclasses.replace(
        BreakawayConfig(), closer=FunctionConfig(memory_mb=1024, timeout_seconds=60)
    )
    d = cap.model(cap.Scenario(riders=10_000, config=config), MEASURED).as_dict()
    (limit,) = [lim for lim in d["limits"] if lim["what"].startswith("race closer duration")]
    assert limit["utilization"] == round(29.255 / 60, 3)
    assert "closer.timeout_seconds" in limit["lift"]


# --- measured figures -----------------------------------------------------------------------------
def test_measured_figures_come_from_results_json(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(
        json.dumps(
            {
                "processor": {
                    "readings_per_cpu_second": 12_345,
                    "writes_per_reading": 0.25,
                    "standing_sizes": {
                        "race_seconds": 3_600,
                        "standing_item_bytes_last_second": 1_500,
                        "standing_write_units_mean": 1.75,
                    },
                },
                "api": {"cpu": {"handler_top10_uncached_us_median": 1500}},
            }
        )
    )
    m = load_measured(path)
    assert (m.readings_per_cpu_second, m.api_cpu_ms, m.writes_per_reading) == (12_345, 1.5, 0.25)
    assert m.readings_per_cpu_second_source.startswith("measured")
    assert m.standing_sizes_for(3_600) == (1_500, 1.75)
    assert m.standing_sizes_for(1_800) is None  # measured over an hour: not a half-hour race
    d = cap.model(cap.Scenario(riders=1_000, viewers=0), m).as_dict()
    assert d["sizes"]["standing_sizes_source"].startswith("measured")
    assert d["dynamodb"]["write_units_per_s_standings"] == 1_000 * 1.75
    # the builds and the processor read a 1,500-byte standing in one read unit
    short = cap.model(cap.Scenario(riders=1_000, viewers=0, race_minutes=30), m).as_dict()
    assert short["sizes"]["standing_sizes_source"].startswith("the codec")
    assert short["dynamodb"]["write_units_per_s_standings"] == 1_000 * 1.0


def test_the_model_reads_exactly_these_results_keys() -> None:
    assert RESULTS_KEYS == {
        "readings_per_cpu_second": ("processor", "readings_per_cpu_second"),
        "writes_per_reading": ("processor", "writes_per_reading"),
        "api_cpu_us": ("api", "cpu", "handler_top10_uncached_us_median"),
        "standing_item_bytes": ("processor", "standing_sizes", "standing_item_bytes_last_second"),
        "standing_write_units": ("processor", "standing_sizes", "standing_write_units_mean"),
        "standing_race_seconds": ("processor", "standing_sizes", "race_seconds"),
    }


@pytest.mark.parametrize(
    "content",
    [
        None,
        "not json",
        "[]",
        '{"processor": 5}',
        '{"processor": {"readings_per_cpu_second": true}, "api": {"cpu": 3}}',
        '{"processor": {"readings_per_cpu_second": 0, "writes_per_reading": -1}}',
    ],
)
def test_missing_or_damaged_results_fall_back_to_stated_assumptions(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    m = load_measured(path)
    assert m.readings_per_cpu_second == ASSUMED_READINGS_PER_CPU_SECOND
    assert m.readings_per_cpu_second_source.startswith("assumed")
    assert m.api_cpu_ms == ASSUMED_API_CPU_MS
    assert m.writes_per_reading is None


def test_the_model_reads_keys_the_benchmarks_write() -> None:
    # The API figure was once read under a key the benchmark had renamed: silently "assumed".
    root = Path(__file__).resolve().parents[2]
    sections = (root / "benchmarks" / "__main__.py").read_text()
    for figure, path in RESULTS_KEYS.items():
        section, *names = path
        assert f'"{section}"' in sections, figure
        source = (root / "benchmarks" / f"{section}.py").read_text()
        for name in names:
            assert f'"{name}"' in source, (figure, name)


def test_results_json_holds_the_processor_figures() -> None:
    m = load_measured()
    assert m.readings_per_cpu_second_source == "measured (results.json processor)"
    assert m.writes_per_reading is not None
    measured = m.standing_sizes_for(3_600)
    assert measured is not None
    item_bytes_measured, units = measured
    # the processor's items at a one-hour race's end are under 1 KB, the first write and the
    # final one are transactions (twice the units): just over one unit a write
    assert item_bytes_measured < 1_024
    assert 1 <= units < 1.001
    d = cap.model(cap.Scenario(riders=1_000), m).as_dict()
    assert d["dynamodb"]["write_units_per_s_standings"] == round(1_000 * units, 1)


def test_a_put_costs_the_larger_item_and_twice_in_a_transaction() -> None:
    # (what the processor benchmark sizes its captured standing writes with)
    puts = [("a", 1_000, False), ("a", 1_100, False), ("a", 900, False), ("b", 500, True)]
    assert put_write_units(puts) == [1, 2, 2, 2]
    assert put_write_units([("a", 3_000, True), ("a", 100, False)]) == [6, 3]


# --- CLI ------------------------------------------------------------------------------------------
def test_cli_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = cli.main(["capacity", "--riders", "1000", "--results", str(tmp_path / "absent.json")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "1,000 riders at 1 Hz" in out
    assert "2 shards at 50% of the write limits" in out
    assert "concurrency 4 (2 shards x 2)" in out
    assert "assumed (no processor benchmark)" in out
    assert "First limit nearest (none hit): Kinesis: new on-demand stream" in out
    assert "7.20 to the API; 2.68 GB/h out; WAF off" in out
    assert "Closer    one invocation per race of 1,000 riders: 4,067 requests" in out


def test_cli_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = cli.main(
        ["capacity", "--riders", "10000", "--hz", "0.5", "--race-minutes", "30", "--json",
         "--viewers", "0", "--results", str(tmp_path / "absent.json")]
    )  # fmt: skip
    d = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert d["scenario"]["riders"] == 10_000
    assert d["kinesis"]["records_per_s_in"] == 5_000
    assert d["kinesis"]["shards"] == 10
    assert d["dynamodb"]["writes_per_rider_per_s"] == 0.5
    assert d["cost"]["region"] == "us-east-1"
    assert set(d["cost"]["prices"]) == set(PRICES)


def test_cli_switches(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = ["capacity", "--riders", "1000", "--json", "--results", str(tmp_path / "absent.json")]
    runs = {}
    for name, extra in [
        ("default", []),
        ("waf", ["--waf"]),
        ("no function", ["--no-viewer-function"]),
        ("no cache", ["--no-standings-cache"]),
    ]:
        assert cli.main([*base, *extra]) == 0
        runs[name] = json.loads(capsys.readouterr().out)
    assert runs["default"]["scenario"] | {"waf": True} == runs["waf"]["scenario"]
    assert "waf" in runs["waf"]["cost"]["per_hour_usd"]
    assert runs["no function"]["cdn"]["function_invocations_per_s"] == 0
    assert runs["no cache"]["dynamodb"]["read_units_per_s_processor"] == 1_000


def test_prod_as_deployed_takes_10000_riders_and_10000_viewers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``--env prod`` models cdk.json's prod: 20 provisioned shards, the web ACL on; at the
    design's largest race every limit stays under 100%."""
    argv = ["capacity", "--riders", "10000", "--viewers", "10000", "--env", "prod", "--json"]
    assert cli.main([*argv, "--results", str(tmp_path / "absent.json")]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["scenario"]["stream_mode"], d["kinesis"]["shards"], d["scenario"]["waf"]) == (
        "provisioned",
        20,
        True,
    )
    assert max(lim["utilization"] for lim in d["limits"]) == 0.5
    assert "waf" in d["cost"]["per_hour_usd"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--riders", "10", "--env", "staging"], "--env staging: unknown environment 'staging'"),
        (["--riders", "0"], "--riders must be at least 1 (got 0)"),
        (["--riders", "-5"], "--riders must be at least 1 (got -5)"),
        (["--riders", "many"], "--riders must be a whole number, not 'many'"),
        (["--riders", "10", "--hz", "0"], "--hz must be more than 0 (got 0)"),
        (
            ["--riders", "10", "--races", "11"],
            "--races must be 1 to the number of riders (10), got 11",
        ),
        (["--riders", "10", "--race-minutes", "1441"], "--race-minutes must be 1 to 1440"),
        (["--riders", "10", "--hz", "101"], "--hz must be at most 100"),
        (["--riders", "10", "--parallelization", "11"], "parallelization_factor must be 1-10"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    rc = cli.main(["capacity", *argv])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("breakaway capacity: ")
    assert message in lines[0]


def test_capacity_module_loads_no_cdk() -> None:
    code = "import sys, infra.capacity.command; print(sorted(m for m in sys.modules if 'cdk' in m))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


# --- docs/capacity.md stays in step with the model ---------------------------------------------
DOC = Path(__file__).resolve().parents[2] / "docs" / "capacity.md"
DOC_MEASURED = Measured(
    readings_per_cpu_second=90_823,
    readings_per_cpu_second_source="doc",
    api_cpu_ms=0.961,
    api_cpu_ms_source="doc",
    writes_per_reading=0.166,
    standing_item_bytes=872,
    standing_write_units=1.0006,
    standing_race_seconds=3_600,
)
"""The inputs docs/capacity.md states: the benchmarks' figures when it was written."""


def test_doc_states_the_inputs_its_tables_use() -> None:
    doc = DOC.read_text()
    rate = f"{DOC_MEASURED.readings_per_cpu_second:,.0f}"
    api_ms = f"{DOC_MEASURED.api_cpu_ms:g} ms"
    assert f"| processor readings per CPU-second | {rate} | **measured**" in doc
    assert f"| API handler CPU per request | {api_ms} | **measured**" in doc
    assert (
        f"| {DOC_MEASURED.standing_item_bytes:g} B; {DOC_MEASURED.standing_write_units:g} |" in doc
    )
    assert f"were computed with {rate} and {api_ms}" in doc
    for path in RESULTS_KEYS.values():
        assert "`" + ".".join(path) + "`" in doc, path


def _doc_model(riders: int, **kwargs: Any) -> dict[str, Any]:
    return cap.model(cap.Scenario(riders=riders, **kwargs), DOC_MEASURED).as_dict()


def _row(label: str, cells: list[str]) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def test_doc_table_matches_the_model() -> None:
    doc = DOC.read_text()
    scales = (1_000, 10_000, 100_000)
    full = [_doc_model(n) for n in scales]
    riders_only = [_doc_model(n, viewers=0) for n in scales]
    cheap = [
        _doc_model(n, viewers=0, stream_mode="provisioned", transport="basic-ingest")
        for n in scales
    ]
    expected = [
        _row("shards at 50% of the write limits", [str(d["kinesis"]["shards"]) for d in full]),
        _row("**cost per race hour**", [f"**${d['cost']['race_hour_usd']:,.2f}**" for d in full]),
        _row("monthly, running 24/7", [f"${d['cost']['monthly_24x7_usd']:,.0f}" for d in full]),
        _row(
            "riders only (`--viewers 0`), per race hour",
            [f"${d['cost']['race_hour_usd']:,.2f}" for d in riders_only],
        ),
        _row(
            "riders only, provisioned shards + Basic Ingest",
            [f"${d['cost']['race_hour_usd']:,.2f}" for d in cheap],
        ),
        _row(
            "DynamoDB WRU/s (standings + race records + live builds)",
            [f"{d['dynamodb']['write_units_per_s']:,.0f}" for d in full],
        ),
        _row(
            "DynamoDB RRU/s (live builds + origin requests + processor)",
            [f"{d['dynamodb']['read_units_per_s']:,.0f}" for d in full],
        ),
        _row(
            "CloudFront viewer requests/s; to Origin Shield; to the API",
            [
                f"{c['viewer_requests_per_s']:,.0f}; {c['origin_shield_requests_per_s']:,.0f}; "
                f"{c['origin_requests_per_s']:g}"
                for c in (d["cdn"] for d in full)
            ],
        ),
        _row(
            "records per invocation, duration, busy",
            [
                f"{e['records_per_invocation']:,.0f}, {e['duration_s'] * 1000:.0f} ms, "
                f"{e['busy_fraction']:.0%}"
                for e in (d["esm"] for d in full)
            ],
        ),
        _row(
            "race record writes/s (one key)",
            [f"{d['dynamodb']['race_record_writes_per_s']:,.0f}" for d in full],
        ),
    ]
    for line in expected:
        assert line in doc, line
    assert f"{PRICE_DATE}" in doc


def test_doc_breakdown_is_the_model_at_1000_riders_and_viewers() -> None:
    doc = DOC.read_text()
    d = _doc_model(1_000, viewers=1_000)
    cost = d["cost"]["per_hour_usd"]
    assert (
        f"`breakaway capacity --riders 1000 --viewers 1000`: **${d['cost']['race_hour_usd']}**"
        in doc
    )
    for service, key in [
        ("CloudFront", "cloudfront"),
        ("IoT Core", "iot"),
        ("DynamoDB", "dynamodb"),
        ("Kinesis", "kinesis"),
        ("Firehose", "firehose"),
    ]:
        assert f"| {service} | ${cost[key]:.2f} |" in doc, service
    api = cost["api_gateway"] + cost["lambda_api"]
    assert f"| API Gateway, API Lambda | ${api:.2f} |" in doc
    rest = cost["cloudwatch_logs"] + cost["xray"] + cost["closing"] + cost["s3_archive_month"]
    assert f"| logs, X-Ray, closing, S3 | ${rest:.2f} |" in doc
    waf = _doc_model(1_000, viewers=1_000, waf=True)["cost"]["per_hour_usd"]["waf"]
    assert f"adds ${waf:.2f}" in doc
    levers: list[tuple[str, dict[str, Any]]] = [
        ("the plain topic (`--transport iot`", {"transport": "iot"}),
        ("provisioned shards", {"stream_mode": "provisioned"}),
        ("poll the board every 2 s", {"poll_seconds": 2}),
    ]
    for label, kwargs in levers:
        total = _doc_model(1_000, viewers=1_000, **kwargs)["cost"]["race_hour_usd"]
        line = next(line for line in doc.splitlines() if line.startswith(f"| {label}"))
        assert f"**${total:.2f}**" in line, label


def _rate(usd: float) -> str:
    text = f"{usd:.10f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def test_doc_price_table_has_every_price() -> None:
    table = DOC.read_text().split("## Prices", 1)[1].split("Quotas used", 1)[0]
    for key, price in PRICES.items():
        assert _rate(price.usd) in table, (key, _rate(price.usd))
