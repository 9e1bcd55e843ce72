"""The capacity model's arithmetic against hand-computed cases, and the `breakaway capacity` CLI.

Every expected value below is worked out by hand in the comment beside it, from the AWS limits
and prices the model states (infra/capacity/) and the project's own constants.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from functions.leaderboard_api import logic as board
from infra.capacity import model as cap
from infra.capacity.facts import (
    ARCHIVE_COMPRESSION_RATIO,
    ASSUMED_API_CPU_MS,
    ASSUMED_READINGS_PER_CPU_SECOND,
)
from infra.capacity.measured import RESULTS_KEYS, Measured, load_measured
from infra.capacity.prices import PRICE_DATE, PRICES
from infra.capacity.sizes import (
    SAMPLE_START_MS,
    announcement_bytes,
    best_bytes,
    entry_bytes,
    idempotency_record_bytes,
    item_bytes,
    mean_standing_write_units,
    placings_page_bytes,
    race_bytes,
    records_bytes,
    result_bytes,
    sample_reading,
    sample_standing,
    standing_bytes,
)
from infra.config import BreakawayConfig, FunctionConfig
from local import cli
from shared import keys
from shared.items import standing_item

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


def test_iot_messages_and_cost_and_basic_ingest() -> None:
    d = run(riders=1_000)
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
def test_dynamodb_writes_and_units_at_1000_riders() -> None:
    d = run(riders=1_000)
    db = d["dynamodb"]
    assert db["writes_per_rider_per_s"] == keys.MAX_RIDER_WRITES_PER_SECOND == 1
    assert db["standing_writes_per_s"] == 1_000
    assert db["race_record_writes_per_s"] == 4  # one per slot per batch: 2 shards x 2 x 1/s
    # table: 1,000 x 1 WRU + 4 race writes; each of 2 indexes: 1,000 x 2 (delete + put)
    assert db["write_units_per_s"] == 1_004 + 2 * 2_000
    # reads: 1,000 viewers x (0.5 race + 52 shards x 0.5) + 100 race lists/s x 51 x 0.5
    assert db["read_units_per_s"] == 1_000 * (0.5 + 26) + 100 * 25.5
    hourly = (5_004 * 0.625 + 29_050 * 0.125) * 3600 / 1e6
    assert d["cost"]["per_hour_usd"]["dynamodb"] == pytest.approx(hourly)


def test_rank_shards_hold_10000_riders_within_the_budget_but_not_100000() -> None:
    at_10k = run(riders=10_000)["dynamodb"]
    mean = 10_000 / keys.RANK_SHARDS
    assert at_10k["writes_per_s_fullest_overall_shard"] == round(
        (mean + 4 * math.sqrt(mean)) * 2, 1
    )
    assert at_10k["writes_per_s_fullest_overall_shard"] <= keys.PARTITION_WRITE_BUDGET
    assert at_10k["rank_shards_needed"] == keys.RANK_SHARDS
    at_100k = run(riders=100_000, viewers=0)
    shard = next(lim for lim in at_100k["limits"] if "ByRaceRank shard" in lim["what"])
    assert shard["utilization"] > 4  # ~4,197 writes/s against 1,000
    assert at_100k["dynamodb"]["rank_shards_needed"] == keys.shards_needed(100_000)
    assert f"= {keys.shards_needed(100_000)}" in shard["lift"]
    assert at_100k["dynamodb"]["race_record_writes_per_s"] == 400  # 200 shards x 2


def test_small_races_are_written_by_the_slots_holding_their_riders() -> None:
    d = run(riders=50, races=50, viewers=0)
    # 1 shard x 2 slots; each 1-rider race sits in one slot: 1 write/s per race record
    assert d["dynamodb"]["race_record_writes_per_s"] == 1
    # table: 50 standings x 1 WRU + 50 race records x 1; indexes: 2 x 50 x 2
    assert d["dynamodb"]["write_units_per_s"] == 50 + 50 + 200


def test_riders_split_over_races_spread_the_rank_shards() -> None:
    d = run(riders=100_000, races=10, viewers=0)["dynamodb"]
    mean = 10_000 / keys.RANK_SHARDS
    assert d["writes_per_s_fullest_overall_shard"] == round((mean + 4 * math.sqrt(mean)) * 2, 1)


def test_item_sizes_follow_dynamodb_rules() -> None:
    assert item_bytes({"pk": {"S": "ab"}}) == 4
    assert item_bytes({"n": {"N": "12345"}}) == 1 + 4  # 5 digits: 3 bytes + 1
    assert item_bytes({"b": {"B": b"\x00\x01\x02"}}) == 4


def test_standing_write_units_grow_with_the_bitmap() -> None:
    assert mean_standing_write_units(3600) == 1.0
    assert standing_bytes(3599) == 777  # ~327 B of attributes + a 450 B bitmap
    # Directly from the codec, every second of a two-hour race. The model sizes the numbers at
    # their end-of-race width throughout, so it may exceed the direct mean, by very little.
    direct = [
        math.ceil(item_bytes(standing_item(sample_standing(s), SAMPLE_START_MS // 1000)) / 1024)
        for s in range(7200)
    ]
    mean = sum(direct) / len(direct)
    assert mean <= mean_standing_write_units(7200) <= mean + 0.005
    assert mean_standing_write_units(7200) > 1.2


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
    assert f["s3_objects_per_hour"] == 12  # one race, a 300 s buffer


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


# --- API ------------------------------------------------------------------------------------------
def test_api_requests_and_the_stage_throttle_at_1000_viewers() -> None:
    d = run(riders=1_000)
    a = d["api"]
    assert a["requests_per_s"] == 1_100  # 1 leaderboard/s + 1 race list every 10 s per viewer
    assert a["queries_per_leaderboard_request"] == keys.RANK_SHARDS
    assert a["read_units_per_leaderboard_request"] == 0.5 + keys.RANK_SHARDS * 0.5
    # API Gateway: 1,100 x 3,600 x $3.50 / million
    assert d["cost"]["per_hour_usd"]["api_gateway"] == pytest.approx(13.86)
    first = d["first_limit"]
    assert (first["service"], first["what"]) == ("API Gateway", "stage throttle (requests/s)")
    assert first["limit"] == BreakawayConfig().api.throttling_rate_limit
    assert "api.throttling_rate_limit" in first["lift"]


def test_xray_default_sampling() -> None:
    assert cap.xray_traces_per_s(0) == 0
    assert cap.xray_traces_per_s(1) == 1
    assert cap.xray_traces_per_s(101) == pytest.approx(1 + 5)


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
                "processor": {"readings_per_cpu_second": 12_345, "writes_per_reading": 0.25},
                "api": {"cpu": {"handler_top10_uncached_us_median": 1500}},
            }
        )
    )
    m = load_measured(path)
    assert (m.readings_per_cpu_second, m.api_cpu_ms, m.writes_per_reading) == (12_345, 1.5, 0.25)
    assert m.readings_per_cpu_second_source.startswith("measured")


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


# --- CLI ------------------------------------------------------------------------------------------
def test_cli_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = cli.main(["capacity", "--riders", "1000", "--results", str(tmp_path / "absent.json")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "1,000 riders at 1 Hz" in out
    assert "2 shards at 50% of the write limits" in out
    assert "concurrency 4 (2 shards x 2)" in out
    assert "assumed (no processor benchmark)" in out
    assert "First limit hit: API Gateway: stage throttle" in out
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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
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
DOC_MEASURED = dataclasses.replace(
    MEASURED, readings_per_cpu_second=38_940, api_cpu_ms=ASSUMED_API_CPU_MS
)
"""The inputs docs/capacity.md states: the processor benchmark's figure, the API assumption."""


