"""Resource names, topics, environment variables and the archive layout: defined once.

The CDK code, the handlers, the simulator and the local stack all read these. In AWS the
physical names of stateful resources are chosen by CloudFormation and handed to functions
through the environment variables named here; the local stack uses the LOCAL_* names.

Several environments (``dev``, ``prod``) may share one account and region, so every name that
must be unique there is a function of the environment's name (``rule_name(env)``, ...): the CDK
app and the simulator call the same function, and so agree on what a deployed resource is called.
"""

from __future__ import annotations

import re
from typing import Final

APP: Final = "Breakaway"

# --- Environments ------------------------------------------------------------------------------
DEFAULT_ENV: Final = "dev"
"""What ``-c env=`` (``make deploy ENV=``) and the simulator's ``--env`` default to."""
ENV_NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9]*")
"""An environment's name goes into IoT rule names (only ``[a-zA-Z0-9_]``), Glue database names
(lower case, no hyphen) and stack names, so it is lowercase letters and digits."""
LOCAL_ENV: Final = "local"
"""The local stack's own environment name (its IoT rule bridge answers to its own rule)."""


def valid_env_name(env: str) -> bool:
    return ENV_NAME_PATTERN.fullmatch(env) is not None


# --- MQTT / IoT Core -------------------------------------------------------------------------
TOPIC_PREFIX: Final = "breakaway/races"
TELEMETRY_TOPIC: Final = TOPIC_PREFIX + "/{race_id}/riders/{rider_id}/telemetry"
TELEMETRY_TOPIC_FILTER: Final = TOPIC_PREFIX + "/+/riders/+/telemetry"
RESULT_TOPIC: Final = TOPIC_PREFIX + "/{race_id}/riders/{rider_id}/result"
RULE_SQL: Final = f"SELECT * FROM '{TELEMETRY_TOPIC_FILTER}'"  # noqa: S608 (constant, IoT SQL)
RULE_SQL_VERSION: Final = "2016-03-23"
RULE_PARTITION_KEY: Final = "${topic(5)}"
"""The Kinesis partition key of the rule: topic level 5 (1-based) is the rider id, so a rider's
readings stay in order on one shard. Never ``${timestamp()}``."""


def rule_name(env: str) -> str:
    """The environment's IoT topic rule: rule names are unique in an account and region, and
    allow only ``[a-zA-Z0-9_]`` (an environment name is lowercase letters and digits)."""
    return f"breakaway_{env}_telemetry_to_kinesis"


LOCAL_RULE_NAME: Final = rule_name(LOCAL_ENV)
"""The rule the local stack's bridge plays (its Basic Ingest topics name it)."""


def basic_ingest_topic_prefix(rule: str) -> str:
    """Basic Ingest: publishing to this prefix + the telemetry topic reaches ``rule`` without
    the message broker."""
    return f"$aws/rules/{rule}/"


def telemetry_topic(race_id: str, rider_id: str) -> str:
    return TELEMETRY_TOPIC.format(race_id=race_id, rider_id=rider_id)


def result_topic(race_id: str, rider_id: str) -> str:
    return RESULT_TOPIC.format(race_id=race_id, rider_id=rider_id)


def basic_ingest_topic(rule: str, race_id: str, rider_id: str) -> str:
    return basic_ingest_topic_prefix(rule) + telemetry_topic(race_id, rider_id)


# --- Environment variables the functions read -------------------------------------------------
ENV_STANDINGS_TABLE: Final = "STANDINGS_TABLE"
ENV_IDEMPOTENCY_TABLE: Final = "IDEMPOTENCY_TABLE"
ENV_DEAD_LETTER_TARGET: Final = "DEAD_LETTER_TARGET"
"""``sqs:<queue url>`` or ``s3:<bucket>[/<prefix>]``."""
ENV_NOTIFY_TARGET: Final = "NOTIFY_TARGET"
"""``iot`` (publish on RESULT_TOPIC through the IoT data plane), ``log`` or ``none``."""
ENV_IOT_DATA_ENDPOINT: Final = "IOT_DATA_ENDPOINT"
"""Optional, with NOTIFY_TARGET=iot: the account's ``iot:Data-ATS`` endpoint host. When unset
the race finisher looks it up once at cold start (``iot:DescribeEndpoint``)."""
ENV_FINISH_QUEUE_URL: Final = "FINISH_QUEUE_URL"
"""The stream processor sends finishing riders there; the race finisher reads it."""
ENV_LIVE_TTL_SECONDS: Final = "LIVE_TTL_SECONDS"
ENV_IDEMPOTENCY_TTL_SECONDS: Final = "IDEMPOTENCY_TTL_SECONDS"
ENV_STANDINGS_WRITES: Final = "STANDINGS_WRITES"
"""``item`` (one conditional PutItem per rider; the default, cheapest in DynamoDB units) or
``transaction`` (conditional puts 100 to a TransactWriteItems; fewest requests)."""
ENV_CORS_ORIGIN: Final = "CORS_ORIGIN"
ENV_AWS_ENDPOINT_URL: Final = "AWS_ENDPOINT_URL"
"""Honoured by boto3 itself; the local stack points it at the emulator."""

