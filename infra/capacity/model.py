"""The capacity and cost model: what a scenario needs from each service, what it costs, and
the limits it is held to. Pure arithmetic, no I/O: the measured figures come in as a
:class:`~infra.capacity.measured.Measured`.

Every figure is for a steady state: N riders sending ``hz`` readings a second each, spread over
``races`` concurrent races, watched by ``viewers`` live pages that poll the leaderboard once a
``poll_seconds`` through the CloudFront distribution. The model works service by service, in
the order data flows (Kinesis, IoT Core, the event source mapping and the processor,
CloudFront and WAF, the API, DynamoDB, Firehose, logs and traces); each step returns its
figures, its hourly costs and its limits as a :class:`Part`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from functions.race_closer.config import WORKERS as CLOSER_WORKERS
from infra.capacity.facts import (
    APIGW_ACCOUNT_RPS,
    APIGW_INTEGRATION_TIMEOUT_S,
    ARCHIVE_COMPRESSION_RATIO,
    ASSUMED_RANK_CPU_US_PER_RIDER,
    ASSUMED_SDK_CPU_MS_PER_REQUEST,
    BOARD_VIEWS_PER_RACE,
    CLOUDFRONT_BYTES_PER_S,
    CLOUDFRONT_REQUESTS_PER_S,
    DDB_BATCH_GET_KEYS,
    DDB_BATCH_WRITE_ITEMS,
    DDB_EVENTUAL_READ_UNITS,
    DDB_ON_DEMAND_NEW_TABLE_WRITES,
    DDB_PARTITION_READ_UNITS,
    DDB_QUERY_PAGE_BYTES,
    DDB_READ_LATENCY_S,
    DDB_READ_UNIT_BYTES,
    DDB_TABLE_REQUEST_UNITS,
    DDB_WRITE_LATENCY_S,
    DDB_WRITE_UNIT_BYTES,
    EDGE_CACHES,
    FIREHOSE_BILLING_INCREMENT,
    FIREHOSE_MAX_OBJECT_BYTES,
    GIB,
    HOURS_PER_MONTH,
    INVOCATION_OVERHEAD_S,
    IOT_ACCOUNT_PUBLISHES_PER_S,
    IOT_CONNECT_WINDOW_S,
    IOT_CONNECTS_PER_S,
    IOT_MESSAGE_METER_BYTES,
    IOT_PUBLISH_LATENCY_S,
    IOT_RULE_EVALUATIONS_PER_S,
    KIB,
    KINESIS_CONSUMERS,
    KINESIS_ON_DEMAND_BILLING_UNIT,
    KINESIS_ON_DEMAND_MAX_RECORDS,
    KINESIS_ON_DEMAND_START_RECORDS,
    KINESIS_PUT_PAYLOAD_UNIT,
    KINESIS_SHARD_BYTES_IN,
    KINESIS_SHARD_BYTES_OUT,
    KINESIS_SHARD_HEADROOM,
    KINESIS_SHARD_QUOTA,
    KINESIS_SHARD_RECORDS_IN,
    LAMBDA_CONCURRENCY_QUOTA,
    LAMBDA_MB_PER_VCPU,
    LAMBDA_MIN_POLL_INTERVAL_S,
    LOG_BYTES_PER_API_REQUEST,
    LOG_BYTES_PER_PROCESSOR_INVOCATION,
    RACES_PAGE,
    RACES_REFRESH_S,
    READER_WORKERS,
    RESPONSE_HEADER_BYTES,
    SECONDS_PER_HOUR,
    STORE_WORKERS,
    WAF_RULES,
    XRAY_FIXED_RATE,
    XRAY_RESERVOIR_PER_S,
)
from infra.capacity.measured import Measured
from infra.capacity.prices import PRICE_DATE, PRICES, REGION, price_table, usd
from infra.capacity.sizes import (
    SAMPLE_DEVICE_ID,
    SAMPLE_RACE_ID,
    SAMPLE_RIDER_ID,
    announcement_bytes,
    best_bytes,
    board_json,
    entry_bytes,
    idempotency_record_bytes,
    live_build_write_units,
    live_chunk_bytes,
    live_chunks,
    live_head_bytes,
    live_index_page_bytes,
    live_index_pages,
    mean_standing_write_units,
    placings_page_bytes,
    race_bytes,
    races_json,
    records_bytes,
    result_bytes,
    sample_reading,
    sent_bytes,
    standing_bytes,
    write_units,
)
from infra.config import MAX_PARALLELIZATION_FACTOR, BreakawayConfig
from shared import keys
from shared.contract import MAX_RACE_SECONDS, NUM_CLASSES
from shared.limits import CONNECTION_HEADROOM, IOT_PUBLISHES_PER_CONNECTION
from shared.names import (
    DEFAULT_ENV,
    basic_ingest_topic,
    result_topic,
    rule_name,
    telemetry_topic,
)
from shared.ranking import BUILD_LEASE_MS, SNAPSHOT_MAX_AGE_MS
from shared.routes import LISTING_MAX_AGE_S, LIVE_MAX_AGE_S

Transport = Literal["iot", "basic-ingest", "kinesis"]
StreamMode = Literal["on-demand", "provisioned"]
TRANSPORTS: Final[tuple[Transport, ...]] = ("iot", "basic-ingest", "kinesis")
STREAM_MODES: Final[tuple[StreamMode, ...]] = ("on-demand", "provisioned")
HOUR: Final = SECONDS_PER_HOUR


# --- the scenario and the result -----------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    riders: int
    hz: float = 1.0
    race_minutes: int = 60
    races: int = 1
    viewers: int | None = None
    """Live pages polling the leaderboard; ``None``: one per rider."""
    poll_seconds: float = 1.0
    transport: Transport | None = None
    """``None``: what ``breakaway simulate --target aws`` publishes on: Basic Ingest where the
    configuration's IoT policy allows it (``basic_ingest``), the plain topic otherwise."""
    stream_mode: StreamMode | None = None
    """``None``: what the configuration deploys (``stream.shard_count`` null = on-demand)."""
    waf: bool | None = None
    """``None``: what the configuration deploys (``cdn.waf_enabled``: off in dev, on in prod)."""
    viewer_function: bool = True
    """The CloudFront Function normalising the query string on every viewer request to a route
    with documented parameters (``infra/components/cdn.py`` ships it)."""
    standings_cache: bool = True
    """The processor's per-environment standings cache
    (``functions.stream_processor.logic.StandingsCache``): a rider's standing is loaded once,
    not once per batch."""
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
            (
                self.transport in (None, *TRANSPORTS),
                f"transport must be one of {TRANSPORTS}",
            ),
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

    @property
    def ingest(self) -> Transport:
        if self.transport is not None:
            return self.transport
        return "basic-ingest" if self.config.basic_ingest else "iot"

    @property
    def race_seconds(self) -> int:
        return self.race_minutes * 60

    @property
    def waf_on(self) -> bool:
        return self.config.cdn.waf_enabled if self.waf is None else self.waf

    @property
    def riders_per_race(self) -> float:
        return self.riders / self.races

    def as_dict(self) -> dict[str, Any]:
        return {
            "riders": self.riders,
            "hz": self.hz,
            "race_minutes": self.race_minutes,
            "races": self.races,
            "viewers": self.viewer_count,
            "poll_seconds": self.poll_seconds,
            "transport": self.ingest,
            "stream_mode": self.mode,
            "waf": self.waf_on,
            "viewer_function": self.viewer_function,
            "standings_cache": self.standings_cache,
        }


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
class Part:
    """One service's share of the model: its figures, its hourly costs, its limits."""

    figures: dict[str, Any]
    cost: dict[str, float] = field(default_factory=dict)
    limits: list[Limit] = field(default_factory=list)


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
    cdn: dict[str, Any]
    api: dict[str, Any]
    closing: dict[str, Any]
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
            "cdn": self.cdn,
            "api": self.api,
            "closing": self.closing,
            "observability": self.observability,
            "cost": {
                "per_hour_usd": {k: round(v, 4) for k, v in self.cost_per_hour.items()},
                "race_hour_usd": round(self.hourly_usd, 2),
                "per_rider_hour_usd": round(self.hourly_usd / riders, 5),
                "monthly_24x7_usd": round(self.monthly_usd, 2),
                "prices": price_table(),
                "price_date": PRICE_DATE,
                "region": REGION,
            },
            "limits": sorted(
                (lim.as_dict() for lim in self.limits), key=lambda d: -float(d["utilization"])
            ),
            "first_limit": self.first_limit.as_dict(),
        }


