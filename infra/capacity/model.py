"""Capacity and cost model: what N concurrent riders need from each service, and what it costs.

``breakaway capacity --riders N [--hz 1] [--race-minutes M] [--json]`` prints it; docs/capacity.md
explains it and tabulates 1,000, 10,000 and 100,000 riders.

Pure Python: it imports nothing from ``aws_cdk`` (so the CLI starts fast) and takes every fact
about the project from where it is defined: the reading's size from
:class:`shared.contract.Telemetry`, the standing's size from :func:`shared.items.standing_item`,
the ranking-index sharding from :mod:`shared.keys`, the event source mapping, function and
archive settings from :mod:`infra.config`. Figures measured on this machine come from
``benchmarks/results.json`` when it is there; otherwise the model says which assumption it used.

Every figure is for a steady state: N riders sending ``hz`` readings a second each, spread over
``races`` concurrent races, watched by ``viewers`` live pages that poll the leaderboard once a
``poll_seconds``. Costs are on-demand list prices in us-east-1 (see :data:`PRICES`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from infra.config import BreakawayConfig
from shared import keys
from shared.cli import CliError
from shared.contract import (
    CONTRACT_VERSION,
    EVENT_UPDATE,
    MAX_RACE_SECONDS,
    NUM_CLASSES,
    Telemetry,
)
from shared.items import standing_item
from shared.leaderboard import DEFAULT_LIMIT, first_fetch_size
from shared.names import basic_ingest_topic, telemetry_topic
from shared.scoring import points
from shared.standings import Standing

Transport = Literal["iot", "basic-ingest", "kinesis"]
StreamMode = Literal["on-demand", "provisioned"]
TRANSPORTS: Final[tuple[Transport, ...]] = ("iot", "basic-ingest", "kinesis")
STREAM_MODES: Final[tuple[StreamMode, ...]] = ("on-demand", "provisioned")

KIB: Final = 1024
MIB: Final = 1024 * 1024
GIB: Final = 1024 * 1024 * 1024
HOURS_PER_MONTH: Final = 730
"""AWS's convention for monthly prices."""

RESULTS_FILE: Final = Path(__file__).resolve().parent.parent / "benchmarks" / "results.json"

# --- AWS limits (DESIGN.md "Limits that shape the design", and the quotas cited in capacity.md)
KINESIS_SHARD_RECORDS_IN: Final = 1_000
KINESIS_SHARD_BYTES_IN: Final = 1 * MIB
KINESIS_SHARD_BYTES_OUT: Final = 2 * MIB
KINESIS_SHARD_READS_PER_S: Final = 5
KINESIS_SHARD_HEADROOM: Final = 0.5
"""Size provisioned shards to run at half their write limits: hash spread over shards, bursts
after a producer reconnects, and the Alleycat sample's one shard that fell behind at 100%."""
KINESIS_SHARD_QUOTA: Final = 500
"""Provisioned shards per account in us-east-1 (default quota, adjustable)."""
KINESIS_ON_DEMAND_START_RECORDS: Final = 4_000
"""A new on-demand stream accepts 4,000 records/s (4 MiB/s) and scales to twice its previous
peak within about 15 minutes."""
KINESIS_ON_DEMAND_MAX_RECORDS: Final = 200_000
"""An on-demand stream's default maximum write capacity (200 MiB/s, 200,000 records/s)."""
KINESIS_PUT_PAYLOAD_UNIT: Final = 25 * KIB
KINESIS_ON_DEMAND_BILLING_UNIT: Final = 1 * KIB
KINESIS_CONSUMERS: Final = 2
"""Shared-throughput readers of the stream: the Lambda event source mapping and Firehose."""

IOT_PUBLISHES_PER_CONNECTION: Final = 100
IOT_ACCOUNT_PUBLISHES_PER_S: Final = 20_000
IOT_RULE_EVALUATIONS_PER_S: Final = 20_000
IOT_CONNECTS_PER_S: Final = 500
IOT_CONNECT_WINDOW_S: Final = 60
"""Assumption: every bike (re)connects within the minute before a race starts."""
IOT_MESSAGE_METER_BYTES: Final = 5 * KIB
SIMULATOR_CONNECTION_HEADROOM: Final = 0.9
"""``simulator/cli.py`` CONNECTION_HEADROOM: pooled simulator connections run at 90 publishes/s."""

LAMBDA_CONCURRENCY_QUOTA: Final = 1_000
LAMBDA_MB_PER_VCPU: Final = 1_769
LAMBDA_MIN_POLL_INTERVAL_S: Final = 1.0
"""Lambda reads each Kinesis shard about once a second when there is no batching window."""
MAX_PARALLELIZATION_FACTOR: Final = 10

DDB_PARTITION_READ_UNITS: Final = 3_000
DDB_TABLE_REQUEST_UNITS: Final = 40_000
"""On-demand default per table and per index: 40,000 read and 40,000 write request units/s."""
DDB_WRITE_UNIT_BYTES: Final = 1 * KIB
DDB_READ_UNIT_BYTES: Final = 4 * KIB
DDB_EVENTUAL_READ_UNITS: Final = 0.5
DDB_INDEX_ITEM_OVERHEAD: Final = 100
RANKING_INDEXES: Final = (keys.INDEX_OVERALL, keys.INDEX_CLASS)

FIREHOSE_BILLING_INCREMENT: Final = 5 * KIB
FIREHOSE_MAX_OBJECT_BYTES: Final = 128 * MIB

APIGW_ACCOUNT_RPS: Final = 10_000

# --- the live page (functions/leaderboard_api/static/index.html) ------------------------------
RACES_REFRESH_S: Final = 10
RACES_PAGE: Final = 50
"""The page asks for ``races?limit=50`` every 10 s and the leaderboard every second."""

