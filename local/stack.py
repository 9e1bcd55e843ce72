"""The local stack: the whole pipeline on one machine, with the project's real code.

What stands in for each AWS service lives in :mod:`local.aws` (one module per service; see
docs/architecture.md, "The local stack"). This module starts them and wires them together:

- child processes: two moto servers (:mod:`local.aws.moto_server`; one for DynamoDB alone, one
  for Kinesis, S3 and SQS), the MQTT broker (:mod:`local.aws.iot_broker`), and, through
  :mod:`local.component`, the IoT rule (:mod:`local.aws.iot_rule`), Firehose
  (:mod:`local.aws.firehose`) and API Gateway (:mod:`local.aws.api_gateway`) invoking the real
  API handler;
- in this process: the Kinesis event source mapping (:mod:`local.aws.kinesis_esm`) invoking
  the real stream processor handler, and EventBridge Scheduler (:mod:`local.aws.scheduler`)
  running each race's one-time schedule (created by the API in the emulator) with the real
  race closer, so that tests can wrap the handlers.

Resources are created from the same definitions as the CDK code: names from ``shared.names``
(LOCAL_*), tables from ``shared/tables.py`` (built from ``shared.keys``). DynamoDB gets an
emulator process of its own because moto's DynamoDB is the slowest part and should not share a
GIL with Kinesis.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from infra.config import BreakawayConfig
from local import procs
from local.aws.firehose import ArchiverConfig, ArchiverProcess
from local.aws.iot_rule import BridgeConfig, BridgeProcess
from local.aws.kinesis_esm import KinesisEventSourceMapping, KinesisMappingConfig
from local.aws.lambda_runtime import (
    ACCOUNT_ID,
    Handler,
    OneEnvironment,
    function_arn,
    new_environment,
)
from local.aws.moto_server import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY, aws_client
from local.aws.scheduler import EmulatedScheduler, SchedulerConfig
from local.component import ComponentProcess
from shared import names
from shared.dynamodb import WriteMode

log = logging.getLogger(__name__)

PROCESSOR_FUNCTION = "breakaway-stream-processor"
PROCESSOR_MODULE = "functions.stream_processor.handler"
CLOSER_MODULE = "functions.race_closer.handler"
DEPLOYED = BreakawayConfig()
"""The deployed defaults the local stack copies (how long announcements are remembered)."""
SCHEDULER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/breakaway-local-race-close-scheduler"
"""The role the API names in each race's schedule: well-formed, never assumed locally."""
API_FUNCTION = "breakaway-leaderboard-api"
PID_FILE = "stack.pid"
ENDPOINTS_FILE = Path(names.LOCAL_ENDPOINTS_FILE).name


@dataclass(frozen=True)
class StackOptions:
    """Ports (0: a free one), sizes and the mapping's settings."""

    host: str = procs.HOST
    aws_port: int = 0
    dynamodb_port: int = 0
    mqtt_port: int = 0
    api_port: int = 0
    state_dir: Path = Path(names.LOCAL_STATE_DIR)
    shards: int = 2
    batch_size: int = 10_000
    """AWS's maximum: each batch then merges everything that arrived while the previous one
    was written, so a slow local DynamoDB costs visibility, never an ever-growing backlog."""
    batching_window_s: float = 0.0
    bisect_on_error: bool = True
    maximum_retry_attempts: int = 10
    maximum_record_age_s: int = 3600
    archive_interval_s: float = 60.0
    archive_size_bytes: int = 64 * 1024 * 1024
    poll_interval_s: float = 0.25
    bridge_qos: int = 1
    standings_writes: WriteMode = "transaction"
    """The emulator's and botocore's cost is per request, not per standing: 100 standings per
    ``TransactWriteItems`` instead of one ``PutItem`` each (docs/decisions.md)."""
    quiet_handlers: bool = True
    """Powertools: metrics off and WARNING logs in the local stack's output."""
    processor_wrapper: Callable[[Handler], Handler] | None = None
    """Wraps the stream processor handler (fault injection in tests)."""
    closer_wrapper: Callable[[Handler], Handler] | None = None
    """Wraps the race closer handler (fault injection in tests)."""