# --- small rules ---------------------------------------------------------------------------
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
    return max(1, math.ceil(round(publishes_per_s / (per_connection * CONNECTION_HEADROOM), 9)))


def xray_traces_per_s(requests_per_s: float) -> float:
    """The default sampling rule: the first request each second, then 5% of the rest."""
    first = min(requests_per_s, XRAY_RESERVOIR_PER_S)
    return first + XRAY_FIXED_RATE * max(0.0, requests_per_s - first)


# --- derived loads the services share ------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    """Bytes and request units of what flows, for the scenario's race length and transport."""

    reading: int
    kinesis_record: int
    iot_metered: int
    standing_at_end: float
    standing_wru: float
    standing_source: str
    live_head: int
    live_chunk: int
    live_index_page: int
    build_wru: int
    """Write units of one build: its chunks, rider-index pages and head."""
    board_body: int
    board_sent: int
    races_body: int
    races_sent: int

    @property
    def standing_rru_strong(self) -> int:
        return max(1, math.ceil(self.standing_at_end / DDB_READ_UNIT_BYTES))

    def as_dict(self) -> dict[str, Any]:
        return {
            "reading_bytes": self.reading,
            "kinesis_record_bytes": self.kinesis_record,
            "iot_metered_bytes": self.iot_metered,
            "standing_item_bytes_at_end": self.standing_at_end,
            "standing_write_units_mean": round(self.standing_wru, 4),
            "standing_sizes_source": self.standing_source,
            "live_head_bytes": self.live_head,
            "live_chunk_bytes": self.live_chunk,
            "live_index_page_bytes": self.live_index_page,
            "live_build_write_units": self.build_wru,
            "board_response_bytes": self.board_body,
            "board_response_bytes_sent": self.board_sent,
            "races_response_bytes": self.races_body,
            "races_response_bytes_sent": self.races_sent,
        }


def scenario_sizes(s: Scenario, m: Measured) -> Sizes:
    reading = sample_reading()
    payload = len(reading.to_json())
    topic = (
        basic_ingest_topic(rule_name(DEFAULT_ENV), SAMPLE_DEVICE_ID)
        if s.ingest == "basic-ingest"
        else telemetry_topic(SAMPLE_DEVICE_ID)
    )
    measured = m.standing_sizes_for(s.race_seconds)
    if measured is not None:
        standing, wru = measured
        source = "measured (results.json processor.standing_sizes)"
    else:
        standing = float(standing_bytes(s.race_seconds - 1))
        wru = mean_standing_write_units(s.race_seconds)
        source = "the codec (shared.items), not measured for this race length"
    riders = math.ceil(s.riders_per_race)
    board, races = board_json(riders, s.race_seconds, DEFAULT_BOARD_ROWS), races_json()
    return Sizes(
        reading=payload,
        kinesis_record=payload + len(reading.rider_id.encode()),
        iot_metered=len(topic.encode()) + payload,
        standing_at_end=standing,
        standing_wru=wru,
        standing_source=source,
        live_head=live_head_bytes(riders, s.race_seconds),
        live_chunk=live_chunk_bytes(riders, s.race_seconds),
        live_index_page=live_index_page_bytes(riders, s.race_seconds),
        build_wru=live_build_write_units(riders, s.race_seconds),
        board_body=len(board),
        board_sent=sent_bytes(board),
        races_body=len(races),
        races_sent=sent_bytes(races),
    )


@dataclass(frozen=True)
class Stream:
    """What enters the Kinesis stream each second, and the shards that carry it."""

    records: float
    bytes_in: float
    shards: int


def stream_load(s: Scenario, sizes: Sizes) -> Stream:
    records = s.riders * s.hz
    bytes_in = records * sizes.kinesis_record
    return Stream(records, bytes_in, kinesis_shards(records, bytes_in))


@dataclass(frozen=True)
class Batching:
    """The event source mapping's batches: one slot per shard x parallelization factor."""

    slots: int
    batches_per_slot: float
    """Invocations per second of each slot."""
    records_per_invocation: float
    riders_per_invocation: float
    rider_writes: float
    """Standing writes per rider per second: at most one per batch, one per new second."""
    duration: float

    @property
    def invocations(self) -> float:
        return self.slots * self.batches_per_slot

    @property
    def busy(self) -> float:
        return self.duration * self.batches_per_slot


