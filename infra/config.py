"""Typed configuration of the deployable application, per environment.

Defaults live here, in one place; ``cdk.json`` holds each environment's overrides under the
context key ``breakaway:environments`` and ``-c env=<name>`` picks one (default ``dev``).

This module imports nothing from aws_cdk, so the local stack can read the same values (the
event source mapping settings, the Firehose buffering) without loading the CDK.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from shared.names import DEFAULT_ENV, valid_env_name
from shared.settings import DEFAULT_LIVE_TTL_SECONDS

CONTEXT_KEY: Final = "breakaway:environments"
ENV_CONTEXT_KEY: Final = "env"

# --- Facts the CDK code needs that no shared module defines ----------------------------------
PYTHON_RUNTIME: Final = "python3.13"
ARCHITECTURE: Final = "arm64"
POWERTOOLS_VERSION: Final = "3.37.0"
"""The Powertools release the functions run on: the one ``uv.lock`` pins, which the tests use
(``tests/infra/test_powertools_pin.py`` fails when the two differ)."""
POWERTOOLS_LAYER_PARAMETER: Final = (
    f"/aws/service/powertools/python/{ARCHITECTURE}/{PYTHON_RUNTIME}/{POWERTOOLS_VERSION}"
)
"""The public Powertools layer ARN of that release, resolved by CloudFormation at deploy time
(never at synth). Not ``latest``: that would move on every stack update to a release nobody
tested, under code that relies on how its batch processor treats a failed record."""
POWERTOOLS_LAYER_REGIONS: Final = (
    "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ap-southeast-4", "ap-southeast-5", "ap-southeast-7", "ca-central-1", "ca-west-1",
    "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1",
    "eu-west-2", "eu-west-3", "il-central-1", "mx-central-1", "sa-east-1", "us-east-1",
    "us-east-2", "us-west-1", "us-west-2",
)  # fmt: skip
"""Where Powertools publishes the layer's SSM parameters (its release workflow's region list);
elsewhere set ``powertools_layer_arn`` (README, "Deploy to an AWS account")."""
SQS_MAX_RETENTION_DAYS: Final = 14
"""The most SQS keeps a message: the dead-letter queues keep theirs this long."""
SCHEDULE_MAX_EVENT_AGE_SECONDS: Final = 24 * 3600
"""The longest EventBridge Scheduler keeps retrying to invoke a schedule's target."""
REPLAY_MARGIN_SECONDS: Final = 24 * 3600
IDEMPOTENCY_KEY_ATTRIBUTE: Final = "id"
IDEMPOTENCY_TTL_ATTRIBUTE: Final = "expiration"
"""Powertools' DynamoDBPersistenceLayer defaults (key_attr, expiry_attr)."""
NOTIFY_TARGET_IOT: Final = "iot"
DEAD_LETTER_SCHEME_SQS: Final = "sqs"
ARCHIVE_PROJECTION_START: Final = "2025-01-01"
"""First day the Glue table's date projection covers."""
LOG_RETENTION_DAYS: Final = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731)
"""The retention periods CloudWatch Logs accepts (up to two years)."""
MAX_PARALLELIZATION_FACTOR: Final = 10
"""Lambda's ceiling on a Kinesis event source mapping's parallelization factor."""


class ConfigError(ValueError):
    """The configuration in cdk.json is wrong; the message names the key."""


@dataclass(frozen=True)
class StreamConfig:
    shard_count: int | None = None
    """``None``: on-demand capacity. A number: provisioned with that many shards (at 1,000
    riders at 1 Hz one shard sits exactly at its 1,000 records/s limit: use two or more)."""
    retention_hours: int = 24


@dataclass(frozen=True)
class EventSourceConfig:
    """The Kinesis event source mapping of the stream processor (docs/decisions.md says why)."""

    batch_size: int = 1000
    max_batching_window_seconds: int = 1
    parallelization_factor: int = 2
    bisect_on_error: bool = True
    retry_attempts: int = 5
    max_record_age_seconds: int = 3600
    report_batch_item_failures: bool = True
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"


@dataclass(frozen=True)
class ClosingConfig:
    """How a failed close is retried: EventBridge Scheduler invokes the race closer
    asynchronously, so Lambda retries a close that fails, then hands it to the on-failure
    destination (the schedules' dead-letter queue). docs/decisions.md: "Races close
    themselves"."""

    retry_attempts: int = 2
    """Lambda's retries of a failed asynchronous invocation (0-2)."""
    max_event_age_seconds: int = 6 * 3600
    """How long Lambda keeps retrying a close (60 s - 6 h)."""


@dataclass(frozen=True)
class FunctionConfig:
    memory_mb: int
    timeout_seconds: int


@dataclass(frozen=True)
class ArchiveConfig:
    buffering_interval_seconds: int = 300
    buffering_size_mib: int = 128
    transition_to_ia_days: int = 30
    """Archive objects move to S3 Glacier Instant Retrieval after this many days."""
    expiration_days: int = 365
    query_results_expiration_days: int = 7
    """Athena's query results (the workgroup's bucket) are deleted after this many days."""