@dataclass(frozen=True)
class Endpoints:
    """What ``.breakaway/endpoints.json`` holds (the simulator and users read it)."""

    aws_endpoint_url: str
    dynamodb_endpoint_url: str
    region: str
    mqtt_host: str
    mqtt_port: int
    api_url: str
    stream_name: str
    archive_bucket: str
    standings_table: str
    on_failure_bucket: str
    dead_letter_queue_url: str
    schedule_group: str
    closer_arn: str
    schedule_dead_letter_queue_url: str
    schedule_dead_letter_queue_arn: str
    pid: int = field(default_factory=os.getpid)


class LocalStack:
    """Start with :meth:`start`, stop with :meth:`stop` (or use it as a context manager)."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.children: list[subprocess.Popen[bytes]] = []
        self.endpoints: Endpoints | None = None
        self.mapping: KinesisEventSourceMapping | None = None
        self.closing: EmulatedScheduler | None = None
        self.archiver: ArchiverProcess | None = None
        self.bridge: BridgeProcess | None = None
        self.gateway: ComponentProcess | None = None
        self._saved_env: dict[str, str | None] = {}

    # --- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ports(self) -> dict[str, int]:
        o = self.options
        wanted = {
            "aws": o.aws_port,
            "dynamodb": o.dynamodb_port,
            "mqtt": o.mqtt_port,
            "api": o.api_port,
        }
        for what, port in wanted.items():
            if port:
                procs.check_port_free(port, f"--{what}-port", o.host)
        return {what: port or procs.free_port(o.host) for what, port in wanted.items()}

    def start(self) -> Endpoints:
        o = self.options
        ports = self._ports()
        logs = o.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        try:
            self._start_children(ports, logs)
            endpoints = self._create_resources(ports)
            self._configure_environment(endpoints)
            self._start_components(endpoints, ports)
        except BaseException:
            self.stop()
            raise
        self.endpoints = endpoints
        self._write_state(endpoints)
        return endpoints

    def _start_children(self, ports: dict[str, int], logs: Path) -> None:
        host = self.options.host
        for name, module, port in (
            ("aws", "local.aws.moto_server", ports["aws"]),
            ("dynamodb", "local.aws.moto_server", ports["dynamodb"]),
            ("mqtt", "local.aws.iot_broker", ports["mqtt"]),
        ):
            proc = procs.start_module(
                module, ["--port", str(port), "--host", host], str(logs / f"{name}.log")
            )
            self.children.append(proc)
        for proc, port in zip(
            self.children, (ports["aws"], ports["dynamodb"], ports["mqtt"]), strict=True
        ):
            procs.wait_for_port(port, host=host, proc=proc)

    def _create_resources(self, ports: dict[str, int]) -> Endpoints:
        from shared.tables import create_tables

        host = self.options.host
        aws_url = f"http://{host}:{ports['aws']}"
        ddb_url = f"http://{host}:{ports['dynamodb']}"
        region = names.LOCAL_REGION
        kinesis = aws_client("kinesis", aws_url)
        kinesis.create_stream(StreamName=names.LOCAL_STREAM, ShardCount=self.options.shards)
        kinesis.get_waiter("stream_exists").wait(
            StreamName=names.LOCAL_STREAM, WaiterConfig={"Delay": 1}
        )
        create_tables(
            aws_client("dynamodb", ddb_url),
            names.LOCAL_STANDINGS_TABLE,
            names.LOCAL_IDEMPOTENCY_TABLE,
        )
        s3 = aws_client("s3", aws_url)
        for bucket in (names.LOCAL_ARCHIVE_BUCKET, names.LOCAL_ON_FAILURE_BUCKET):
            s3.create_bucket(Bucket=bucket)
        sqs = aws_client("sqs", aws_url)
        queue_url = sqs.create_queue(QueueName=names.LOCAL_DEAD_LETTER_QUEUE)["QueueUrl"]
        closes_dlq_url = sqs.create_queue(QueueName=names.LOCAL_SCHEDULE_DEAD_LETTER_QUEUE)[
            "QueueUrl"
        ]
        closes_dlq_arn = sqs.get_queue_attributes(
            QueueUrl=closes_dlq_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        aws_client("scheduler", aws_url).create_schedule_group(Name=names.LOCAL_SCHEDULE_GROUP)
        return Endpoints(
            aws_endpoint_url=aws_url,
            dynamodb_endpoint_url=ddb_url,
            region=region,
            mqtt_host=host,
            mqtt_port=ports["mqtt"],
            api_url=f"http://{host}:{ports['api']}/",
            stream_name=names.LOCAL_STREAM,
            archive_bucket=names.LOCAL_ARCHIVE_BUCKET,
            standings_table=names.LOCAL_STANDINGS_TABLE,
            on_failure_bucket=names.LOCAL_ON_FAILURE_BUCKET,
            dead_letter_queue_url=queue_url,
            schedule_group=names.LOCAL_SCHEDULE_GROUP,
            closer_arn=function_arn(names.LOCAL_CLOSER_FUNCTION, region),
            schedule_dead_letter_queue_url=closes_dlq_url,
            schedule_dead_letter_queue_arn=closes_dlq_arn,
        )

    def _configure_environment(self, ep: Endpoints) -> None:
        """The functions' configuration, as the CDK code sets it, pointed at the emulators."""
        env = {
            "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_KEY,
            "AWS_DEFAULT_REGION": ep.region,
            "AWS_REGION": ep.region,
            names.ENV_AWS_ENDPOINT_URL: ep.aws_endpoint_url,
            "AWS_ENDPOINT_URL_DYNAMODB": ep.dynamodb_endpoint_url,
            names.ENV_STANDINGS_TABLE: ep.standings_table,
            names.ENV_IDEMPOTENCY_TABLE: names.LOCAL_IDEMPOTENCY_TABLE,
            names.ENV_IDEMPOTENCY_TTL_SECONDS: str(DEPLOYED.idempotency_ttl_seconds),
            names.ENV_DEAD_LETTER_TARGET: f"sqs:{ep.dead_letter_queue_url}",
            names.ENV_SCHEDULE_GROUP: ep.schedule_group,
            names.ENV_CLOSER_ARN: ep.closer_arn,
            names.ENV_SCHEDULER_ROLE_ARN: SCHEDULER_ROLE_ARN,
            names.ENV_SCHEDULE_DLQ_ARN: ep.schedule_dead_letter_queue_arn,
            names.ENV_NOTIFY_TARGET: "log",
            names.ENV_STANDINGS_WRITES: self.options.standings_writes,
            names.ENV_CORS_ORIGIN: "*",
            names.ENV_ARCHIVE_BUCKET: names.LOCAL_ARCHIVE_BUCKET,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        if self.options.quiet_handlers:
            env["POWERTOOLS_METRICS_DISABLED"] = "true"
            env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        removed = ("AWS_PROFILE", "AWS_SESSION_TOKEN")
        self._saved_env = {k: os.environ.get(k) for k in (*env, *removed)}
        os.environ.update(env)
        for var in removed:
            os.environ.pop(var, None)

    def _restore_environment(self) -> None:
        """Give the process back its environment and cold handlers: an in-process stack (the
        tests run one) must not leave later code pointed at emulators that have stopped. The
        functions ran in per-environment copies of their modules, which are let go here."""
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}
        from functions.leaderboard_api import handler as api_handler

        api_handler.install(None)
        copies = (f"{PROCESSOR_MODULE}[", f"{CLOSER_MODULE}[")
        for name in [m for m in sys.modules if m.startswith(copies)]:
            del sys.modules[name]

    def _start_components(self, ep: Endpoints, ports: dict[str, int]) -> None:
        o = self.options
        # A process of its own, as API Gateway and the API's function are
        api_args = ["--host", o.host, "--port", str(ports["api"])]
        self.gateway = ComponentProcess("api", "local.aws.api_gateway", api_args, o.state_dir)
        self.gateway.start()
        self.mapping = self._processor_mapping(ep)
        self.mapping.start()
        self.closing = self._scheduler(ep)
        self.closing.start()
        self.archiver = ArchiverProcess(  # a process of its own, as Firehose is
            ArchiverConfig(
                bucket=ep.archive_bucket,
                buffer_interval_s=o.archive_interval_s,
                buffer_size_bytes=o.archive_size_bytes,
            ),
            stream_name=ep.stream_name,
            endpoint_url=ep.aws_endpoint_url,
            region=ep.region,
            state_dir=o.state_dir,
        )
        self.archiver.start()
        self.bridge = BridgeProcess(  # a process of its own, as IoT Core's rules engine is
            BridgeConfig(
                stream_name=ep.stream_name,
                mqtt_host=ep.mqtt_host,
                mqtt_port=ep.mqtt_port,
                subscription_qos=o.bridge_qos,
            ),
            endpoint_url=ep.aws_endpoint_url,
            region=ep.region,
            state_dir=o.state_dir,
        )
        self.bridge.start()

    def _processor_mapping(self, ep: Endpoints) -> KinesisEventSourceMapping:
        """The stream processor's mapping, with an execution environment per shard (shards
        are processed in parallel), as the deployed one is configured."""
        o = self.options

        def environment(shard_id: str) -> Handler:
            fresh = new_environment(PROCESSOR_MODULE, shard_id).handler
            return OneEnvironment(o.processor_wrapper(fresh) if o.processor_wrapper else fresh)

        return KinesisEventSourceMapping(
            kinesis=aws_client("kinesis", ep.aws_endpoint_url),
            stream_name=ep.stream_name,
            environment_factory=environment,
            config=KinesisMappingConfig(
                function_name=PROCESSOR_FUNCTION,
                batch_size=o.batch_size,
                maximum_batching_window_s=o.batching_window_s,
                report_batch_item_failures=True,
                bisect_batch_on_function_error=o.bisect_on_error,
                maximum_retry_attempts=o.maximum_retry_attempts,
                maximum_record_age_s=o.maximum_record_age_s,
                on_failure_destination=f"s3:{ep.on_failure_bucket}",
                poll_interval_s=o.poll_interval_s,
            ),
            region=ep.region,
            s3=aws_client("s3", ep.aws_endpoint_url),
        )

    def _scheduler(self, ep: Endpoints) -> EmulatedScheduler:
        """EventBridge Scheduler on the local schedule group: each race's schedule (created by
        the API) invokes the race closer, in an execution environment of its own."""
        wrapper = self.options.closer_wrapper
        fresh = new_environment(CLOSER_MODULE, "closer").handler
        closer = OneEnvironment(wrapper(fresh) if wrapper else fresh)
        return EmulatedScheduler(
            scheduler=aws_client("scheduler", ep.aws_endpoint_url),
            sqs=aws_client("sqs", ep.aws_endpoint_url),
            targets={ep.closer_arn: closer},
            config=SchedulerConfig(
                group_name=ep.schedule_group,
                region=ep.region,
                poll_interval_s=self.options.poll_interval_s,
            ),
        )

    def _write_state(self, ep: Endpoints) -> None:
        d = self.options.state_dir
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / (ENDPOINTS_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(ep), indent=2) + "\n")
        tmp.replace(d / ENDPOINTS_FILE)
        (d / PID_FILE).write_text(f"{os.getpid()}\n")

    def stop(self) -> None:
        """Stop every component and child process; remove the state files. Idempotent."""
        for component in (
            self.bridge,
            self.gateway,
            self.mapping,
            self.closing,
            self.archiver,
        ):
            if component is not None:
                try:
                    component.stop()
                except Exception:
                    log.exception("stopping %s", type(component).__name__)
        self.bridge = self.gateway = self.mapping = self.closing = self.archiver = None
        if self._saved_env:
            self._restore_environment()
        for proc in reversed(self.children):
            procs.stop_process(proc)
        self.children.clear()
        d = self.options.state_dir
        if self.endpoints is not None:
            for name in (PID_FILE, ENDPOINTS_FILE):
                path = d / name
                try:
                    if name != PID_FILE or path.read_text().strip() == str(os.getpid()):
                        path.unlink()
                except FileNotFoundError:
                    pass
            self.endpoints = None

    # --- observing ------------------------------------------------------------------------
    def wait_idle(self, timeout: float = 60.0, quiet_s: float = 1.0) -> bool:
        """Wait until the bridge has sent everything, every shard is processed to its end and
        no race close is running or due (and all stay so for ``quiet_s``); False if
        ``timeout`` passes first."""
        assert self.mapping is not None
        assert self.bridge is not None
        assert self.closing is not None
        deadline = time.monotonic() + timeout
        idle_since: float | None = None
        while time.monotonic() < deadline:
            if self.bridge.idle and self.mapping.idle and self.closing.idle:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= quiet_s:
                    return True
            else:
                idle_since = None
            time.sleep(0.05)
        return False
