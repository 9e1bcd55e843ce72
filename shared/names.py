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

from shared.contract import Telemetry

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
DEVICE_TOPIC_PREFIX: Final = "breakaway/devices"
TELEMETRY_TOPIC: Final = DEVICE_TOPIC_PREFIX + "/{device_id}/telemetry"
"""Contract v2: a device (an IoT thing) publishes every rider it carries on its own topic; the
device policy allows no other, and the rule takes ``deviceId`` from the topic."""
TELEMETRY_TOPIC_FILTER: Final = DEVICE_TOPIC_PREFIX + "/+/telemetry"
DEVICE_ID_TOPIC_LEVEL: Final = 3
"""``topic(3)`` of ``breakaway/devices/{deviceId}/telemetry`` (IoT SQL counts from 1)."""
RESULT_TOPIC: Final = "breakaway/races/{race_id}/riders/{rider_id}/result"
"""Where the closer announces each rider's final placing, once."""
DEVICE_ID_FIELD: Final = "deviceId"
RULE_FIELDS: Final = tuple(
    f.alias or name for name, f in Telemetry.model_fields.items() if f.alias != DEVICE_ID_FIELD
)
"""What the rule copies from a device's payload: every field of the contract but ``deviceId``."""
RULE_SQL: Final = (
    f"SELECT {', '.join(RULE_FIELDS)}, "  # noqa: S608 (constants, IoT SQL)
    f"topic({DEVICE_ID_TOPIC_LEVEL}) AS {DEVICE_ID_FIELD} FROM '{TELEMETRY_TOPIC_FILTER}'"
)
"""The contract's fields, named one by one, and ``deviceId`` from the topic: the payload's own
``deviceId`` is never selected, so the record's is the topic's whatever the device wrote. (AWS
documents ``SELECT *, expr AS key`` as adding a key to the payload, not what happens when the
payload has that key already: docs/decisions.md.) A field the payload lacks is left out of the
record (IoT SQL's Undefined), and one the contract does not know is dropped."""
RULE_SQL_VERSION: Final = "2016-03-23"
RULE_PARTITION_KEY: Final = "${riderId}"
"""The Kinesis partition key of the rule: the payload's rider id, so a rider's readings stay in
order on one shard whichever device carries it. Never ``${timestamp()}``. A substitution template
reads the incoming payload (not the SELECT's output); a payload without ``riderId`` renders an
empty key, which Kinesis refuses: the rule's error action keeps the message."""


def rule_name(env: str) -> str:
    """The environment's IoT topic rule: rule names are unique in an account and region, and
    allow only ``[a-zA-Z0-9_]`` (an environment name is lowercase letters and digits)."""
    return f"breakaway_{env}_telemetry_to_kinesis"


LOCAL_RULE_NAME: Final = rule_name(LOCAL_ENV)
"""The rule the local stack's bridge plays (its Basic Ingest topics name it)."""


BASIC_INGEST_ROOT: Final = "$aws/rules/"
"""Basic Ingest topics are ``$aws/rules/<rule>/<topic>``; the rule's ``topic(n)`` counts the levels
of ``<topic>`` only (the prefix "isn't available to the topic(Decimal) function")."""


def basic_ingest_topic_prefix(rule: str) -> str:
    """Basic Ingest: publishing to this prefix + the telemetry topic reaches ``rule`` without
    the message broker."""
    return f"{BASIC_INGEST_ROOT}{rule}/"


def telemetry_topic(device_id: str) -> str:
    return TELEMETRY_TOPIC.format(device_id=device_id)


def result_topic(race_id: str, rider_id: str) -> str:
    return RESULT_TOPIC.format(race_id=race_id, rider_id=rider_id)


def basic_ingest_topic(rule: str, device_id: str) -> str:
    return basic_ingest_topic_prefix(rule) + telemetry_topic(device_id)


# --- Closing races (EventBridge Scheduler) ---------------------------------------------------
def schedule_group_name(env: str) -> str:
    """The environment's schedule group: one one-time schedule per race, named by its id."""
    return f"breakaway-{env}-race-closes"


def close_schedule_name(race_id: str) -> str:
    """A race id is 1-64 of ``[A-Za-z0-9_-]``: a valid schedule name as it is."""
    return race_id


def closer_function_name(env: str) -> str:
    """The environment's race closer. Named, not left to CloudFormation: every pending race's
    schedule targets it by ARN, so the function must keep its ARN when the app stack is
    replaced (the schedules live in the data stack's schedule group)."""
    return f"breakaway-{env}-race-closer"


# --- Environment variables the functions read -------------------------------------------------
ENV_STANDINGS_TABLE: Final = "STANDINGS_TABLE"
ENV_IDEMPOTENCY_TABLE: Final = "IDEMPOTENCY_TABLE"
ENV_DEAD_LETTER_TARGET: Final = "DEAD_LETTER_TARGET"
"""``sqs:<queue url>`` or ``s3:<bucket>[/<prefix>]``."""
ENV_NOTIFY_TARGET: Final = "NOTIFY_TARGET"
"""``iot`` (publish on RESULT_TOPIC through the IoT data plane), ``log`` or ``none``."""
ENV_IOT_DATA_ENDPOINT: Final = "IOT_DATA_ENDPOINT"
"""Optional, with NOTIFY_TARGET=iot: the account's ``iot:Data-ATS`` endpoint host. When unset
the race closer looks it up once at cold start (``iot:DescribeEndpoint``)."""
ENV_FUTURE_SLACK_S: Final = "FUTURE_SLACK_S"
"""How many seconds a reading's second may run ahead of the race clock (default 5)."""
ENV_SCHEDULE_GROUP: Final = "SCHEDULE_GROUP"
ENV_CLOSER_ARN: Final = "CLOSER_FUNCTION_ARN"
ENV_SCHEDULER_ROLE_ARN: Final = "SCHEDULER_ROLE_ARN"
"""The role EventBridge Scheduler assumes to invoke the closer."""
ENV_SCHEDULE_DLQ_ARN: Final = "SCHEDULE_DEAD_LETTER_ARN"
ENV_LIVE_TTL_SECONDS: Final = "LIVE_TTL_SECONDS"
ENV_IDEMPOTENCY_TTL_SECONDS: Final = "IDEMPOTENCY_TTL_SECONDS"
ENV_STANDINGS_WRITES: Final = "STANDINGS_WRITES"
"""``item`` (one conditional PutItem per rider; the default, cheapest in DynamoDB units) or
``transaction`` (conditional puts 100 to a TransactWriteItems; fewest requests)."""
ENV_CORS_ORIGIN: Final = "CORS_ORIGIN"
ENV_AWS_ENDPOINT_URL: Final = "AWS_ENDPOINT_URL"
"""Honoured by boto3 itself; the local stack points it at the emulator."""

POWERTOOLS_SERVICE_PROCESSOR: Final = "stream-processor"
POWERTOOLS_SERVICE_CLOSER: Final = "race-closer"
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
LOCAL_SCHEDULE_GROUP: Final = schedule_group_name(LOCAL_ENV)
LOCAL_CLOSER_FUNCTION: Final = "breakaway-race-closer"
LOCAL_SCHEDULE_DEAD_LETTER_QUEUE: Final = "breakaway-race-closes-dead-letters"
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
OUTPUT_VIEWER_URL: Final = "ViewerUrl"
"""The CloudFront distribution's URL: the live page and the public reads, cached."""
OUTPUT_WEB_ACL_ARN: Final = "WebAclArn"
"""The edge stack's (us-east-1) web ACL, read by the app stack in its own region."""