def batching(s: Scenario, stream: Stream, m: Measured) -> Batching:
    es = s.config.event_source
    slots = stream.shards * es.parallelization_factor
    interval = max(float(es.max_batching_window_seconds), LAMBDA_MIN_POLL_INTERVAL_S)
    per_slot = stream.records / slots
    rate = max(1 / interval, per_slot / es.batch_size)
    records_per_invocation = per_slot / rate
    riders_per_invocation = (s.riders / slots) * min(1.0, s.hz / rate)
    vcpu = s.config.processor.memory_mb / LAMBDA_MB_PER_VCPU
    cpu_s = records_per_invocation / (m.readings_per_cpu_second * vcpu)
    io_s = math.ceil(riders_per_invocation / STORE_WORKERS) * DDB_WRITE_LATENCY_S
    races_per_invocation = min(float(s.races), max(1.0, riders_per_invocation))
    io_s += math.ceil(races_per_invocation / STORE_WORKERS) * DDB_WRITE_LATENCY_S  # race records
    return Batching(
        slots=slots,
        batches_per_slot=rate,
        records_per_invocation=records_per_invocation,
        riders_per_invocation=riders_per_invocation,
        rider_writes=min(s.hz, rate, float(keys.MAX_RIDER_WRITES_PER_SECOND)),
        duration=cpu_s + io_s + INVOCATION_OVERHEAD_S,
    )


DEFAULT_BOARD_ROWS: Final = 10
"""The live page's default "top N" (``functions/leaderboard_api/static/index.html``)."""
LEASE_WRITES_PER_BUILD: Final = 1
"""A build first takes the race's head (a conditional write of its lease, charged on the
head's size like any update), then writes the build and names it in the head
(``shared.ranking``)."""


@dataclass(frozen=True)
class Viewing:
    """The live pages' requests: what viewers ask CloudFront, what reaches Origin Shield and
    the API, and the live-ranking builds those origin requests trigger."""

    viewers: int
    board_rps: float
    races_rps: float
    board_keys: float
    """Distinct leaderboard cache keys being polled, over every race."""
    origin_board_rps: float
    origin_races_rps: float
    shield_rps: float
    builds_per_s: float
    board_rru: float
    """Read units of one board origin request: the head, one chunk, the race record."""
    rider_rru: float
    """Read units of one rider lookup: the head, one rider-index page, one chunk."""
    races_rru: float
    build_rru: float
    build_wru: float
    duration: float
    """One origin request's time in the API function (not a build)."""
    build_duration: float

    @property
    def viewer_rps(self) -> float:
        return self.board_rps + self.races_rps

    @property
    def origin_rps(self) -> float:
        return self.origin_board_rps + self.origin_races_rps

    @property
    def lambda_busy_s(self) -> float:
        """API function seconds per second: origin requests and the builds they trigger."""
        return self.origin_rps * self.duration + self.builds_per_s * self.build_duration

    @property
    def concurrency(self) -> float:
        return self.lambda_busy_s


def _origin_rate(viewer_rps: float, keys_polled: float, max_age_s: float) -> float:
    """Origin requests/s for objects asked ``viewer_rps`` times a second over ``keys_polled``
    cache keys: Origin Shield fetches each key once per its age, never more often than asked."""
    return min(viewer_rps, keys_polled / max_age_s)


def build_duration(riders: int, build_items: int, s: Scenario) -> float:
    """One build: the standings' BatchGetItems (``READER_WORKERS`` at a time), ranking them,
    then the build's items in BatchWriteItems (as many at a time) and the head twice."""
    gets = math.ceil(riders / DDB_BATCH_GET_KEYS)
    writes = math.ceil(build_items / DDB_BATCH_WRITE_ITEMS)
    vcpu = min(1.0, s.config.api_function.memory_mb / LAMBDA_MB_PER_VCPU)
    return (
        math.ceil(gets / READER_WORKERS) * DDB_READ_LATENCY_S
        + riders * ASSUMED_RANK_CPU_US_PER_RIDER / 1e6 / vcpu
        + (math.ceil(writes / READER_WORKERS) + 1 + LEASE_WRITES_PER_BUILD) * DDB_WRITE_LATENCY_S
    )


def viewing(s: Scenario, sizes: Sizes, m: Measured) -> Viewing:
    viewers = s.viewer_count
    board_rps = viewers / s.poll_seconds
    races_rps = viewers / RACES_REFRESH_S
    per_race = min(float(BOARD_VIEWS_PER_RACE), viewers / s.races)
    board_keys = s.races * per_race
    origin_board = _origin_rate(board_rps, board_keys, LIVE_MAX_AGE_S)
    origin_races = _origin_rate(races_rps, 1.0 if viewers else 0.0, LISTING_MAX_AGE_S)
    shield = _origin_rate(board_rps, EDGE_CACHES * board_keys, LIVE_MAX_AGE_S) + (
        _origin_rate(races_rps, EDGE_CACHES if viewers else 0.0, LISTING_MAX_AGE_S)
    )
    riders = math.ceil(s.riders_per_race)
    build_items = live_chunks(riders) + live_index_pages(riders) + 1
    building = build_duration(riders, build_items, s)
    # A snapshot is stale SNAPSHOT_MAX_AGE_MS after its standings were read; the next origin
    # request then builds, unless the previous build is still running.
    builds_per_race = min(origin_board / s.races, 1 / max(SNAPSHOT_MAX_AGE_MS / 1000, building))
    chunk_rru = math.ceil(sizes.live_chunk / DDB_READ_UNIT_BYTES)  # strongly consistent
    head_rru = DDB_EVENTUAL_READ_UNITS * math.ceil(sizes.live_head / DDB_READ_UNIT_BYTES)
    index_rru = math.ceil(sizes.live_index_page / DDB_READ_UNIT_BYTES)
    api_vcpu = s.config.api_function.memory_mb / LAMBDA_MB_PER_VCPU
    return Viewing(
        viewers=viewers,
        board_rps=board_rps,
        races_rps=races_rps,
        board_keys=board_keys,
        origin_board_rps=origin_board,
        origin_races_rps=origin_races,
        shield_rps=shield,
        builds_per_s=s.races * builds_per_race,
        board_rru=head_rru + chunk_rru + DDB_EVENTUAL_READ_UNITS,
        rider_rru=head_rru + index_rru + chunk_rru,
        races_rru=DDB_EVENTUAL_READ_UNITS * (1 + RACES_PAGE),
        build_rru=riders
        * DDB_EVENTUAL_READ_UNITS
        * math.ceil(sizes.standing_at_end / DDB_READ_UNIT_BYTES),
        build_wru=sizes.build_wru + LEASE_WRITES_PER_BUILD * write_units(sizes.live_head),
        duration=m.api_cpu_ms / 1000 / min(1.0, api_vcpu)
        + 3 * DDB_READ_LATENCY_S  # the race record, the head, then a chunk
        + INVOCATION_OVERHEAD_S,
        build_duration=building,
    )