# --- assumptions where nothing here measures the figure ---------------------------------------
ASSUMED_READINGS_PER_CPU_SECOND: Final = 20_000
ASSUMED_API_CPU_MS: Final = 3.0
"""Handler CPU per leaderboard request on one core of this machine."""
DDB_WRITE_LATENCY_S: Final = 0.010
DDB_READ_LATENCY_S: Final = 0.005
STORE_WORKERS: Final = 16
"""``shared.dynamodb.DynamoStandingsStore`` writes riders with 16 threads."""
READER_WORKERS: Final = 10
"""``shared.leaderboard_dynamodb.DynamoLeaderboardReader`` queries shards with 10 threads."""
INVOCATION_OVERHEAD_S: Final = 0.005
ARCHIVE_COMPRESSION_RATIO: Final = 5.0
"""GZIP NDJSON of readings; tests/capacity checks the simulator's readings compress better."""
LOG_BYTES_PER_PROCESSOR_INVOCATION: Final = 2 * KIB
LOG_BYTES_PER_API_REQUEST: Final = 1 * KIB
XRAY_RESERVOIR_PER_S: Final = 1.0
XRAY_FIXED_RATE: Final = 0.05


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    page: str


PRICE_DATE: Final = "2026-11-22"
PRICES: Final[dict[str, Price]] = {
    "kinesis_shard_hour": Price(0.015, "shard-hour", "Amazon Kinesis Data Streams pricing"),
    "kinesis_put_payload_units": Price(
        0.014, "million PUT payload units (25 KB)", "Amazon Kinesis Data Streams pricing"
    ),
    "kinesis_on_demand_stream_hour": Price(
        0.04, "stream-hour", "Amazon Kinesis Data Streams pricing (on-demand)"
    ),
    "kinesis_on_demand_in_gb": Price(
        0.08, "GB written (records rounded up to 1 KB)", "Amazon Kinesis Data Streams pricing"
    ),
    "kinesis_on_demand_out_gb": Price(
        0.04, "GB read per consumer", "Amazon Kinesis Data Streams pricing"
    ),
    "iot_connectivity": Price(0.08, "million connection-minutes", "AWS IoT Core pricing"),
    "iot_messaging": Price(1.00, "million messages (5 KB metered)", "AWS IoT Core pricing"),
    "iot_rules_triggered": Price(0.15, "million rules triggered", "AWS IoT Core pricing"),
    "iot_actions": Price(0.15, "million actions executed", "AWS IoT Core pricing"),
    "lambda_requests": Price(0.20, "million requests", "AWS Lambda pricing"),
    "lambda_gb_second_arm": Price(0.0000133334, "GB-second (arm64)", "AWS Lambda pricing"),
    "dynamodb_wru": Price(0.625, "million write request units", "Amazon DynamoDB pricing"),
    "dynamodb_rru": Price(0.125, "million read request units", "Amazon DynamoDB pricing"),
    "firehose_ingest_gb": Price(
        0.029, "GB ingested (records rounded up to 5 KB)", "Amazon Data Firehose pricing"
    ),
    "firehose_partitioning_gb": Price(
        0.02, "GB processed by dynamic partitioning", "Amazon Data Firehose pricing"
    ),
    "firehose_partitioning_objects": Price(
        0.005, "1,000 S3 objects delivered", "Amazon Data Firehose pricing"
    ),
    "firehose_jq_hour": Price(0.07, "JQ processing hour", "Amazon Data Firehose pricing"),
    "s3_standard_gb_month": Price(0.023, "GB-month", "Amazon S3 pricing"),
    "apigw_rest_requests": Price(
        3.50, "million REST API requests (first 333 million a month)", "Amazon API Gateway pricing"
    ),
    "cloudwatch_logs_gb": Price(0.50, "GB of logs ingested", "Amazon CloudWatch pricing"),
    "xray_traces": Price(5.00, "million traces recorded", "AWS X-Ray pricing"),
}


PRICE_CHECKS: Final[dict[str, str]] = {
    "iot_connectivity": "seen: transcription of aws.amazon.com/iot-core/pricing (read 2026-09-20)",
    "iot_messaging": "seen: same transcription; 5 KB metering: iot-core/pricing/additional-details",
    "lambda_requests": "seen: third-party copies of the AWS Lambda pricing page (US East)",
    "lambda_gb_second_arm": "seen: third-party copies of the AWS Lambda pricing page (US East)",
    "kinesis_put_payload_units": "seen: $0.014 quoted from the Kinesis pricing page (us-west-2)",
    "kinesis_shard_hour": "seen in a third-party worked example only",
}
"""Prices whose figure the search corpus showed (docs/capacity.md cites them); every other
price is the author's reading of the public page, stated as an assumption."""


def _usd(key: str, quantity: float) -> float:
    """The cost of ``quantity`` units of ``PRICES[key]`` (units per the price's ``per``)."""
    price = PRICES[key]
    scale = 1e6 if price.per.startswith("million") else 1e3 if price.per.startswith("1,000") else 1
    return price.usd * quantity / scale


# --- measured figures ------------------------------------------------------------------------
@dataclass(frozen=True)
class Measured:
    readings_per_cpu_second: float
    readings_per_cpu_second_source: str
    api_cpu_ms: float
    api_cpu_ms_source: str
    writes_per_reading: float | None
    """As measured by the processor benchmark (its own stream and window): a cross-check only."""


RESULTS_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "readings_per_cpu_second": ("processor", "readings_per_cpu_second"),
    "writes_per_reading": ("processor", "writes_per_reading"),
    "api_cpu_us": ("api", "cpu", "handler_top10_uncached_us_median"),
}
"""Where each measured figure sits in ``benchmarks/results.json`` (section first): written by
``benchmarks/processor.py`` and ``benchmarks/api.py``."""