@dataclass(frozen=True)
class ApiConfig:
    stage_name: str = "v1"
    throttling_rate_limit: int = 200
    """Steady requests/s for the stage: the live page polls once a second per viewer."""
    throttling_burst_limit: int = 400
    cors_origin: str = "*"
    """One origin, ``*``, or a comma-separated list (the API handler reads the same format)."""

    @property
    def cors_origins(self) -> list[str]:
        """``cors_origin`` as a list: API Gateway's preflight and the distribution's CORS."""
        return [o.strip() for o in self.cors_origin.split(",") if o.strip()]


WAF_EVALUATION_WINDOWS: Final = (60, 120, 300, 600)
"""The evaluation windows (seconds) AWS WAF accepts for a rate-based rule."""
WAF_MIN_RATE_LIMIT: Final = 10
"""The lowest limit AWS WAF accepts for a rate-based rule."""
PRICE_CLASSES: Final = ("PRICE_CLASS_100", "PRICE_CLASS_200", "PRICE_CLASS_ALL")


@dataclass(frozen=True)
class CdnConfig:
    """The viewers' CloudFront distribution and its per-client limit (docs/decisions.md,
    "Viewers through CloudFront")."""

    waf_enabled: bool = False
    """An AWS WAF web ACL (in a small us-east-1 stack, as CloudFront requires) with a per-IP
    rate-based rule on the distribution. It has a monthly fee per ACL and rule besides its
    per-request price: on in prod, a switch in dev."""
    waf_rate_limit: int = 3000
    """Requests one IP address may make per evaluation window before WAF answers 429: 50/s
    over a minute, i.e. fifty viewers polling once a second behind one address (a venue's
    Wi-Fi), far above one browser and far below a loop hammering the API."""
    waf_evaluation_window_seconds: int = 60
    origin_shield_region: str | None = None
    """``None``: the stack's own region (the API's), which must then be one where CloudFront
    offers Origin Shield; elsewhere name the closest one that does."""
    price_class: str = "PRICE_CLASS_100"
    """Edge locations used (and paid for): North America and Europe by default."""


@dataclass(frozen=True)
class AlarmConfig:
    """Alarm thresholds; each alarm fires at ``>= threshold`` over ``period_seconds``."""

    period_seconds: int = 300
    iterator_age_ms: int = 60_000
    function_errors: int = 1
    function_throttles: int = 1
    dead_letters_visible: int = 1
    """Messages waiting in a dead-letter queue (poison records, or closes that failed)."""
    on_failure_records: int = 1
    iot_rule_errors: int = 1
    firehose_freshness_seconds: int = 900
    dynamodb_throttles: int = 1
    api_5xx: int = 1
    api_p99_latency_ms: int = 1000
    email: str | None = None
    """Optional: an address subscribed to the alarm topic."""