# --- Kinesis -------------------------------------------------------------------------------
def _kinesis_cost(s: Scenario, stream: Stream, record_bytes: int) -> float:
    records = stream.records
    if s.mode == "provisioned":
        return stream.shards * PRICES["kinesis_shard_hour"].usd + usd(
            "kinesis_put_payload_units",
            records * HOUR * math.ceil(record_bytes / KINESIS_PUT_PAYLOAD_UNIT),
        )
    billed_in = records * HOUR * math.ceil(record_bytes / KINESIS_ON_DEMAND_BILLING_UNIT) * KIB
    return (
        PRICES["kinesis_on_demand_stream_hour"].usd
        + usd("kinesis_on_demand_in_gb", billed_in / GIB)
        + usd("kinesis_on_demand_out_gb", KINESIS_CONSUMERS * billed_in / GIB)
    )


def _deployed_shards(s: Scenario, stream: Stream) -> list[Limit]:
    """When the configuration fixes the shard count, the records it takes (at 100%)."""
    deployed = s.config.stream.shard_count
    if deployed is None:
        return []
    return [
        Limit(
            "Kinesis",
            "records/s against the deployed shards (cdk.json stream.shard_count)",
            stream.records,
            deployed * KINESIS_SHARD_RECORDS_IN,
            f"cdk.json stream.shard_count={stream.shards} (50% headroom)",
        )
    ]


def _kinesis_limits(s: Scenario, stream: Stream) -> list[Limit]:
    if s.mode == "provisioned":
        return [
            *_deployed_shards(s, stream),
            Limit(
                "Kinesis",
                "provisioned shards per account (us-east-1 default)",
                stream.shards,
                KINESIS_SHARD_QUOTA,
                'Service Quotas: Kinesis "Shards per Region"; or on-demand mode',
            ),
            Limit(
                "Kinesis",
                "reads out per shard (bytes, 2 consumers)",
                stream.bytes_in * KINESIS_CONSUMERS / stream.shards,
                KINESIS_SHARD_BYTES_OUT,
                "more shards (cdk.json stream.shard_count), or enhanced fan-out",
            ),
        ]
    return [
        Limit(
            "Kinesis",
            "new on-demand stream's write capacity (records/s) at race start",
            stream.records,
            KINESIS_ON_DEMAND_START_RECORDS,
            f"pre-provision: cdk.json stream.shard_count={stream.shards} for the race "
            "(or on-demand warm throughput, which needs a minimum throughput billing "
            "commitment); on-demand doubles only every ~15 min",
        ),
        Limit(
            "Kinesis",
            "on-demand stream maximum write (records/s)",
            stream.records,
            KINESIS_ON_DEMAND_MAX_RECORDS,
            'Service Quotas: Kinesis "On-demand stream throughput" (per stream)',
        ),
    ]


def kinesis_part(s: Scenario, stream: Stream, sizes: Sizes) -> Part:
    idle_monthly = HOURS_PER_MONTH * (
        stream.shards * PRICES["kinesis_shard_hour"].usd
        if s.mode == "provisioned"
        else PRICES["kinesis_on_demand_stream_hour"].usd
    )
    figures = {
        "mode": s.mode,
        "records_per_s_in": stream.records,
        "bytes_per_s_in": round(stream.bytes_in),
        "records_per_s_out": stream.records * KINESIS_CONSUMERS,
        "bytes_per_s_out": round(stream.bytes_in * KINESIS_CONSUMERS),
        "shards": stream.shards,
        "shard_headroom": KINESIS_SHARD_HEADROOM,
        "idle_monthly_usd": round(idle_monthly, 2),
    }
    cost = {"kinesis": _kinesis_cost(s, stream, sizes.kinesis_record)}
    return Part(figures, cost, _kinesis_limits(s, stream))


# --- IoT Core ------------------------------------------------------------------------------
def _iot_limits(s: Scenario, records: float) -> list[Limit]:
    limits = [
        Limit(
            "IoT Core",
            "publishes per connection per second",
            s.hz,
            IOT_PUBLISHES_PER_CONNECTION,
            "fewer readings per device (the excess is dropped)",
        )
    ]
    if s.ingest == "iot":
        limits.append(
            Limit(
                "IoT Core",
                "inbound publishes per second per account",
                records,
                IOT_ACCOUNT_PUBLISHES_PER_S,
                'Service Quotas: IoT Core "Inbound publish requests per second per account"',
            )
        )
    limits.append(
        Limit(
            "IoT Core",
            "rule evaluations per second per account",
            records,
            IOT_RULE_EVALUATIONS_PER_S,
            'Service Quotas: IoT Core "Rule evaluations per second per account"; or '
            "PutRecords straight to Kinesis (--transport kinesis)",
        )
    )
    limits.append(
        Limit(
            "IoT Core",
            f"connect requests per second (all bikes within {IOT_CONNECT_WINDOW_S} s)",
            s.riders / IOT_CONNECT_WINDOW_S,
            IOT_CONNECTS_PER_S,
            'Service Quotas: IoT Core "Connect requests per second per account"; stagger connects',
        )
    )
    return limits


def iot_part(s: Scenario, stream: Stream, sizes: Sizes) -> Part:
    """IoT Core's share; nothing but the transport's name when readings go straight to Kinesis."""
    figures: dict[str, Any] = {"transport": s.ingest}
    if s.ingest not in ("iot", "basic-ingest"):
        return Part(figures)
    records = stream.records
    messages = records * math.ceil(sizes.iot_metered / IOT_MESSAGE_METER_BYTES)
    messaging = usd("iot_messaging", messages * HOUR)
    figures.update(
        device_connections=s.riders,
        publishes_per_connection=s.hz,
        simulator_connections=iot_connections(records),
        publishes_per_s=records,
        metered_messages_per_s=messages,
        messaging_usd_per_hour_saved_by_basic_ingest=round(messaging, 4),
    )
    cost = (
        usd("iot_connectivity", s.riders * 60)
        + (messaging if s.ingest == "iot" else 0.0)
        + usd("iot_rules_triggered", records * HOUR)
        + usd("iot_actions", records * HOUR)
    )
    return Part(figures, {"iot": cost}, _iot_limits(s, records))