def _measured(results: dict[str, Any], figure: str) -> float | None:
    """The positive number at ``RESULTS_KEYS[figure]``, or None when it is not there."""
    value: Any = results
    for key in RESULTS_KEYS[figure]:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def load_measured(path: Path = RESULTS_FILE) -> Measured:
    """Figures from ``benchmarks/results.json`` where present; stated assumptions otherwise."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        results = {}
    if not isinstance(results, dict):
        results = {}

    rate = _measured(results, "readings_per_cpu_second")
    if rate is not None:
        readings_rate, readings_source = rate, f"measured ({path.name} processor)"
    else:
        readings_rate = float(ASSUMED_READINGS_PER_CPU_SECOND)
        readings_source = "assumed (no processor benchmark)"

    us = _measured(results, "api_cpu_us")
    if us is not None:
        api_ms, api_source = us / 1000, f"measured ({path.name} api)"
    else:
        api_ms, api_source = ASSUMED_API_CPU_MS, "assumed (no api benchmark)"

    writes = _measured(results, "writes_per_reading")
    return Measured(readings_rate, readings_source, api_ms, api_source, writes)


# --- sizes from the project's own code --------------------------------------------------------
SAMPLE_RACE_ID: Final = "race-2026-11-22-1900"
SAMPLE_RIDER_ID: Final = "rider-04217"
SAMPLE_START_MS: Final = 1_795_374_000_000


def sample_reading() -> Telemetry:
    """A realistic reading: the simulator's id shapes (uuid5 event id, ``rider-NNNNN``)."""
    return Telemetry(
        v=CONTRACT_VERSION,
        event_id="9b1e2f4c-7d3a-5e6b-8c9d-0a1b2c3d4e5f",
        race_id=SAMPLE_RACE_ID,
        rider_id=SAMPLE_RIDER_ID,
        name="Priya K.",
        class_id=3,
        second=1_799,
        cadence=96,
        resistance=44,
        device_timestamp=SAMPLE_START_MS + 1_799_000,
        event=EVENT_UPDATE,
    )


def attribute_value_bytes(value: dict[str, Any]) -> int:
    """DynamoDB's size of one low-level attribute value (numbers: ~1 byte per 2 digits + 1)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(str(v).encode())
    if kind == "N":
        digits = str(v).lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(v)
    return 1


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: UTF-8 attribute names plus value sizes."""
    return sum(len(name.encode()) + attribute_value_bytes(v) for name, v in item.items())


def sample_standing(second: int) -> Standing:
    """A rider's standing after counting every second up to ``second`` (the largest bitmap)."""
    r = sample_reading()
    return Standing(
        race_id=r.race_id,
        rider_id=r.rider_id,
        name=r.name,
        class_id=r.class_id,
        points=(second + 1) * points(r.cadence, r.resistance),
        seconds=second + 1,
        last_second=second,
        counted=(1 << (second + 1)) - 1,
        version=second + 1,
        updated_at=r.device_timestamp,
        last_device_ts=r.device_timestamp,
    )