@dataclass(frozen=True)
class BreakawayConfig:
    env_name: str = DEFAULT_ENV
    stream: StreamConfig = field(default_factory=StreamConfig)
    event_source: EventSourceConfig = field(default_factory=EventSourceConfig)
    processor: FunctionConfig = field(
        default_factory=lambda: FunctionConfig(memory_mb=1024, timeout_seconds=60)
    )
    closer: FunctionConfig = field(
        default_factory=lambda: FunctionConfig(memory_mb=1024, timeout_seconds=600)
    )
    closing: ClosingConfig = field(default_factory=ClosingConfig)
    api_function: FunctionConfig = field(
        default_factory=lambda: FunctionConfig(memory_mb=512, timeout_seconds=10)
    )
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    cdn: CdnConfig = field(default_factory=CdnConfig)
    alarms: AlarmConfig = field(default_factory=AlarmConfig)
    basic_ingest: bool = True
    """The IoT policy also lets devices publish through Basic Ingest (``$aws/rules/...``)."""
    live_ttl_seconds: int = DEFAULT_LIVE_TTL_SECONDS
    log_retention_days: int = 14
    failure_retention_days: int = 30
    """How long on-failure batches, IoT rule errors and access logs are kept."""
    retain_data: bool = False
    """Production: stateful resources are retained on stack deletion."""
    deletion_protection: bool = False
    point_in_time_recovery: bool = True
    powertools_layer_arn: str | None = None
    """A Powertools layer ARN to use instead of the public layer's SSM parameter: for a region
    where that parameter does not exist (``POWERTOOLS_LAYER_REGIONS``)."""

    @property
    def idempotency_ttl_seconds(self) -> int:
        """How long an announcement is remembered: longer than any way a close can come back.
        EventBridge Scheduler retries invoking the closer for up to a day, Lambda retries a
        failed close for up to ``closing.max_event_age_seconds``, and a close that ran out of
        both waits in the schedules' dead-letter queue (to be redriven) for as long as SQS
        keeps it; a day more covers the redrive itself."""
        dead_letters = SQS_MAX_RETENTION_DAYS * 24 * 3600
        retries = SCHEDULE_MAX_EVENT_AGE_SECONDS + self.closing.max_event_age_seconds
        return retries + dead_letters + REPLAY_MARGIN_SECONDS

    def validate(self) -> BreakawayConfig:
        """This configuration, or a ConfigError naming the first key out of range."""
        checks = [
            *self._event_source_checks(),
            *self._closing_checks(),
            *self._storage_checks(),
            *self._cdn_checks(),
            (
                valid_env_name(self.env_name),
                "env must be lowercase letters and digits, starting with a letter",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self

    def _event_source_checks(self) -> list[tuple[bool, str]]:
        es = self.event_source
        return [
            (1 <= es.batch_size <= 10_000, "event_source.batch_size must be 1-10000"),
            (
                0 <= es.max_batching_window_seconds <= 300,
                "event_source.max_batching_window_seconds must be 0-300",
            ),
            (
                1 <= es.parallelization_factor <= MAX_PARALLELIZATION_FACTOR,
                f"event_source.parallelization_factor must be 1-{MAX_PARALLELIZATION_FACTOR}",
            ),
            (-1 <= es.retry_attempts <= 10_000, "event_source.retry_attempts must be -1-10000"),
            (
                es.max_record_age_seconds == -1 or 60 <= es.max_record_age_seconds <= 604_800,
                "event_source.max_record_age_seconds must be -1 or 60-604800",
            ),
        ]

    def _closing_checks(self) -> list[tuple[bool, str]]:
        closing = self.closing
        return [
            (0 <= closing.retry_attempts <= 2, "closing.retry_attempts must be 0-2"),
            (
                60 <= closing.max_event_age_seconds <= 21_600,
                "closing.max_event_age_seconds must be 60-21600",
            ),
            (
                self.closer.timeout_seconds <= 900,
                "closer.timeout_seconds must be at most 900 (Lambda's limit)",
            ),
        ]

    def _cdn_checks(self) -> list[tuple[bool, str]]:
        cdn = self.cdn
        return [
            (
                cdn.waf_rate_limit >= WAF_MIN_RATE_LIMIT,
                f"cdn.waf_rate_limit must be >= {WAF_MIN_RATE_LIMIT}",
            ),
            (
                cdn.waf_evaluation_window_seconds in WAF_EVALUATION_WINDOWS,
                f"cdn.waf_evaluation_window_seconds must be one of {WAF_EVALUATION_WINDOWS}",
            ),
            (cdn.price_class in PRICE_CLASSES, f"cdn.price_class must be one of {PRICE_CLASSES}"),
        ]

    def _storage_checks(self) -> list[tuple[bool, str]]:
        """The stream, the archive, and how long items and logs are kept."""
        return [
            (
                self.stream.shard_count is None or self.stream.shard_count >= 1,
                "stream.shard_count must be null (on-demand) or >= 1",
            ),
            (24 <= self.stream.retention_hours <= 8760, "stream.retention_hours must be 24-8760"),
            (
                0 <= self.archive.buffering_interval_seconds <= 900,
                "archive.buffering_interval_seconds must be 0-900 (Firehose's S3 buffering)",
            ),
            (
                1 <= self.archive.buffering_size_mib <= 128,
                "archive.buffering_size_mib must be 1-128 (Firehose's S3 buffering)",
            ),
            (
                self.archive.expiration_days > self.archive.transition_to_ia_days,
                "archive.expiration_days must exceed archive.transition_to_ia_days",
            ),
            (self.live_ttl_seconds >= 60, "live_ttl_seconds must be >= 60"),
            (
                self.log_retention_days in LOG_RETENTION_DAYS,
                f"log_retention_days must be one of {LOG_RETENTION_DAYS}",
            ),
            (
                self.failure_retention_days in LOG_RETENTION_DAYS,
                f"failure_retention_days must be one of {LOG_RETENTION_DAYS}",
            ),
        ]


def _merge(instance: Any, overrides: Mapping[str, Any], path: str) -> Any:
    """A copy of dataclass ``instance`` with ``overrides`` applied, nested, unknown keys refused."""
    fields = {f.name: f for f in dataclasses.fields(instance)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            raise ConfigError(f"unknown configuration key {where!r}")
        current = getattr(instance, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where} must be an object")
            changes[key] = _merge(current, value, where)
        elif current is not None and value is not None and type(value) is not type(current):
            raise ConfigError(f"{where} must be {type(current).__name__}, not {value!r}")
        else:
            changes[key] = value
    return dataclasses.replace(instance, **changes)


def load_config(env_name: str, environments: Mapping[str, Any] | None) -> BreakawayConfig:
    """The configuration of ``env_name``: defaults, then cdk.json's overrides for it."""
    environments = environments or {}
    if env_name not in environments:
        known = ", ".join(sorted(environments)) or "none"
        raise ConfigError(
            f"unknown environment {env_name!r} (cdk.json {CONTEXT_KEY} defines: {known})"
        )
    overrides = environments[env_name] or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{CONTEXT_KEY}.{env_name} must be an object")
    config = _merge(BreakawayConfig(env_name=env_name), overrides, "")
    if not isinstance(config, BreakawayConfig):  # pragma: no cover - _merge keeps the type
        raise ConfigError("configuration did not merge into BreakawayConfig")
    return config.validate()