# --- the event source mapping and the stream processor -------------------------------------
def esm_part(s: Scenario, b: Batching) -> Part:
    es = s.config.event_source
    memory_mb = s.config.processor.memory_mb
    processor_gb_s = b.invocations * b.duration * memory_mb / 1024
    cost = usd("lambda_requests", b.invocations * HOUR) + usd(
        "lambda_gb_second_arm", processor_gb_s * HOUR
    )
    figures = {
        "batch_size": es.batch_size,
        "batching_window_s": es.max_batching_window_seconds,
        "parallelization_factor": es.parallelization_factor,
        "concurrency": b.slots,
        "invocations_per_s": round(b.invocations, 3),
        "records_per_invocation": round(b.records_per_invocation, 1),
        "riders_per_invocation": round(b.riders_per_invocation, 1),
        "duration_s": round(b.duration, 4),
        "busy_fraction": round(b.busy, 3),
        "memory_mb": memory_mb,
    }
    busy = Limit(
        "Lambda",
        "processor busy fraction per shard x parallelization slot",
        b.busy,
        1.0,
        f"cdk.json event_source.parallelization_factor (up to {MAX_PARALLELIZATION_FACTOR}), "
        "processor.memory_mb, or more shards",
    )
    return Part(figures, {"lambda_processor": cost}, [busy])


# --- CloudFront and WAF (the viewers' distribution) ---------------------------------------
def _cdn_limits(v: Viewing, out_bytes_per_s: float) -> list[Limit]:
    return [
        Limit(
            "CloudFront",
            "requests per second per distribution",
            v.viewer_rps,
            CLOUDFRONT_REQUESTS_PER_S,
            'Service Quotas: CloudFront "Requests per second per distribution"',
        ),
        Limit(
            "CloudFront",
            "data transfer rate per distribution (bytes/s)",
            out_bytes_per_s,
            CLOUDFRONT_BYTES_PER_S,
            'Service Quotas: CloudFront "Data transfer rate per distribution"',
        ),
    ]


def cdn_part(s: Scenario, v: Viewing, sizes: Sizes) -> Part:
    """Every viewer request is a CloudFront request (the page fetches with ``no-store``); the
    race list and the board go through the query-normalising function; WAF, when on, inspects
    every viewer request."""
    board_out = v.board_rps * (sizes.board_sent + RESPONSE_HEADER_BYTES)
    races_out = v.races_rps * (sizes.races_sent + RESPONSE_HEADER_BYTES)
    out_gb_h = (board_out + races_out) * HOUR / GIB
    requests_h = v.viewer_rps * HOUR
    function_h = requests_h if s.viewer_function else 0.0
    cost = {
        "cloudfront": usd("cloudfront_https_requests", requests_h)
        + usd("cloudfront_data_out_gb", out_gb_h)
        + usd("cloudfront_origin_shield_requests", v.shield_rps * HOUR)
        + usd("cloudfront_function_invocations", function_h),
    }
    if s.waf_on:
        monthly = PRICES["waf_web_acl_month"].usd + WAF_RULES * PRICES["waf_rule_month"].usd
        cost["waf"] = monthly / HOURS_PER_MONTH + usd("waf_requests", requests_h)
    figures = {
        "viewer_requests_per_s": round(v.viewer_rps, 2),
        "leaderboard_requests_per_s": round(v.board_rps, 2),
        "race_list_requests_per_s": round(v.races_rps, 2),
        "leaderboard_cache_keys": v.board_keys,
        "origin_shield_requests_per_s": round(v.shield_rps, 2),
        "origin_requests_per_s": round(v.origin_rps, 2),
        "hit_ratio": round(1 - v.origin_rps / v.viewer_rps, 4) if v.viewer_rps else None,
        "function_invocations_per_s": round(function_h / HOUR, 2),
        "data_out_gb_per_hour": round(out_gb_h, 3),
        "waf": s.waf_on,
    }
    return Part(figures, cost, _cdn_limits(v, board_out + races_out))


# --- the API (origin requests from CloudFront, and the live-ranking builds) ---------------
def _api_limits(s: Scenario, v: Viewing, b: Batching) -> list[Limit]:
    return [
        Limit(
            "API Gateway",
            "stage throttle (requests/s)",
            v.origin_rps,
            s.config.api.throttling_rate_limit,
            "cdk.json api.throttling_rate_limit",
        ),
        Limit(
            "API Gateway",
            "requests per second per account",
            v.origin_rps,
            APIGW_ACCOUNT_RPS,
            'Service Quotas: API Gateway "Throttle rate"',
        ),
        Limit(
            "Lambda",
            "concurrent executions per account (processor + API)",
            b.slots + v.concurrency,
            LAMBDA_CONCURRENCY_QUOTA,
            'Service Quotas: Lambda "Concurrent executions"',
        ),
        Limit(
            "Lambda",
            "one live-ranking build (s), against its lease on the race's head",
            v.build_duration,
            BUILD_LEASE_MS / 1000,
            "BUILD_LEASE_MS in shared/ranking.py, or more API memory (cdk.json api_function)",
        ),
        Limit(
            "Lambda",
            "one live-ranking build (s), against the API function's timeout",
            v.build_duration,
            min(s.config.api_function.timeout_seconds, APIGW_INTEGRATION_TIMEOUT_S),
            "cdk.json api_function (memory_mb, timeout_seconds; API Gateway waits 29 s)",
        ),
    ]


def api_part(s: Scenario, v: Viewing, b: Batching) -> Part:
    api_gb_s = v.lambda_busy_s * s.config.api_function.memory_mb / 1024
    cost = {
        "api_gateway": usd("apigw_rest_requests", v.origin_rps * HOUR),
        "lambda_api": usd("lambda_requests", v.origin_rps * HOUR)
        + usd("lambda_gb_second_arm", api_gb_s * HOUR),
    }
    figures = {
        "viewers": v.viewers,
        "requests_per_s": round(v.origin_rps, 2),
        "leaderboard_requests_per_s": round(v.origin_board_rps, 2),
        "race_list_requests_per_s": round(v.origin_races_rps, 2),
        "read_units_per_leaderboard_request": v.board_rru,
        "read_units_per_rider_lookup": v.rider_rru,
        "live_builds_per_s": round(v.builds_per_s, 3),
        "live_build_read_units": v.build_rru,
        "live_build_write_units": v.build_wru,
        "live_build_duration_s": round(v.build_duration, 4),
        "duration_s": round(v.duration, 4),
        "concurrency": round(v.concurrency, 2),
    }
    return Part(figures, cost, _api_limits(s, v, b))