POWERTOOLS_SERVICE_PROCESSOR: Final = "stream-processor"
POWERTOOLS_SERVICE_FINISHER: Final = "race-finisher"
POWERTOOLS_SERVICE_API: Final = "leaderboard-api"
METRICS_NAMESPACE: Final = "Breakaway"


def env_metrics_namespace(env: str) -> str:
    """The namespace of the environment's own custom metrics (the IoT rule's error count), so
    that an alarm in one environment never counts another's."""
    return f"{METRICS_NAMESPACE}/{env}"


# --- Local stack names (in AWS CloudFormation names these) ------------------------------------
LOCAL_REGION: Final = "us-east-1"
LOCAL_STREAM: Final = "breakaway-telemetry"
LOCAL_STANDINGS_TABLE: Final = "breakaway-standings"
LOCAL_IDEMPOTENCY_TABLE: Final = "breakaway-idempotency"
LOCAL_ARCHIVE_BUCKET: Final = "breakaway-archive"
LOCAL_DEAD_LETTER_QUEUE: Final = "breakaway-dead-letters"
LOCAL_ON_FAILURE_BUCKET: Final = "breakaway-on-failure"
LOCAL_FINISH_QUEUE: Final = "breakaway-finishes"
LOCAL_FINISH_DEAD_LETTER_QUEUE: Final = "breakaway-finishes-dead-letters"
LOCAL_STATE_DIR: Final = ".breakaway"
LOCAL_ENDPOINTS_FILE: Final = ".breakaway/endpoints.json"

# --- Archive layout (Firehose dynamic partitioning; the local archiver writes the same) --------
ARCHIVE_PREFIX: Final = "telemetry/raceId={race_id}/date={date}/"
"""``date`` is YYYY-MM-DD (UTC) of the arrival time."""
ARCHIVE_ERROR_PREFIX: Final = "errors/{error_type}/date={date}/"
ARCHIVE_FIREHOSE_PREFIX: Final = (
    "telemetry/raceId=!{partitionKeyFromQuery:raceId}/date=!{timestamp:yyyy-MM-dd}/"
)
ARCHIVE_FIREHOSE_ERROR_PREFIX: Final = (
    "errors/!{firehose:error-output-type}/date=!{timestamp:yyyy-MM-dd}/"
)
ARCHIVE_PARTITION_QUERY: Final = "{raceId: .raceId}"
"""The jq query Firehose's dynamic partitioning runs on each record."""


def archive_prefix(race_id: str, date: str) -> str:
    return ARCHIVE_PREFIX.format(race_id=race_id, date=date)


# --- Names chosen per environment (the others CloudFormation generates) ----------------------
def api_name(env: str) -> str:
    """The REST API's name: the ``ApiName`` dimension of API Gateway's metrics, which the
    alarms filter on, so each environment's API has its own."""
    return f"breakaway-{env}-leaderboard"


def glue_database_name(env: str) -> str:
    """The archive's Glue database: lower case and no hyphen, so Athena needs no quotes."""
    return f"breakaway_{env}"


GLUE_TABLE: Final = "telemetry"
"""The archive's table, in the environment's database."""


# --- CloudFormation stacks and outputs (the CLI finds deployed resources by these keys) --------
STACK_PREFIX: Final = "Breakaway"
STACK_PARTS: Final = ("Data", "App")
"""The stacks of one environment, in deploy order."""


def stack_name(env: str, part: str) -> str:
    """``Breakaway-<Env>-<Part>``: ``stack_name("dev", "App") == "Breakaway-Dev-App"``."""
    return f"{STACK_PREFIX}-{env[:1].upper()}{env[1:]}-{part}"


OUTPUT_API_URL: Final = "ApiUrl"
OUTPUT_STREAM_NAME: Final = "StreamName"
OUTPUT_ARCHIVE_BUCKET: Final = "ArchiveBucketName"
OUTPUT_IOT_POLICY: Final = "IotPolicyName"
OUTPUT_GLUE_DATABASE: Final = "GlueDatabaseName"