def standing_bytes(second: int) -> int:
    return item_bytes(standing_item(sample_standing(second), expires_at=SAMPLE_START_MS // 1000))


def mean_standing_write_units(race_seconds: int) -> float:
    """Mean WRUs of a standing write over a race: the bitmap grows a byte every 8 seconds, and a
    put costs one unit per started KB of the larger of the old and new item."""
    base = standing_bytes(race_seconds - 1) - ((race_seconds - 1) // 8 + 1)
    total = sum(math.ceil((base + s // 8 + 1) / DDB_WRITE_UNIT_BYTES) for s in range(race_seconds))
    return total / race_seconds


def index_entry_bytes(second: int) -> int:
    """A ranking-index entry: its keys, the table's keys, the projection, plus 100 bytes."""
    item = standing_item(sample_standing(second), expires_at=0)
    wanted = {keys.PK, keys.SK, keys.INDEX_OVERALL_PK, keys.INDEX_RANK_SK}
    wanted.update(keys.RANK_INDEX_PROJECTION)
    return item_bytes({k: v for k, v in item.items() if k in wanted}) + DDB_INDEX_ITEM_OVERHEAD


def spread(mean: float) -> float:
    """Riders on the fullest hash shard, as ``shared.keys.shards_needed`` sizes it."""
    return mean + keys.HASH_SPREAD_SIGMAS * math.sqrt(mean)


# --- the scenario and the model ---------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    riders: int
    hz: float = 1.0
    race_minutes: int = 60
    races: int = 1
    viewers: int | None = None
    """Live pages polling the leaderboard; ``None``: one per rider."""
    poll_seconds: float = 1.0
    transport: Transport = "iot"
    stream_mode: StreamMode | None = None
    """``None``: what the configuration deploys (``stream.shard_count`` null = on-demand)."""
    config: BreakawayConfig = field(default_factory=BreakawayConfig)

    def __post_init__(self) -> None:
        checks = [
            (self.riders >= 1, f"riders must be at least 1 (got {self.riders})"),
            (
                0 < self.hz <= IOT_PUBLISHES_PER_CONNECTION,
                f"--hz must be at most {IOT_PUBLISHES_PER_CONNECTION} (IoT Core's publishes/s per "
                f"connection), got {self.hz:g}",
            ),
            (
                1 <= self.race_minutes * 60 <= MAX_RACE_SECONDS,
                f"--race-minutes must be 1 to {MAX_RACE_SECONDS // 60} (the contract's longest "
                f"race), got {self.race_minutes}",
            ),
            (
                1 <= self.races <= self.riders,
                f"--races must be 1 to the number of riders ({self.riders}), got {self.races}",
            ),
            (self.viewers is None or self.viewers >= 0, f"viewers must be >= 0 ({self.viewers})"),
            (self.poll_seconds > 0, f"poll seconds must be > 0 (got {self.poll_seconds})"),
            (self.transport in TRANSPORTS, f"transport must be one of {TRANSPORTS}"),
            (self.stream_mode in (None, *STREAM_MODES), f"stream mode: one of {STREAM_MODES}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def viewer_count(self) -> int:
        return self.riders if self.viewers is None else self.viewers

    @property
    def mode(self) -> StreamMode:
        if self.stream_mode is not None:
            return self.stream_mode
        return "on-demand" if self.config.stream.shard_count is None else "provisioned"


@dataclass(frozen=True)
class Limit:
    service: str
    what: str
    demand: float
    limit: float
    lift: str

    @property
    def utilization(self) -> float:
        return self.demand / self.limit if self.limit else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "utilization": round(self.utilization, 3)}


@dataclass
class Capacity:
    scenario: dict[str, Any]
    measured: dict[str, Any]
    sizes: dict[str, Any]
    kinesis: dict[str, Any]
    iot: dict[str, Any]
    esm: dict[str, Any]
    dynamodb: dict[str, Any]
    firehose: dict[str, Any]
    api: dict[str, Any]
    observability: dict[str, Any]
    cost_per_hour: dict[str, float]
    limits: list[Limit]

    @property
    def hourly_usd(self) -> float:
        return sum(self.cost_per_hour.values())

    @property
    def monthly_usd(self) -> float:
        return self.hourly_usd * HOURS_PER_MONTH

    @property
    def first_limit(self) -> Limit:
        return max(self.limits, key=lambda lim: lim.utilization)

    def as_dict(self) -> dict[str, Any]:
        riders = self.scenario["riders"]
        return {
            "scenario": self.scenario,
            "measured": self.measured,
            "sizes": self.sizes,
            "kinesis": self.kinesis,
            "iot": self.iot,
            "esm": self.esm,
            "dynamodb": self.dynamodb,
            "firehose": self.firehose,
            "api": self.api,
            "observability": self.observability,
            "cost": {
                "per_hour_usd": {k: round(v, 4) for k, v in self.cost_per_hour.items()},
                "race_hour_usd": round(self.hourly_usd, 2),
                "per_rider_hour_usd": round(self.hourly_usd / riders, 5),
                "monthly_24x7_usd": round(self.monthly_usd, 2),
                "prices": {
                    k: {**asdict(p), "checked": PRICE_CHECKS.get(k, "assumed")}
                    for k, p in PRICES.items()
                },
                "price_date": PRICE_DATE,
                "region": "us-east-1",
            },
            "limits": sorted(
                (lim.as_dict() for lim in self.limits), key=lambda d: -float(d["utilization"])
            ),
            "first_limit": self.first_limit.as_dict(),
        }


def kinesis_shards(records_per_s: float, bytes_per_s: float) -> int:
    """Provisioned shards keeping each at ``KINESIS_SHARD_HEADROOM`` of its write limits."""
    by_records = records_per_s / (KINESIS_SHARD_RECORDS_IN * KINESIS_SHARD_HEADROOM)
    by_bytes = bytes_per_s / (KINESIS_SHARD_BYTES_IN * KINESIS_SHARD_HEADROOM)
    return max(1, math.ceil(round(max(by_records, by_bytes), 9)))


def firehose_billed_bytes(record_bytes: int) -> int:
    """Firehose bills each record rounded up to the next 5 KB."""
    return max(1, math.ceil(record_bytes / FIREHOSE_BILLING_INCREMENT)) * FIREHOSE_BILLING_INCREMENT


def iot_connections(
    publishes_per_s: float, per_connection: float = IOT_PUBLISHES_PER_CONNECTION
) -> int:
    """Pooled connections (the simulator's way) at 90% of the per-connection publish limit."""
    return max(
        1, math.ceil(round(publishes_per_s / (per_connection * SIMULATOR_CONNECTION_HEADROOM), 9))
    )


def xray_traces_per_s(requests_per_s: float) -> float:
    """The default sampling rule: the first request each second, then 5% of the rest."""
    first = min(requests_per_s, XRAY_RESERVOIR_PER_S)
    return first + XRAY_FIXED_RATE * max(0.0, requests_per_s - first)


def model(s: Scenario, measured: Measured | None = None) -> Capacity:  # noqa: PLR0915
    m = measured if measured is not None else load_measured()
    cfg = s.config
    es = cfg.event_source
    race_seconds = s.race_minutes * 60
    riders_per_race = s.riders / s.races
    limits: list[Limit] = []
    cost: dict[str, float] = {}

    # -- sizes -----------------------------------------------------------------------------
    reading = sample_reading()
    payload = len(reading.to_json())
    partition_key = len(reading.rider_id.encode())
    record_bytes = payload + partition_key
    topic = (
        basic_ingest_topic(reading.race_id, reading.rider_id)
        if s.transport == "basic-ingest"
        else telemetry_topic(reading.race_id, reading.rider_id)
    )
    iot_metered = len(topic.encode()) + payload
    standing_end = standing_bytes(race_seconds - 1)
    standing_wru = mean_standing_write_units(race_seconds)
    index_bytes = index_entry_bytes(race_seconds - 1)
    index_wru = math.ceil(index_bytes / DDB_WRITE_UNIT_BYTES)
    sizes = {
        "reading_bytes": payload,
        "kinesis_record_bytes": record_bytes,
        "iot_metered_bytes": iot_metered,
        "standing_item_bytes_at_end": standing_end,
        "standing_write_units_mean": round(standing_wru, 4),
        "index_entry_bytes": index_bytes,
    }

    # -- Kinesis -----------------------------------------------------------------------------
    records = s.riders * s.hz
    bytes_in = records * record_bytes
    shards = kinesis_shards(records, bytes_in)
    hour = 3600
    if s.mode == "provisioned":
        cost["kinesis"] = shards * PRICES["kinesis_shard_hour"].usd + _usd(
            "kinesis_put_payload_units",
            records * hour * math.ceil(record_bytes / KINESIS_PUT_PAYLOAD_UNIT),
        )
    else:
        billed_in = records * hour * math.ceil(record_bytes / KINESIS_ON_DEMAND_BILLING_UNIT) * KIB
        cost["kinesis"] = (
            PRICES["kinesis_on_demand_stream_hour"].usd
            + _usd("kinesis_on_demand_in_gb", billed_in / GIB)
            + _usd("kinesis_on_demand_out_gb", KINESIS_CONSUMERS * billed_in / GIB)
        )
    idle_monthly = HOURS_PER_MONTH * (
        shards * PRICES["kinesis_shard_hour"].usd
        if s.mode == "provisioned"
        else PRICES["kinesis_on_demand_stream_hour"].usd
    )
    kinesis = {
        "mode": s.mode,
        "records_per_s_in": records,
        "bytes_per_s_in": round(bytes_in),
        "records_per_s_out": records * KINESIS_CONSUMERS,
        "bytes_per_s_out": round(bytes_in * KINESIS_CONSUMERS),
        "shards": shards,
        "shard_headroom": KINESIS_SHARD_HEADROOM,
        "idle_monthly_usd": round(idle_monthly, 2),
    }
    if s.mode == "provisioned":
        limits.append(
            Limit(
                "Kinesis",
                "provisioned shards per account (us-east-1 default)",
                shards,
                KINESIS_SHARD_QUOTA,
                "Service Quotas: Kinesis shard quota; or on-demand mode",
            )
        )
        limits.append(
            Limit(
                "Kinesis",
                "reads out per shard (bytes, 2 consumers)",
                bytes_in * KINESIS_CONSUMERS / shards,
                KINESIS_SHARD_BYTES_OUT,
                "more shards (cdk.json stream.shard_count), or enhanced fan-out",
            )
        )
    else:
        limits.append(
            Limit(
                "Kinesis",
                "new on-demand stream's write capacity (records/s) at race start",
                records,
                KINESIS_ON_DEMAND_START_RECORDS,
                f"pre-provision: cdk.json stream.shard_count={shards} for the race "
                "(or on-demand warm throughput); on-demand doubles only every ~15 min",
            )
        )
        limits.append(
            Limit(
                "Kinesis",
                "on-demand stream maximum write (records/s)",
                records,
                KINESIS_ON_DEMAND_MAX_RECORDS,
                "Service Quotas: on-demand stream throughput",
            )
        )

    # -- IoT Core ------------------------------------------------------------------------------
    iot: dict[str, Any] = {"transport": s.transport}
    if s.transport in ("iot", "basic-ingest"):
        messages = records * math.ceil(iot_metered / IOT_MESSAGE_METER_BYTES)
        messaging = _usd("iot_messaging", messages * hour)
        iot.update(
            device_connections=s.riders,
            publishes_per_connection=s.hz,
            simulator_connections=iot_connections(records),
            publishes_per_s=records,
            metered_messages_per_s=messages,
            messaging_usd_per_hour_saved_by_basic_ingest=round(messaging, 4),
        )
        cost["iot"] = (
            _usd("iot_connectivity", s.riders * 60)
            + (messaging if s.transport == "iot" else 0.0)
            + _usd("iot_rules_triggered", records * hour)
            + _usd("iot_actions", records * hour)
        )
        limits.append(
            Limit(
                "IoT Core",
                "publishes per connection per second",
                s.hz,
                IOT_PUBLISHES_PER_CONNECTION,
                "fewer readings per device (the excess is dropped)",
            )
        )
        if s.transport == "iot":
            limits.append(
                Limit(
                    "IoT Core",
                    "inbound publishes per second per account",
                    records,
                    IOT_ACCOUNT_PUBLISHES_PER_S,
                    "Service Quotas: IoT Core publish requests per second (account)",
                )
            )
        limits.append(
            Limit(
                "IoT Core",
                "rule evaluations per second per account",
                records,
                IOT_RULE_EVALUATIONS_PER_S,
                "Service Quotas: IoT rules engine evaluations per second; or PutRecords "
                "straight to Kinesis (--transport kinesis)",
            )
        )
        limits.append(
            Limit(
                "IoT Core",
                f"connect requests per second (all bikes within {IOT_CONNECT_WINDOW_S} s)",
                s.riders / IOT_CONNECT_WINDOW_S,
                IOT_CONNECTS_PER_S,
                "Service Quotas: IoT Core connect requests per second; stagger connects",
            )
        )

    # -- Lambda event source mapping and the stream processor ----------------------------------
    batchers = shards * es.parallelization_factor
    interval = max(float(es.max_batching_window_seconds), LAMBDA_MIN_POLL_INTERVAL_S)
    per_batcher = records / batchers
    inv_rate = max(1 / interval, per_batcher / es.batch_size)
    invocations = batchers * inv_rate
    records_per_invocation = per_batcher / inv_rate
    rider_writes = min(s.hz, inv_rate, float(keys.MAX_RIDER_WRITES_PER_SECOND))
    riders_per_invocation = (s.riders / batchers) * min(1.0, s.hz / inv_rate)
    vcpu = cfg.processor.memory_mb / LAMBDA_MB_PER_VCPU
    cpu_s = records_per_invocation / (m.readings_per_cpu_second * vcpu)
    io_s = math.ceil(riders_per_invocation / STORE_WORKERS) * DDB_WRITE_LATENCY_S
    races_per_invocation = min(float(s.races), max(1.0, riders_per_invocation))
    io_s += math.ceil(races_per_invocation / STORE_WORKERS) * DDB_WRITE_LATENCY_S  # race records
    duration = cpu_s + io_s + INVOCATION_OVERHEAD_S
    busy = duration * inv_rate
    processor_gb_s = invocations * duration * cfg.processor.memory_mb / 1024
    cost["lambda_processor"] = _usd("lambda_requests", invocations * hour) + _usd(
        "lambda_gb_second_arm", processor_gb_s * hour
    )
    esm = {
        "batch_size": es.batch_size,
        "batching_window_s": es.max_batching_window_seconds,
        "parallelization_factor": es.parallelization_factor,
        "concurrency": batchers,
        "invocations_per_s": round(invocations, 3),
        "records_per_invocation": round(records_per_invocation, 1),
        "riders_per_invocation": round(riders_per_invocation, 1),
        "duration_s": round(duration, 4),
        "busy_fraction": round(busy, 3),
        "memory_mb": cfg.processor.memory_mb,
    }
    limits.append(
        Limit(
            "Lambda",
            "processor busy fraction per shard x parallelization slot",
            busy,
            1.0,
            "cdk.json event_source.parallelization_factor (up to 10), processor.memory_mb, "
            "or more shards",
        )
    )

    # -- API (live pages polling) ----------------------------------------------------------------
    viewers = s.viewer_count
    board_rps = viewers / s.poll_seconds
    races_rps = viewers / RACES_REFRESH_S
    api_rps = board_rps + races_rps
    rank_shards = keys.RANK_SHARDS
    rows = first_fetch_size(DEFAULT_LIMIT + 1, rank_shards)
    entry_rru = DDB_EVENTUAL_READ_UNITS * math.ceil(rows * index_bytes / DDB_READ_UNIT_BYTES)
    board_rru = DDB_EVENTUAL_READ_UNITS + rank_shards * entry_rru
    races_rru = DDB_EVENTUAL_READ_UNITS * (1 + RACES_PAGE)
    api_vcpu = cfg.api_function.memory_mb / LAMBDA_MB_PER_VCPU
    api_duration = (
        m.api_cpu_ms / 1000 / min(1.0, api_vcpu)
        + DDB_READ_LATENCY_S * (1 + math.ceil(rank_shards / READER_WORKERS))
        + INVOCATION_OVERHEAD_S
    )
    api_concurrency = api_rps * api_duration
    api_gb_s = api_rps * api_duration * cfg.api_function.memory_mb / 1024
    cost["api_gateway"] = _usd("apigw_rest_requests", api_rps * hour)
    cost["lambda_api"] = _usd("lambda_requests", api_rps * hour) + _usd(
        "lambda_gb_second_arm", api_gb_s * hour
    )
    api = {
        "viewers": viewers,
        "requests_per_s": round(api_rps, 2),
        "leaderboard_requests_per_s": round(board_rps, 2),
        "queries_per_leaderboard_request": rank_shards,
        "read_units_per_leaderboard_request": board_rru,
        "duration_s": round(api_duration, 4),
        "concurrency": round(api_concurrency, 1),
    }
    limits.append(
        Limit(
            "API Gateway",
            "stage throttle (requests/s)",
            api_rps,
            cfg.api.throttling_rate_limit,
            "cdk.json api.throttling_rate_limit; cache the leaderboard (CloudFront, 1 s TTL)",
        )
    )
    limits.append(
        Limit(
            "API Gateway",
            "requests per second per account",
            api_rps,
            APIGW_ACCOUNT_RPS,
            "Service Quotas: API Gateway throttle; cache the leaderboard (CloudFront, 1 s TTL)",
        )
    )
    limits.append(
        Limit(
            "Lambda",
            "concurrent executions per account (processor + API)",
            batchers + api_concurrency,
            LAMBDA_CONCURRENCY_QUOTA,
            "Service Quotas: Lambda concurrent executions",
        )
    )

    # -- DynamoDB ----------------------------------------------------------------------------------
    standing_writes = s.riders * rider_writes
    # A race record is written once per batch that holds one of its riders: by every slot when
    # the race has more riders than there are slots.
    race_writes = min(float(batchers), riders_per_race) * inv_rate
    index_writes_each = standing_writes * keys.INDEX_WRITES_PER_UPDATE * index_wru
    table_wru = standing_writes * standing_wru + race_writes * s.races
    wru = table_wru + len(RANKING_INDEXES) * index_writes_each
    table_rru = viewers * (DDB_EVENTUAL_READ_UNITS / s.poll_seconds) + races_rps * races_rru
    index_rru = board_rps * rank_shards * entry_rru
    rru = table_rru + index_rru
    overall_shard_writes = (
        spread(riders_per_race / rank_shards) * rider_writes * keys.INDEX_WRITES_PER_UPDATE
    )
    class_shard_writes = (
        spread(riders_per_race / NUM_CLASSES / rank_shards)
        * rider_writes
        * keys.INDEX_WRITES_PER_UPDATE
    )
    board_rps_per_race = board_rps / s.races
    shard_read_units = board_rps_per_race * entry_rru
    race_record_read_units = (board_rps_per_race + races_rps) * DDB_EVENTUAL_READ_UNITS
    needed_shards = keys.shards_needed(math.ceil(riders_per_race))
    cost["dynamodb"] = _usd("dynamodb_wru", wru * hour) + _usd("dynamodb_rru", rru * hour)
    dynamodb = {
        "standing_writes_per_s": round(standing_writes, 1),
        "writes_per_rider_per_s": rider_writes,
        "writes_per_reading": round(rider_writes / s.hz, 4),
        "race_record_writes_per_s": round(race_writes, 2),
        "rank_shards": rank_shards,
        "rank_shards_needed": needed_shards,
        "index_writes_per_update": keys.INDEX_WRITES_PER_UPDATE,
        "ranking_indexes": len(RANKING_INDEXES),
        "writes_per_s_fullest_overall_shard": round(overall_shard_writes, 1),
        "writes_per_s_fullest_class_shard": round(class_shard_writes, 1),
        "write_units_per_s": round(wru, 1),
        "read_units_per_s": round(rru, 1),
        "read_units_per_s_per_rank_shard": round(shard_read_units, 1),
        "read_units_per_s_race_record": round(race_record_read_units, 1),
    }
    limits += [
        Limit(
            "DynamoDB",
            "writes/s on the fullest ByRaceRank shard key",
            overall_shard_writes,
            keys.PARTITION_WRITE_LIMIT,
            f"RANK_SHARDS in shared/keys.py = shards_needed({math.ceil(riders_per_race)}) "
            f"= {needed_shards} (reads then query that many shards)",
        ),
        Limit(
            "DynamoDB",
            "writes/s on a race record key",
            race_writes,
            keys.PARTITION_WRITE_LIMIT,
            "fewer shard x parallelization slots per race, or update the race record less "
            "often than every batch (code change)",
        ),
        Limit(
            "DynamoDB",
            "writes/s on a standing key",
            rider_writes,
            keys.PARTITION_WRITE_LIMIT,
            "none needed (one key per rider)",
        ),
        Limit(
            "DynamoDB",
            "read units/s on each ranking shard key (every page reads every shard)",
            shard_read_units,
            DDB_PARTITION_READ_UNITS,
            "cache the leaderboard (CloudFront or API Gateway cache, 1 s TTL); more shards "
            "do not help",
        ),
        Limit(
            "DynamoDB",
            "read units/s on a race record key",
            race_record_read_units,
            DDB_PARTITION_READ_UNITS,
            "cache the leaderboard and race list",
        ),
        Limit(
            "DynamoDB",
            "write units/s per ranking index (on-demand table quota)",
            index_writes_each,
            DDB_TABLE_REQUEST_UNITS,
            "Service Quotas: DynamoDB on-demand table throughput",
        ),
        Limit(
            "DynamoDB",
            "read units/s on ByRaceRank (on-demand table quota)",
            index_rru,
            DDB_TABLE_REQUEST_UNITS,
            "cache the leaderboard; Service Quotas: DynamoDB on-demand table throughput",
        ),
        Limit(
            "DynamoDB",
            "write units/s on the table (on-demand table quota)",
            table_wru,
            DDB_TABLE_REQUEST_UNITS,
            "Service Quotas: DynamoDB on-demand table throughput",
        ),
    ]

    # -- Firehose and the S3 archive -------------------------------------------------------------
    billed_record = firehose_billed_bytes(payload)
    billed_gb_h = records * hour * billed_record / GIB
    actual_gb_h = records * hour * payload / GIB
    interval_s = cfg.archive.buffering_interval_seconds
    bytes_per_race_interval = records / s.races * interval_s * payload
    objects_per_interval = s.races * max(
        1, math.ceil(bytes_per_race_interval / FIREHOSE_MAX_OBJECT_BYTES)
    )
    objects_h = objects_per_interval * hour / interval_s
    stored_gb_h = actual_gb_h / ARCHIVE_COMPRESSION_RATIO
    cost["firehose"] = (
        _usd("firehose_ingest_gb", billed_gb_h)
        + _usd("firehose_partitioning_gb", actual_gb_h)
        + _usd("firehose_partitioning_objects", objects_h)
        + PRICES["firehose_jq_hour"].usd
    )
    cost["s3_archive_month"] = _usd("s3_standard_gb_month", stored_gb_h)
    firehose = {
        "records_per_s": records,
        "record_bytes": payload,
        "billed_bytes_per_record": billed_record,
        "billed_gb_per_hour": round(billed_gb_h, 3),
        "actual_gb_per_hour": round(actual_gb_h, 3),
        "billed_to_actual": round(billed_record / payload, 2),
        "s3_objects_per_hour": round(objects_h, 1),
        "archived_gb_per_hour": round(stored_gb_h, 3),
    }

    # -- CloudWatch and X-Ray ----------------------------------------------------------------------
    log_gb_h = (
        (invocations * LOG_BYTES_PER_PROCESSOR_INVOCATION + api_rps * LOG_BYTES_PER_API_REQUEST)
        * hour
        / GIB
    )
    traces = xray_traces_per_s(invocations) + xray_traces_per_s(api_rps)
    cost["cloudwatch_logs"] = _usd("cloudwatch_logs_gb", log_gb_h)
    cost["xray"] = _usd("xray_traces", traces * hour)
    observability = {
        "log_gb_per_hour": round(log_gb_h, 3),
        "xray_traces_per_s": round(traces, 2),
    }

    return Capacity(
        scenario={
            "riders": s.riders,
            "hz": s.hz,
            "race_minutes": s.race_minutes,
            "races": s.races,
            "viewers": viewers,
            "poll_seconds": s.poll_seconds,
            "transport": s.transport,
            "stream_mode": s.mode,
        },
        measured=asdict(m),
        sizes=sizes,
        kinesis=kinesis,
        iot=iot,
        esm=esm,
        dynamodb=dynamodb,
        firehose=firehose,
        api=api,
        observability=observability,
        cost_per_hour=cost,
        limits=limits,
    )


# --- text output ------------------------------------------------------------------------------
def _n(x: float) -> str:
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"
    return f"{int(x):,}"


def render(c: Capacity) -> str:
    d = c.as_dict()
    sc, k, esm, db = d["scenario"], d["kinesis"], d["esm"], d["dynamodb"]
    api, fh, ms = d["api"], d["firehose"], d["measured"]
    lines = [
        f"Breakaway capacity: {sc['riders']:,} riders at {sc['hz']:g} Hz, "
        f"{sc['races']} race(s) of {sc['race_minutes']} min, {sc['viewers']:,} viewers "
        f"polling every {sc['poll_seconds']:g} s, transport {sc['transport']}, "
        f"stream {sc['stream_mode']}",
        f"  reading {d['sizes']['reading_bytes']} B; processor "
        f"{_n(ms['readings_per_cpu_second'])} readings/CPU-s "
        f"({ms['readings_per_cpu_second_source']})",
        f"Kinesis   {_n(k['records_per_s_in'])} records/s, "
        f"{_n(k['bytes_per_s_in'] / KIB)} KiB/s in, {_n(k['bytes_per_s_out'] / KIB)} KiB/s "
        f"out; {k['shards']} shards at {k['shard_headroom']:.0%} of the write limits",
    ]
    if d["iot"].get("device_connections") is not None:
        i = d["iot"]
        lines.append(
            f"IoT Core  {_n(i['device_connections'])} connections "
            f"({_n(i['simulator_connections'])} pooled in the simulator), "
            f"{_n(i['publishes_per_s'])} publishes/s; Basic Ingest saves "
            f"${i['messaging_usd_per_hour_saved_by_basic_ingest']:,.2f}/h"
        )
    lines += [
        f"ESM       concurrency {esm['concurrency']} ({k['shards']} shards x "
        f"{esm['parallelization_factor']}), {_n(esm['invocations_per_s'])} invocations/s, "
        f"{_n(esm['records_per_invocation'])} records each, "
        f"{esm['duration_s'] * 1000:.0f} ms, busy {esm['busy_fraction']:.0%}",
        f"DynamoDB  {_n(db['standing_writes_per_s'])} standing writes/s "
        f"({db['writes_per_rider_per_s']:g} per rider key); fullest rank shard "
        f"{_n(db['writes_per_s_fullest_overall_shard'])} writes/s ({db['rank_shards']} "
        f"shards, {db['rank_shards_needed']} needed); race record "
        f"{_n(db['race_record_writes_per_s'])} writes/s; {_n(db['write_units_per_s'])} "
        f"WRU/s, {_n(db['read_units_per_s'])} RRU/s",
        f"Firehose  {_n(fh['records_per_s'])} records/s of {fh['record_bytes']} B billed as "
        f"{fh['billed_bytes_per_record']} B each ({fh['billed_to_actual']}x): "
        f"{_n(fh['billed_gb_per_hour'])} GB/h billed",
        f"API       {_n(api['requests_per_s'])} requests/s; per leaderboard "
        f"{api['queries_per_leaderboard_request']} queries, "
        f"{api['read_units_per_leaderboard_request']:g} RRU; concurrency "
        f"{_n(api['concurrency'])}",
        f"Cost (us-east-1 on-demand list prices as of {PRICE_DATE}): "
        f"${d['cost']['race_hour_usd']:,.2f} per race hour "
        f"(${d['cost']['per_rider_hour_usd']:.4f} per rider-hour), "
        f"${d['cost']['monthly_24x7_usd']:,.0f} a month 24/7",
        "  " + ", ".join(f"{name} ${v:,.2f}" for name, v in d["cost"]["per_hour_usd"].items()),
        "Limits (highest utilization first):",
    ]
    over = [lim for lim in d["limits"] if lim["utilization"] >= 1]
    shown = d["limits"][: len(over) + 3]
    for lim in shown:
        flag = "OVER" if lim["utilization"] >= 1 else "ok  "
        lines.append(
            f"  {flag} {lim['utilization']:>7.0%}  {lim['service']}: {lim['what']} "
            f"({_n(lim['demand'])} of {_n(lim['limit'])}) -> {lim['lift']}"
            if flag == "OVER"
            else f"  {flag} {lim['utilization']:>7.0%}  {lim['service']}: {lim['what']} "
            f"({_n(lim['demand'])} of {_n(lim['limit'])})"
        )
    first = d["first_limit"]
    verb = "hit" if first["utilization"] >= 1 else "nearest (none hit)"
    lines.append(f"First limit {verb}: {first['service']}: {first['what']} -> {first['lift']}")
    return "\n".join(lines)


# --- CLI ------------------------------------------------------------------------------------------
def _number(
    name: str, text: str, kind: type[int] | type[float], minimum: float, strict: bool
) -> Any:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number"
        raise CliError(f"{name} must be {what}, not {text!r}") from None
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        bound = f"more than {minimum:g}" if strict else f"at least {minimum:g}"
        raise CliError(f"{name} must be {bound} (got {text})")
    return value


def run(args: argparse.Namespace) -> int:
    riders = _number("--riders", args.riders, int, 1, False)
    hz = _number("--hz", args.hz, float, 0, True)
    minutes = _number("--race-minutes", args.race_minutes, int, 1, False)
    races = _number("--races", args.races, int, 1, False)
    viewers = None if args.viewers is None else _number("--viewers", args.viewers, int, 0, False)
    config = BreakawayConfig()
    es = config.event_source
    if args.batching_window is not None:
        window = _number("--batching-window", args.batching_window, int, 0, False)
        es = dataclasses.replace(es, max_batching_window_seconds=window)
    if args.parallelization is not None:
        factor = _number("--parallelization", args.parallelization, int, 1, False)
        es = dataclasses.replace(es, parallelization_factor=factor)
    try:
        config = dataclasses.replace(config, event_source=es).validate()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        scenario = Scenario(
            config=config,
            riders=riders,
            hz=hz,
            race_minutes=minutes,
            races=races,
            viewers=viewers,
            transport=args.transport,
            stream_mode=args.stream_mode,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    result = model(scenario, load_measured(Path(args.results)))
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(render(result))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "capacity",
        help="what N concurrent riders need from each service and what it costs",
        description="The capacity and cost model of docs/capacity.md for one scale.",
    )
    p.add_argument("--riders", required=True, help="concurrent riders (at least 1)")
    p.add_argument("--hz", default="1", help="readings per rider per second (default 1)")
    p.add_argument("--race-minutes", default="60", help="race length in minutes (default 60)")
    p.add_argument("--races", default="1", help="concurrent races sharing the riders (default 1)")
    p.add_argument("--viewers", default=None, help="live pages polling (default: one per rider)")
    p.add_argument(
        "--transport", choices=TRANSPORTS, default="iot", help="ingest path (default iot)"
    )
    p.add_argument(
        "--stream-mode",
        choices=STREAM_MODES,
        default=None,
        help="Kinesis capacity mode (default: what infra/config.py deploys, on-demand)",
    )
    p.add_argument(
        "--batching-window",
        default=None,
        help="event source mapping batching window in seconds (default: infra/config.py)",
    )
    p.add_argument(
        "--parallelization",
        default=None,
        help="event source mapping parallelization factor 1-10 (default: infra/config.py)",
    )
    p.add_argument("--results", default=str(RESULTS_FILE), help="benchmarks/results.json to read")
    p.add_argument("--json", action="store_true", help="print the whole model as JSON")
    p.set_defaults(func=run)