# --- DynamoDB ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableLoad:
    """Request units on the table, and on its hottest keys."""

    standing_writes: float
    race_writes: float
    """Writes per second on one race record: one per batch that holds one of its riders."""
    standing_wru: float
    race_wru: float
    live_wru: float
    processor_rru: float
    live_build_rru: float
    origin_rru: float
    head_read_units: float
    """Read units per second on one race's head key (origin requests and builds)."""
    head_writes: float
    race_record_read_units: float

    @property
    def wru(self) -> float:
        return self.standing_wru + self.race_wru + self.live_wru

    @property
    def rru(self) -> float:
        return self.processor_rru + self.live_build_rru + self.origin_rru


def processor_loads(s: Scenario, b: Batching) -> float:
    """Standings the processor loads a second: with its cache, each rider once a race (a cold
    environment); without, every rider in every batch."""
    if s.standings_cache:
        return s.riders / s.race_seconds
    return s.riders * min(s.hz, b.batches_per_slot)


def table_load(s: Scenario, sizes: Sizes, b: Batching, v: Viewing) -> TableLoad:
    per_race = s.riders_per_race
    standing_writes = s.riders * b.rider_writes
    # A race record is written once per batch that holds one of its riders: by every slot when
    # the race has more riders than there are slots.
    race_writes = min(float(b.slots), per_race) * b.batches_per_slot
    head_rru = DDB_EVENTUAL_READ_UNITS * math.ceil(sizes.live_head / DDB_READ_UNIT_BYTES)
    builds_per_race = v.builds_per_s / s.races
    return TableLoad(
        standing_writes=standing_writes,
        race_writes=race_writes,
        standing_wru=standing_writes * sizes.standing_wru,
        race_wru=race_writes * s.races,
        live_wru=v.builds_per_s * v.build_wru,
        processor_rru=processor_loads(s, b) * sizes.standing_rru_strong,
        live_build_rru=v.builds_per_s * v.build_rru,
        origin_rru=v.origin_board_rps * v.board_rru + v.origin_races_rps * v.races_rru,
        head_read_units=(v.origin_board_rps / s.races + builds_per_race) * head_rru,
        head_writes=builds_per_race * (1 + LEASE_WRITES_PER_BUILD),
        race_record_read_units=(v.origin_board_rps / s.races + v.origin_races_rps)
        * DDB_EVENTUAL_READ_UNITS,
    )


def _key_limits(t: TableLoad, b: Batching) -> list[Limit]:
    """Per-key (partition) limits: the race record, a standing, and a race's live head."""
    return [
        Limit(
            "DynamoDB",
            "writes/s on a race record key",
            t.race_writes,
            keys.PARTITION_WRITE_LIMIT,
            "fewer shard x parallelization slots per race, or update the race record less "
            "often than every batch (code change)",
        ),
        Limit(
            "DynamoDB",
            "writes/s on a standing key",
            b.rider_writes,
            keys.PARTITION_WRITE_LIMIT,
            "none needed (one key per rider)",
        ),
        Limit(
            "DynamoDB",
            "read units/s on a race's live head key",
            t.head_read_units,
            DDB_PARTITION_READ_UNITS,
            "a longer live max-age (shared routes)",
        ),
        Limit(
            "DynamoDB",
            "writes/s on a race's live head key",
            t.head_writes,
            keys.PARTITION_WRITE_LIMIT,
            "none needed (at most one build a second)",
        ),
        Limit(
            "DynamoDB",
            "read units/s on a race record key",
            t.race_record_read_units,
            DDB_PARTITION_READ_UNITS,
            "a longer live max-age (shared routes)",
        ),
    ]


def _table_limits(t: TableLoad) -> list[Limit]:
    """The on-demand throughput quotas of the table."""
    quota = 'Service Quotas: DynamoDB "Table-level write throughput limit" (on-demand)'
    return [
        Limit(
            "DynamoDB",
            "write units/s on the table (on-demand table quota)",
            t.wru,
            DDB_TABLE_REQUEST_UNITS,
            quota,
        ),
        Limit(
            "DynamoDB",
            "read units/s on the table (on-demand table quota)",
            t.rru,
            DDB_TABLE_REQUEST_UNITS,
            quota.replace("write", "read"),
        ),
    ]


def dynamodb_part(s: Scenario, t: TableLoad, b: Batching) -> Part:
    figures = {
        "standing_writes_per_s": round(t.standing_writes, 1),
        "writes_per_rider_per_s": b.rider_writes,
        "writes_per_reading": round(b.rider_writes / s.hz, 4),
        "race_record_writes_per_s": round(t.race_writes, 2),
        "write_units_per_s": round(t.wru, 1),
        "write_units_per_s_standings": round(t.standing_wru, 1),
        "write_units_per_s_race_records": round(t.race_wru, 1),
        "write_units_per_s_live_builds": round(t.live_wru, 1),
        "read_units_per_s": round(t.rru, 1),
        "read_units_per_s_processor": round(t.processor_rru, 2),
        "read_units_per_s_live_builds": round(t.live_build_rru, 1),
        "read_units_per_s_origin_requests": round(t.origin_rru, 1),
        "read_units_per_s_live_head": round(t.head_read_units, 2),
        "read_units_per_s_race_record": round(t.race_record_read_units, 2),
    }
    cost = usd("dynamodb_wru", t.wru * HOUR) + usd("dynamodb_rru", t.rru * HOUR)
    return Part(figures, {"dynamodb": cost}, _key_limits(t, b) + _table_limits(t))