def test_doc_states_the_inputs_its_tables_use() -> None:
    doc = DOC.read_text()
    rate = f"{DOC_MEASURED.readings_per_cpu_second:,.0f}"
    api_ms = f"{DOC_MEASURED.api_cpu_ms:g} ms"
    assert f"| processor readings per CPU-second | {rate} | **measured**" in doc
    assert f"| API handler CPU per leaderboard request | {api_ms} | **assumed**" in doc
    assert f"were computed with {rate} and {api_ms}." in doc
    for path in RESULTS_KEYS.values():
        assert "`" + ".".join(path) + "`" in doc, path
    # The doc's 11 rows per shard query: a page of DEFAULT_LIMIT asks the merge for one more.
    rows = board.first_fetch_size(board.DEFAULT_LIMIT + 1, keys.RANK_SHARDS)
    assert rows == board.FREE_ROWS_PER_QUERY == 10
    assert f"`first_fetch_size(11, {keys.RANK_SHARDS})`" in doc


def _doc_model(riders: int, **kwargs: Any) -> dict[str, Any]:
    return cap.model(cap.Scenario(riders=riders, **kwargs), DOC_MEASURED).as_dict()


def test_doc_table_matches_the_model() -> None:
    doc = DOC.read_text()
    scales = (1_000, 10_000, 100_000)
    full = [_doc_model(n) for n in scales]
    riders_only = [_doc_model(n, viewers=0) for n in scales]
    cheap = [
        _doc_model(n, viewers=0, stream_mode="provisioned", transport="basic-ingest")
        for n in scales
    ]

    def row(label: str, cells: list[str]) -> str:
        return f"| {label} | " + " | ".join(cells) + " |"

    expected = [
        row(
            "shards at 50% of the write limits",
            [str(d["kinesis"]["shards"]) for d in full],
        ),
        row(
            "**cost per race hour**",
            [f"**${d['cost']['race_hour_usd']:,.2f}**" for d in full],
        ),
        row(
            "monthly, running 24/7",
            [f"${d['cost']['monthly_24x7_usd']:,.0f}" for d in full],
        ),
        row(
            "riders only (`--viewers 0`), per race hour",
            [f"${d['cost']['race_hour_usd']:,.2f}" for d in riders_only],
        ),
        row(
            "riders only, provisioned shards + Basic Ingest",
            [f"${d['cost']['race_hour_usd']:,.2f}" for d in cheap],
        ),
        row(
            "DynamoDB WRU/s (table + 2 indexes)",
            [f"{d['dynamodb']['write_units_per_s']:,.0f}" for d in full],
        ),
        row(
            "records per invocation, duration, busy",
            [
                f"{e['records_per_invocation']:,.0f}, {e['duration_s'] * 1000:.0f} ms, "
                f"{e['busy_fraction']:.0%}"
                for e in (d["esm"] for d in full)
            ],
        ),
        row(
            "race record writes/s (one key)",
            [f"{d['dynamodb']['race_record_writes_per_s']:,.0f}" for d in full],
        ),
    ]
    for line in expected:
        assert line in doc, line
    assert f"{full[1]['dynamodb']['writes_per_s_fullest_overall_shard']}" in doc
    assert f"{PRICE_DATE}" in doc
