"""What the capacity model takes as given: AWS limits and quotas, and its stated assumptions.

The limits are cited (DESIGN.md "Limits that shape the design", and the quota pages
docs/capacity.md lists), not measured. The assumptions are figures nothing in the project
measures; docs/capacity.md's "Measured here vs assumed" table says which is which. Prices are in
:mod:`infra.capacity.prices`, figures measured by the benchmarks in :mod:`infra.capacity.measured`.
"""

from __future__ import annotations

from typing import Final

KIB: Final = 1024
MIB: Final = 1024 * 1024
GIB: Final = 1024 * 1024 * 1024
HOURS_PER_MONTH: Final = 730
"""AWS's convention for monthly prices."""
SECONDS_PER_HOUR: Final = 3600

# --- AWS limits (DESIGN.md "Limits that shape the design", and the quotas cited in capacity.md)
KINESIS_SHARD_RECORDS_IN: Final = 1_000
KINESIS_SHARD_BYTES_IN: Final = 1 * MIB
KINESIS_SHARD_BYTES_OUT: Final = 2 * MIB
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

IOT_ACCOUNT_PUBLISHES_PER_S: Final = 20_000
IOT_RULE_EVALUATIONS_PER_S: Final = 20_000
IOT_CONNECTS_PER_S: Final = 500
IOT_CONNECT_WINDOW_S: Final = 60
"""Assumption: every bike (re)connects within the minute before a race starts."""
IOT_MESSAGE_METER_BYTES: Final = 5 * KIB

LAMBDA_CONCURRENCY_QUOTA: Final = 1_000
LAMBDA_MB_PER_VCPU: Final = 1_769
LAMBDA_MIN_POLL_INTERVAL_S: Final = 1.0
"""Lambda reads each Kinesis shard about once a second when there is no batching window."""

DDB_PARTITION_READ_UNITS: Final = 3_000
DDB_TABLE_REQUEST_UNITS: Final = 40_000
"""On-demand default per table and per index: 40,000 read and 40,000 write request units/s."""
DDB_WRITE_UNIT_BYTES: Final = 1 * KIB
DDB_READ_UNIT_BYTES: Final = 4 * KIB
DDB_EVENTUAL_READ_UNITS: Final = 0.5

DDB_ON_DEMAND_NEW_TABLE_WRITES: Final = 4_000
"""What a new on-demand table sustains at once (writes/s) before it has seen a higher peak."""
DDB_BATCH_GET_KEYS: Final = 100
DDB_BATCH_WRITE_ITEMS: Final = 25
DDB_QUERY_PAGE_BYTES: Final = 1 * MIB

FIREHOSE_BILLING_INCREMENT: Final = 5 * KIB
FIREHOSE_MAX_OBJECT_BYTES: Final = 128 * MIB

APIGW_ACCOUNT_RPS: Final = 10_000
APIGW_INTEGRATION_TIMEOUT_S: Final = 29

CLOUDFRONT_REQUESTS_PER_S: Final = 250_000
"""Requests per second per distribution (CloudFront quotas, default, adjustable)."""
CLOUDFRONT_BYTES_PER_S: Final = 150 * 1_000_000_000 // 8
"""Data transfer rate per distribution: 150 Gbps (CloudFront quotas, default, adjustable)."""
CLOUDFRONT_COMPRESS_MIN_BYTES: Final = 1_000
"""CloudFront compresses responses of 1,000 to 10,000,000 bytes (CloudFront quotas, "File
compression"); a smaller one goes out as the API sent it."""

# --- the live page (functions/leaderboard_api/static/index.html) ------------------------------
RACES_REFRESH_S: Final = 10
RACES_PAGE: Final = 50
"""The page asks for ``races?limit=50`` every 10 s and the leaderboard every second."""

# --- the viewers' distribution (infra/components/cdn.py) ----------------------------------------
BOARD_VIEWS_PER_RACE: Final = 7
"""Assumed: the distinct leaderboard URLs viewers of one race poll, each a cache key: overall and
each of the six classes at the page's default top 10. Other "top N" choices add keys."""
EDGE_CACHES: Final = 10
"""Assumed: CloudFront caches in front of Origin Shield that hold viewers (regional edge caches
of the price class's edge locations); each asks the shield for an object once per its age."""
RESPONSE_HEADER_BYTES: Final = 300
"""Assumed: the HTTP headers of a response as sent to a viewer (HTTP/2, compressed)."""
SAMPLE_RACES_LISTED: Final = RACES_PAGE
"""The race list is sized full: ``RACES_PAGE`` races (a club with a history of races)."""
WAF_RULES: Final = 1
"""The web ACL's rules: the per-client rate-based rule (``infra/components/cdn.py``)."""

# --- assumptions where nothing here measures the figure ---------------------------------------
ASSUMED_READINGS_PER_CPU_SECOND: Final = 20_000
ASSUMED_API_CPU_MS: Final = 3.0
"""Handler CPU per leaderboard request on one core of this machine."""
DDB_WRITE_LATENCY_S: Final = 0.010
DDB_READ_LATENCY_S: Final = 0.005
STORE_WORKERS: Final = 16
"""``shared.dynamodb.DynamoStandingsStore`` writes riders with 16 threads."""
READER_WORKERS: Final = 10
"""Assumed: a live-ranking build reads the standings' BatchGetItems 10 at a time."""
ASSUMED_RANK_CPU_US_PER_RIDER: Final = 20.0
"""Assumed: a build's CPU per rider (decode the standing, sort, rank, encode a row) on one core."""
INVOCATION_OVERHEAD_S: Final = 0.005
ARCHIVE_COMPRESSION_RATIO: Final = 5.0
"""GZIP NDJSON of readings; tests/capacity checks the simulator's readings compress better."""
LOG_BYTES_PER_PROCESSOR_INVOCATION: Final = 2 * KIB
LOG_BYTES_PER_API_REQUEST: Final = 1 * KIB
ASSUMED_SDK_CPU_MS_PER_REQUEST: Final = 0.3
"""Client-side CPU of one small AWS request (botocore builds, signs and parses it) on one
core: what the race closer spends per request besides waiting. Its moto benchmark's CPU
includes moto's own, so it cannot stand in."""
IOT_PUBLISH_LATENCY_S: Final = DDB_WRITE_LATENCY_S
"""An IoT data-plane publish (HTTPS), taken as long as a DynamoDB write."""
XRAY_RESERVOIR_PER_S: Final = 1.0
XRAY_FIXED_RATE: Final = 0.05