# --- Firehose and the S3 archive -----------------------------------------------------------
def firehose_part(s: Scenario, stream: Stream, sizes: Sizes) -> Part:
    """Firehose delivers the stream to one day partition (its own arrival timestamp in the
    prefix: no dynamic partitioning, ``infra/components/archive.py``), so it bills ingestion
    only; an object per buffer, or per 128 MiB of it."""
    records, payload = stream.records, sizes.reading
    billed_record = firehose_billed_bytes(payload)
    billed_gb_h = records * HOUR * billed_record / GIB
    actual_gb_h = records * HOUR * payload / GIB
    interval_s = s.config.archive.buffering_interval_seconds
    bytes_per_interval = records * interval_s * payload
    objects_per_interval = max(1, math.ceil(bytes_per_interval / FIREHOSE_MAX_OBJECT_BYTES))
    objects_h = objects_per_interval * HOUR / interval_s
    stored_gb_h = actual_gb_h / ARCHIVE_COMPRESSION_RATIO
    cost = {
        "firehose": usd("firehose_ingest_gb", billed_gb_h),
        "s3_archive_month": usd("s3_standard_gb_month", stored_gb_h),
    }
    figures = {
        "records_per_s": records,
        "record_bytes": payload,
        "billed_bytes_per_record": billed_record,
        "billed_gb_per_hour": round(billed_gb_h, 3),
        "actual_gb_per_hour": round(actual_gb_h, 3),
        "billed_to_actual": round(billed_record / payload, 2),
        "s3_objects_per_hour": round(objects_h, 1),
        "archived_gb_per_hour": round(stored_gb_h, 3),
    }
    return Part(figures, cost)


# --- closing races (EventBridge Scheduler -> the race closer) ------------------------------
ANNOUNCE_REQUESTS: Final = {"PutItem": 1, "Publish": 1, "UpdateItem": 1}
"""Per rider announced: Powertools saves the idempotency record in progress (PutItem), the
placing is published (IoT data plane), the record is saved completed (UpdateItem)."""
CLAIM_REQUESTS: Final = {"PutItem": 1}
"""Per ranked rider: the personal best claimed (one conditional put, taken or not)."""
RECORDS_REQUESTS: Final = {"GetItem": 1, "PutItem": 1}
"""Per class with ranked riders: its records read (strongly consistent) and saved on condition
of their version. Once each when no other close of the class saves in between (each that does
costs one more of both); a close that changes none of the class's rows saves nothing, but a
class's first close, the one the model sizes, always changes them."""


def class_split(riders: int) -> tuple[int, ...]:
    """Riders spread evenly over the classes (the first classes take the remainder)."""
    return tuple(riders // NUM_CLASSES + (c < riders % NUM_CLASSES) for c in range(NUM_CLASSES))


def placings_pages(class_sizes: tuple[int, ...]) -> int:
    """Pages stored: the overall list and each class's, at least one page each."""
    per = keys.PLACINGS_PER_ITEM
    return max(1, math.ceil(sum(class_sizes) / per)) + sum(
        max(1, math.ceil(n / per)) for n in class_sizes
    )


def close_requests(
    class_sizes: tuple[int, ...], ranked: tuple[int, ...] | None = None
) -> dict[str, int]:
    """The requests one close sends, by operation (DynamoDB's, and the IoT publish).
    ``class_sizes``: the riders entered in each class; ``ranked``: those of them ranked, whose
    results are weighed (history, personal bests, records); all of them unless given."""
    riders = sum(class_sizes)
    ranked = class_sizes if ranked is None else ranked
    weighed, classes = sum(ranked), sum(1 for n in ranked if n)
    entry_pages = max(1, math.ceil(riders * entry_bytes() / DDB_QUERY_PAGE_BYTES))
    return {
        "GetItem": 1 + classes * RECORDS_REQUESTS["GetItem"],  # the race; each class's records
        "Query": entry_pages,  # the entries
        "BatchGetItem": math.ceil(riders / DDB_BATCH_GET_KEYS),  # the standings
        "BatchWriteItem": math.ceil(placings_pages(class_sizes) / DDB_BATCH_WRITE_ITEMS)
        + math.ceil(weighed / DDB_BATCH_WRITE_ITEMS),  # the placings; the riders' results
        "UpdateItem": 2 + riders * ANNOUNCE_REQUESTS["UpdateItem"],  # closing, closed; records
        "PutItem": riders * ANNOUNCE_REQUESTS["PutItem"]
        + weighed * CLAIM_REQUESTS["PutItem"]
        + classes * RECORDS_REQUESTS["PutItem"],  # idempotency records; bests; class records
        "Publish": riders * ANNOUNCE_REQUESTS["Publish"],
    }


@dataclass(frozen=True)
class Close:
    """One race's close: its requests, request units, and time in one invocation."""

    riders: int
    pages: int
    requests: dict[str, int]
    read_units: float
    write_units: float
    io_s: float
    cpu_s: float

    @property
    def duration(self) -> float:
        """The waits overlap the CPU (the closer's workers wait while another computes)."""
        return max(self.io_s, self.cpu_s) + INVOCATION_OVERHEAD_S


def _weigh_units(riders: int, classes: int) -> tuple[int, int]:
    """Read and write units of weighing: each class's records read (strongly consistent) and
    saved, each ranked rider's best claimed (a failed condition costs the same) and result
    put."""
    reads = classes * math.ceil(records_bytes() / DDB_READ_UNIT_BYTES)
    writes = (
        classes * math.ceil(records_bytes() / DDB_WRITE_UNIT_BYTES)
        + riders * math.ceil(best_bytes() / DDB_WRITE_UNIT_BYTES)
        + riders * math.ceil(result_bytes() / DDB_WRITE_UNIT_BYTES)
    )
    return reads, writes


def close_of(class_sizes: tuple[int, ...], race_seconds: int, config: BreakawayConfig) -> Close:
    riders = sum(class_sizes)
    classes = sum(1 for n in class_sizes if n)
    requests = close_requests(class_sizes)
    pages = placings_pages(class_sizes)
    weigh_reads, weigh_writes = _weigh_units(riders, classes)
    read_units = (
        math.ceil(race_bytes() / DDB_READ_UNIT_BYTES)
        + math.ceil(riders * entry_bytes() / DDB_READ_UNIT_BYTES)
        + riders * math.ceil(standing_bytes(race_seconds - 1) / DDB_READ_UNIT_BYTES)
        + weigh_reads
    )  # all strongly consistent
    write_units = (
        2 * math.ceil(race_bytes() / DDB_WRITE_UNIT_BYTES)
        + pages * math.ceil(placings_page_bytes() / DDB_WRITE_UNIT_BYTES)
        + 2 * riders * math.ceil(idempotency_record_bytes() / DDB_WRITE_UNIT_BYTES)
        + weigh_writes
    )
    io_s = (
        (requests["GetItem"] + requests["Query"]) * DDB_READ_LATENCY_S
        + math.ceil(requests["BatchGetItem"] / CLOSER_WORKERS) * DDB_READ_LATENCY_S
        + math.ceil(riders / CLOSER_WORKERS) * DDB_WRITE_LATENCY_S  # the bests, claimed at once
        + classes * DDB_WRITE_LATENCY_S  # each class's records saved, one after another
        + (2 + requests["BatchWriteItem"]) * DDB_WRITE_LATENCY_S  # results, placings, state
        + math.ceil(riders / CLOSER_WORKERS) * (2 * DDB_WRITE_LATENCY_S + IOT_PUBLISH_LATENCY_S)
    )
    vcpu = config.closer.memory_mb / LAMBDA_MB_PER_VCPU
    cpu_s = sum(requests.values()) * ASSUMED_SDK_CPU_MS_PER_REQUEST / 1000 / vcpu
    return Close(riders, pages, requests, read_units, write_units, io_s, cpu_s)


def close_cost(c: Close, memory_mb: int) -> float:
    """One close: the schedule's invocation, the closer, DynamoDB's units, the publishes."""
    topic = result_topic(SAMPLE_RACE_ID, SAMPLE_RIDER_ID)
    metered = math.ceil((len(topic.encode()) + announcement_bytes()) / IOT_MESSAGE_METER_BYTES)
    return (
        usd("scheduler_invocations", 1)
        + usd("lambda_requests", 1)
        + usd("lambda_gb_second_arm", c.duration * memory_mb / 1024)
        + usd("dynamodb_rru", c.read_units)
        + usd("dynamodb_wru", c.write_units)
        + usd("iot_messaging", c.riders * metered)
    )


def _closing_limits(s: Scenario, c: Close) -> list[Limit]:
    """One close must fit one invocation; every race closing at once must fit the account."""
    return [
        Limit(
            "Lambda",
            "race closer duration for one race (s), against its timeout",
            c.duration,
            s.config.closer.timeout_seconds,
            "cdk.json closer.timeout_seconds (Lambda allows 900) or closer.memory_mb",
        ),
        Limit(
            "DynamoDB",
            "idempotency writes/s with every race closing at once (a new on-demand table)",
            s.races * 2 * c.riders / c.duration,
            DDB_ON_DEMAND_NEW_TABLE_WRITES,
            "stagger the races' closes, or warm the table's on-demand throughput",
        ),
        Limit(
            "IoT Core",
            "result publishes/s with every race closing at once",
            s.races * c.riders / c.duration,
            IOT_ACCOUNT_PUBLISHES_PER_S,
            'Service Quotas: IoT Core "Inbound publish requests per second per account"; '
            "stagger the closes",
        ),
    ]


def closing_part(s: Scenario) -> Part:
    """Each race closes once, when its schedule fires: ``races`` closes every race length."""
    c = close_of(class_split(math.ceil(s.riders_per_race)), s.race_seconds, s.config)
    per_close = close_cost(c, s.config.closer.memory_mb)
    closes_per_hour = s.races * HOUR / s.race_seconds
    figures = {
        "riders_per_race": c.riders,
        "closes_per_hour": round(closes_per_hour, 3),
        "schedule_invocations_per_close": 1,
        "requests_per_close": c.requests,
        "requests_total_per_close": sum(c.requests.values()),
        "placings_pages": c.pages,
        "read_units_per_close": c.read_units,
        "write_units_per_close": c.write_units,
        "iot_publishes_per_close": c.requests["Publish"],
        "duration_s": round(c.duration, 2),
        "duration_io_s": round(c.io_s, 2),
        "duration_cpu_s": round(c.cpu_s, 2),
        "timeout_s": s.config.closer.timeout_seconds,
        "memory_mb": s.config.closer.memory_mb,
        "cost_per_close_usd": round(per_close, 5),
    }
    return Part(figures, {"closing": per_close * closes_per_hour}, _closing_limits(s, c))


# --- CloudWatch and X-Ray ------------------------------------------------------------------
def observability_part(b: Batching, v: Viewing) -> Part:
    log_bytes_per_s = (
        b.invocations * LOG_BYTES_PER_PROCESSOR_INVOCATION
        + v.origin_rps * LOG_BYTES_PER_API_REQUEST
    )
    log_gb_h = log_bytes_per_s * HOUR / GIB
    traces = xray_traces_per_s(b.invocations) + xray_traces_per_s(v.origin_rps)
    cost = {
        "cloudwatch_logs": usd("cloudwatch_logs_gb", log_gb_h),
        "xray": usd("xray_traces", traces * HOUR),
    }
    figures = {"log_gb_per_hour": round(log_gb_h, 3), "xray_traces_per_s": round(traces, 2)}
    return Part(figures, cost)


# --- the whole model -----------------------------------------------------------------------
def model(s: Scenario, measured: Measured) -> Capacity:
    """Every service's figures, costs and limits for scenario ``s``."""
    sizes = scenario_sizes(s, measured)
    stream = stream_load(s, sizes)
    b = batching(s, stream, measured)
    v = viewing(s, sizes, measured)
    # In this order: the costs are listed, and equally used limits ranked, as they are added.
    parts = {
        "kinesis": kinesis_part(s, stream, sizes),
        "iot": iot_part(s, stream, sizes),
        "esm": esm_part(s, b),
        "cdn": cdn_part(s, v, sizes),
        "api": api_part(s, v, b),
        "closing": closing_part(s),
        "dynamodb": dynamodb_part(s, table_load(s, sizes, b, v), b),
        "firehose": firehose_part(s, stream, sizes),
        "observability": observability_part(b, v),
    }
    return Capacity(
        scenario=s.as_dict(),
        measured=asdict(measured),
        sizes=sizes.as_dict(),
        kinesis=parts["kinesis"].figures,
        iot=parts["iot"].figures,
        esm=parts["esm"].figures,
        dynamodb=parts["dynamodb"].figures,
        firehose=parts["firehose"].figures,
        cdn=parts["cdn"].figures,
        api=parts["api"].figures,
        closing=parts["closing"].figures,
        observability=parts["observability"].figures,
        cost_per_hour={k: c for p in parts.values() for k, c in p.cost.items()},
        limits=[limit for p in parts.values() for limit in p.limits],
    )
