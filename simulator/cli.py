"""`breakaway simulate`, `breakaway provision`, `breakaway deprovision`."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

from pydantic import Field

from shared.cli import (
    FRACTION,
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    CliError,
    arg_type,
    env_argument,
    id_argument,
)
from shared.contract import CLASS_IDS, MAX_ID_LENGTH, MAX_RACE_SECONDS, Name
from shared.limits import CONNECTION_HEADROOM, IOT_PUBLISHES_PER_CONNECTION
from shared.names import (
    DEFAULT_ENV,
    LOCAL_ENDPOINTS_FILE,
    LOCAL_RULE_NAME,
    LOCAL_STATE_DIR,
    OUTPUT_IOT_POLICY,
    OUTPUT_STREAM_NAME,
    rule_name,
)
from shared.races import DEFAULT_GRACE_S, MAX_GRACE_S, NewRace
from simulator.faults import Cheater, Cheats
from simulator.fleet import PRODUCER_ID, Fleet, entries, local_device_ids
from simulator.model import RaceConfig
from simulator.organiser import ApiError, ApiUnreachableError, Organiser
from simulator.runner import RunOptions, simulate
from simulator.targets import TargetError
from simulator.transports.base import Transport, TransportError

T = TypeVar("T")
DEFAULT_DURATION_S: Final = 60
GRACE_S = arg_type(Annotated[int, Field(ge=0, le=MAX_GRACE_S)])
_race_name = arg_type(Name)
CHEAT_OPTIONS: Final = {
    "future": "readings of a second beyond the race clock and its slack (sent early)",
    "past-duration": "readings of seconds at and past the race's duration",
    "wrong-device": "riders' readings published by a device their entry does not name",
    "spoof-device": "readings whose payload names another device, on the rider's own topic "
    "(MQTT; they still count: the topic says whose)",
    "unknown-race": "readings for a race that does not exist",
    "unentered": "readings of riders nobody entered",
    "after-final": "readings of seconds after a rider's final one (riders who stop early)",
}
"""The cheating options: each sends that many readings (``simulator.faults.Cheats``)."""

CREDENTIALS_DIR = f"{LOCAL_STATE_DIR}/iot/<env>"
"""Where ``provision`` writes and ``simulate``/``deprovision`` read an environment's things."""
MQTT_TLS_PORT = 8883


def _add_env_argument(parser: Any, what: str) -> None:
    parser.add_argument(
        "--env",
        type=env_argument,
        help=f"the deployed environment {what} (as `make deploy ENV=`; default {DEFAULT_ENV})",
    )


def _env(args: argparse.Namespace) -> str:
    return str(args.env or DEFAULT_ENV)


def _credentials_dir(args: argparse.Namespace, given: Path | None) -> Path:
    return given or Path(CREDENTIALS_DIR.replace("<env>", _env(args)))


def register(subparsers: Any) -> None:
    _register_simulate(subparsers)
    _register_provision(subparsers)
    _register_deprovision(subparsers)


def _register_simulate(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="ride a simulated race: send readings over Kinesis or MQTT, write the ground truth",
        description="Simulate riders sending one reading per second; write each rider's exact "
        "score (the ground truth) to a JSON file.",
    )
    _add_race_arguments(p.add_argument_group("race"))
    _add_schedule_arguments(p.add_argument_group("the race's schedule and entries (the API)"))
    where = p.add_argument_group("where to send")
    _add_target_arguments(where)
    _add_mqtt_arguments(where)
    _add_fault_arguments(p.add_argument_group("fault injection"))
    _add_cheat_arguments(
        p.add_argument_group("cheating: readings that must not count (kept out of the truth)")
    )
    p.set_defaults(func=run_simulate)


def _add_race_arguments(race: Any) -> None:
    race.add_argument("--riders", type=POSITIVE_INT, default=100, help="riders (default 100)")
    race.add_argument(
        "--classes",
        type=POSITIVE_INT,
        default=len(CLASS_IDS),
        help=f"exercise classes in play, 1-{len(CLASS_IDS)} (default {len(CLASS_IDS)})",
    )
    race.add_argument(
        "--duration",
        type=POSITIVE_INT,
        help=f"race seconds (default {DEFAULT_DURATION_S}; an --existing-race has its own)",
    )
    race.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help="readings per rider per race second, at most 1 (0.5 = every other second)",
    )
    race.add_argument("--race-id", type=id_argument, help="race id (default race-<seed>)")
    race.add_argument("--seed", type=int, default=1, help="model seed (default 1)")
    race.add_argument(
        "--start-ms",
        type=int,
        help="epoch ms of race second 0 (deviceTimestamp = start + second*1000; default now): "
        "second s is sent at start + s/compression by the wall clock, so a start ahead is "
        "waited for and seconds already past are sent at once",
    )
    race.add_argument(
        "--time-compression",
        type=NON_NEGATIVE_FLOAT,
        default=1.0,
        help="race seconds per wall second (default 1 = real time; 0 = as fast as possible)",
    )
    race.add_argument(
        "--ground-truth",
        type=Path,
        help=f"where to write the ground truth (default {LOCAL_STATE_DIR}/truth/<race>.json)",
    )


def _add_schedule_arguments(group: Any) -> None:
    group.add_argument(
        "--race-name", type=_race_name, help="the race's name (default: Simulated race <id>)"
    )
    group.add_argument(
        "--grace",
        type=GRACE_S,
        default=DEFAULT_GRACE_S,
        help=f"seconds after the last race second that late readings still count, 0-{MAX_GRACE_S} "
        f"(default {DEFAULT_GRACE_S}); the race closes itself then",
    )
    group.add_argument(
        "--existing-race",
        action="store_true",
        help="ride the race --race-id names, as scheduled, instead of creating it (its riders "
        "must be entered as the simulator enters them: same seed, riders and devices)",
    )
    group.add_argument("--api-url", help="the API's URL (default: endpoints file / ApiUrl)")


def _add_cheat_arguments(group: Any) -> None:
    for option, what in CHEAT_OPTIONS.items():
        group.add_argument(f"--{option}", type=NON_NEGATIVE_INT, default=0, metavar="N", help=what)
    group.add_argument(
        "--no-shows",
        type=NON_NEGATIVE_INT,
        default=0,
        metavar="N",
        help="riders entered who never ride (DNS in the placings)",
    )


def _add_target_arguments(where: Any) -> None:
    """Where readings go, and the Kinesis options."""
    where.add_argument(
        "--transport",
        choices=("kinesis", "mqtt"),
        default="kinesis",
        help="batched PutRecords or MQTT (default kinesis)",
    )
    where.add_argument(
        "--target",
        choices=("local", "aws"),
        default="local",
        help="the local stack (its endpoints file) or the deployed stack (default local)",
    )
    _add_env_argument(where, "to send to, with --target aws")
    where.add_argument(
        "--endpoints-file",
        type=Path,
        default=Path(LOCAL_ENDPOINTS_FILE),
        help=f"the local stack's endpoints (default {LOCAL_ENDPOINTS_FILE})",
    )
    where.add_argument("--region", help="AWS region (default: the AWS configuration)")
    where.add_argument("--stream-name", help="Kinesis stream (default: from the stack outputs)")
    where.add_argument("--endpoint-url", help="Kinesis endpoint URL override")
    where.add_argument(
        "--max-in-flight",
        type=POSITIVE_INT,
        default=4,
        help="PutRecords calls in flight (default 4)",
    )


def _add_mqtt_arguments(where: Any) -> None:
    """The MQTT options: the local broker, or IoT Core with provisioned things."""
    where.add_argument("--mqtt-endpoint", help="MQTT host (default: local broker / IoT Data-ATS)")
    where.add_argument("--mqtt-port", type=POSITIVE_INT, help="MQTT port (default 8883 on AWS)")
    where.add_argument(
        "--credentials",
        type=Path,
        help=f"folder written by `breakaway provision` (default {CREDENTIALS_DIR})",
    )
    where.add_argument(
        "--connections",
        type=POSITIVE_INT,
        help="MQTT connections (default: enough for 90%% of the per-connection limit)",
    )
    where.add_argument("--qos", type=int, choices=(0, 1), default=1, help="MQTT QoS (default 1)")
    where.add_argument(
        "--max-publish-rate",
        type=NON_NEGATIVE_INT,
        default=IOT_PUBLISHES_PER_CONNECTION,
        help="publishes/s per connection (default 100, IoT Core's limit; 0 = unlimited)",
    )
    where.add_argument(
        "--basic-ingest",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="publish on the rule's Basic Ingest topic (default: with --target aws, where it "
        "saves IoT Core's messaging charge; locally the plain topic, which both local brokers "
        "carry)",
    )


def _add_fault_arguments(faults: Any) -> None:
    faults.add_argument(
        "--duplicate-fraction",
        type=FRACTION,
        default=0.0,
        help="fraction of readings sent twice (same eventId and payload)",
    )
    faults.add_argument(
        "--reorder-window",
        type=NON_NEGATIVE_INT,
        default=0,
        help="readings are shuffled within a sliding window of this many",
    )


def _register_provision(subparsers: Any) -> None:
    pv = subparsers.add_parser(
        "provision", help="create IoT things, keys and certificates for `simulate --target aws`"
    )
    pv.add_argument("--count", type=POSITIVE_INT, default=1, help="things (one per connection)")
    pv.add_argument("--prefix", type=id_argument, default="breakaway-sim", help="thing name prefix")
    pv.add_argument("--policy", help="IoT policy (default: the stack output IotPolicyName)")
    _add_env_argument(pv, "whose device policy the things get")
    pv.add_argument("--dir", type=Path, help=f"credentials folder (default {CREDENTIALS_DIR})")
    pv.add_argument("--region")
    pv.set_defaults(func=run_provision)


def _register_deprovision(subparsers: Any) -> None:
    dp = subparsers.add_parser("deprovision", help="remove what `breakaway provision` created")
    _add_env_argument(dp, "the things were provisioned for")
    dp.add_argument("--dir", type=Path, help=f"credentials folder (default {CREDENTIALS_DIR})")
    dp.add_argument("--region")
    dp.add_argument(
        "--teardown",
        action="store_true",
        help="before `make destroy`: no credentials folder is fine, and the environment's "
        "device policy is then detached from every certificate still holding it",
    )
    dp.set_defaults(func=run_deprovision)


def _session(region: str | None) -> Any:
    import boto3

    return boto3.Session(region_name=region) if region else boto3.Session()


def _race_config(args: argparse.Namespace) -> RaceConfig:
    if not 0 < args.rate <= 1:
        raise CliError(f"--rate {args.rate} must be above 0 and at most 1 (Hz per rider)")
    if args.classes > len(CLASS_IDS):
        raise CliError(f"--classes {args.classes} must be 1-{len(CLASS_IDS)}")
    duration = args.duration or DEFAULT_DURATION_S
    if duration > MAX_RACE_SECONDS:
        raise CliError(f"--duration must be at most {MAX_RACE_SECONDS} seconds")
    return RaceConfig(
        race_id=args.race_id or f"race-{args.seed}",
        riders=args.riders,
        duration=duration,
        seed=args.seed,
        classes=args.classes,
        start_ms=args.start_ms if args.start_ms is not None else int(time.time() * 1000),
        period=max(1, round(1 / args.rate)),
    )


def race_starts_at(start_ms: int, duration_s: int, compression: float) -> int:
    """The ``startsAt`` of a race whose second 0 is sent at ``start_ms``: the same in real
    time (or slower). Faster, the race clock (the processor's, by which a reading may not be
    from the future) must run ahead of the compressed ride and end when it does: the race
    starts ``duration * (1 - 1/compression)`` earlier, all of it past at compression 0, and
    closes ``graceS`` after the last second is sent."""
    if compression == 0:
        back = float(duration_s)
    elif compression > 1:
        back = duration_s * (1 - 1 / compression)
    else:
        back = 0.0
    return max(0, start_ms - round(back * 1000))


def _cheats(args: argparse.Namespace) -> Cheats:
    return Cheats(
        **{o.replace("-", "_"): getattr(args, o.replace("-", "_")) for o in CHEAT_OPTIONS}
    )


def _kinesis(args: argparse.Namespace) -> tuple[Transport, str]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from simulator.targets import explain_aws_error, load_local_endpoints, stack_output
    from simulator.transports.kinesis import KinesisTransport, describe_failure, kinesis_client

    if args.target == "local":
        ep = load_local_endpoints(args.endpoints_file)
        stream = args.stream_name or ep.stream_name
        url = args.endpoint_url or ep.aws_endpoint_url
        client = kinesis_client(
            endpoint_url=url,
            region=args.region or ep.region,
            session=boto3.Session(),
            max_in_flight=args.max_in_flight,
            access_key="breakaway-local",
            secret_key="breakaway-local",  # noqa: S106 (the emulator accepts anything)
        )
        where = f"the local stack's Kinesis at {url}"
    else:
        session = _session(args.region)
        stream = args.stream_name or stack_output(
            session, _env(args), OUTPUT_STREAM_NAME, "--stream-name", args.region
        )
        client = kinesis_client(
            endpoint_url=args.endpoint_url, session=session, max_in_flight=args.max_in_flight
        )
        url = args.endpoint_url or "Kinesis"
        where = f"Kinesis ({client.meta.region_name})"
    # Pre-flight: the stream exists and we can reach it, before riding anything.
    try:
        client.describe_stream_summary(StreamName=stream)
    except (BotoCoreError, ClientError) as exc:
        fatal = describe_failure(exc, stream)
        if fatal is not None:
            raise CliError(str(fatal)) from None
        from botocore.exceptions import EndpointConnectionError

        if isinstance(exc, EndpointConnectionError):
            hint = "start it with `breakaway up`" if args.target == "local" else "check it"
            raise CliError(f"cannot reach {where}: {hint}") from None
        raise CliError(str(explain_aws_error(exc, f"describe stream {stream!r}"))) from None
    return KinesisTransport(
        client,
        stream,
        max_in_flight=args.max_in_flight,
        endpoint_description=where,
        producer_id=PRODUCER_ID,
    ), f"Kinesis stream {stream} ({where})"


def _mqtt(args: argparse.Namespace, config: RaceConfig) -> tuple[Transport, str]:
    from simulator.transports.mqtt import MqttTransport, mtls_connection, tcp_connection

    per_second = config.riders / config.period
    if args.connections:
        count = args.connections
    elif args.max_publish_rate:
        count = max(1, math.ceil(per_second / (args.max_publish_rate * CONNECTION_HEADROOM)))
    else:
        count = 1
    if args.target == "local":
        from simulator.targets import load_local_endpoints

        if args.mqtt_endpoint:
            host, port = args.mqtt_endpoint, args.mqtt_port or 1883
        else:
            ep = load_local_endpoints(args.endpoints_file)
            host, port = ep.mqtt_host, args.mqtt_port or ep.mqtt_port
        devices = local_device_ids(config.race_id, count)
        connections = [tcp_connection(host, port, device) for device in devices]
        where = f"the MQTT broker at {host}:{port}"
    else:
        from simulator.provision import load_things
        from simulator.targets import iot_data_endpoint

        credentials = _credentials_dir(args, args.credentials)
        _, things = load_things(credentials)
        if count > len(things):
            # The device policy lets a client connect only under its own thing's name.
            raise TargetError(
                f"{count} MQTT connections need {count} provisioned things, "
                f"{credentials} has {len(things)}: run `breakaway provision --count {count}`"
            )
        host = args.mqtt_endpoint or iot_data_endpoint(_session(args.region), args.region)
        port = args.mqtt_port or MQTT_TLS_PORT
        connections = []
        for t in things[:count]:
            try:
                connections.append(
                    mtls_connection(host, port, str(t.cert_path), str(t.key_path), t.name)
                )
            except Exception as exc:
                raise TargetError(
                    f"cannot use the certificate of {t.name} in {credentials} "
                    f"({getattr(exc, 'name', exc)}): run `breakaway provision` again"
                ) from None
        where = f"IoT Core at {host}:{port}"
    rule = LOCAL_RULE_NAME if args.target == "local" else rule_name(_env(args))
    transport = MqttTransport(
        connections,
        qos=args.qos,
        max_rate=args.max_publish_rate,
        basic_ingest_rule=rule if _basic_ingest(args) else None,
        where=where,
    )
    return transport, f"MQTT, {count} connection(s), QoS {args.qos}, {where}"


def _basic_ingest(args: argparse.Namespace) -> bool:
    """Devices in AWS publish through Basic Ingest unless told not to: the rule is the topic's
    only reader, and Basic Ingest skips the message broker and its charge (the deployed device
    policy allows it when ``basic_ingest`` is on, the default). The local stack's fallback broker
    (amqtt) does not carry ``$aws/rules`` topics, so locally it is asked for."""
    if args.basic_ingest is not None:
        return bool(args.basic_ingest)
    return bool(args.target == "aws")


def _transport(args: argparse.Namespace, config: RaceConfig) -> tuple[Transport, str]:
    try:
        if args.transport == "kinesis":
            return _kinesis(args)
        return _mqtt(args, config)
    except (TargetError, TransportError) as exc:
        raise CliError(str(exc)) from None


def _organiser(args: argparse.Namespace) -> Organiser:
    from simulator.targets import organiser_for

    try:
        return organiser_for(
            args.target,
            env=_env(args),
            endpoints_file=args.endpoints_file,
            region=args.region,
            api_url=args.api_url,
        )
    except TargetError as exc:
        raise CliError(str(exc)) from None


def _existing_race(args: argparse.Namespace, organiser: Organiser, config: RaceConfig) -> int:
    """Ride the race as scheduled: its duration, from its start. Its ``startsAt``."""
    race = _api(lambda: organiser.race(config.race_id), f"read race {config.race_id}")
    starts_at, duration = int(race["startsAt"]), int(race["durationS"])
    args.duration, args.start_ms = duration, starts_at
    return starts_at


def _schedule(
    args: argparse.Namespace, organiser: Organiser, config: RaceConfig, fleet: Fleet
) -> int:
    """Create the race and enter its riders; its ``startsAt``."""
    starts_at = race_starts_at(config.start_ms, config.duration, args.time_compression)
    race = NewRace(
        race_id=config.race_id,
        name=args.race_name or f"Simulated race {config.race_id}"[:MAX_ID_LENGTH],
        starts_at=starts_at,
        duration_s=config.duration,
        grace_s=args.grace,
    )
    _api(lambda: organiser.create_race(race), f"create race {config.race_id}", exists=True)
    _api(lambda: organiser.enter(config.race_id, entries(config, fleet)), "enter the riders")
    return starts_at


def _api(call: Callable[[], T], what: str, *, exists: bool = False) -> T:
    try:
        return call()
    except ApiError as exc:
        if exists and exc.status == HTTPStatus.CONFLICT:
            raise CliError(
                f"could not {what}: {exc.message} (ride it with --existing-race, or choose "
                "another --race-id)"
            ) from None
        raise CliError(f"could not {what}: the API answered {exc}") from None
    except ApiUnreachableError as exc:
        raise CliError(f"could not {what}: {exc}") from None


def run_simulate(args: argparse.Namespace) -> int:
    """Check the options, connect, create the race and enter its riders (or read the race
    given), ride it; exit 0 if every reading was acknowledged."""
    if args.env and args.target == "local":
        raise CliError("--env picks a deployed environment: use it with --target aws")
    if args.existing_race and (args.start_ms is not None or args.duration is not None):
        raise CliError("an --existing-race has its schedule: leave out --start-ms and --duration")
    config = _race_config(args)
    transport, description = _transport(args, config)
    try:
        organiser = _organiser(args)
        starts_at = None
        if args.existing_race:
            starts_at = _existing_race(args, organiser, config)
            config = _race_config(args)
        fleet = Fleet(transport.devices, transport.device_in_payload)
        try:  # every cheat the race can hold, before the race is created
            Cheater(config, fleet, _cheats(args), args.no_shows)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        if starts_at is None:
            starts_at = _schedule(args, organiser, config, fleet)
        return _ride(args, config, transport, description, starts_at)
    finally:
        transport.close()


def _ride(
    args: argparse.Namespace,
    config: RaceConfig,
    transport: Transport,
    description: str,
    starts_at: int,
) -> int:
    truth_path = args.ground_truth or Path(LOCAL_STATE_DIR) / "truth" / f"{config.race_id}.json"
    tty = sys.stdout.isatty()
    if tty:
        print(f"riding {config.riders} riders for {config.duration} s over {description}")
    options = RunOptions(
        time_compression=args.time_compression,
        duplicate_fraction=args.duplicate_fraction,
        reorder_window=args.reorder_window,
        truth_path=truth_path,
        progress=tty,
        start_at=config.start_ms / 1000,
        race_start_at=starts_at / 1000,
        cheats=_cheats(args),
        no_shows=args.no_shows,
    )
    try:
        summary = simulate(config, transport, options, clock=time.time)
    except TransportError as exc:
        raise CliError(str(exc)) from None
    except TimeoutError as exc:
        raise CliError(f"gave up waiting for acknowledgements ({exc})") from None
    except ValueError as exc:  # cheating readings the race left no room for
        raise CliError(str(exc)) from None
    print(summary.line())
    return 0 if summary.ok else 1


def _iot_client(session: Any, region: str | None) -> Any:
    from simulator.targets import explain_aws_error

    try:
        return session.client("iot", region_name=region)
    except Exception as exc:
        raise explain_aws_error(exc, "create an IoT client") from None


def run_provision(args: argparse.Namespace) -> int:
    from simulator.provision import provision
    from simulator.targets import stack_output

    session = _session(args.region)
    folder = _credentials_dir(args, args.dir)
    try:
        policy = args.policy or stack_output(
            session, _env(args), OUTPUT_IOT_POLICY, "--policy", args.region
        )
        things = provision(
            _iot_client(session, args.region), policy, folder, args.count, args.prefix
        )
    except TargetError as exc:
        raise CliError(str(exc)) from None
    print(f"provisioned {len(things)} thing(s) with policy {policy}; credentials in {folder}")
    return 0


def run_deprovision(args: argparse.Namespace) -> int:
    """Remove the folder's things; with ``--teardown`` (``make destroy``) also free the
    environment's device policy, so that the stack delete cannot stop at it."""
    from simulator.provision import MANIFEST, deprovision, release_policy
    from simulator.targets import stack_outputs

    session = _session(args.region)
    folder = _credentials_dir(args, args.dir)
    try:
        iot = _iot_client(session, args.region)
        if not args.teardown or (folder / MANIFEST).exists():
            removed = deprovision(iot, folder)
            print(f"removed {len(removed)} thing(s) and their certificates; deleted {folder}")
        else:
            print(f"no things to remove: {folder / MANIFEST} does not exist")
        if args.teardown:
            policy = stack_outputs(session, _env(args), args.region).get(OUTPUT_IOT_POLICY)
            released = release_policy(iot, policy) if policy else []
            print(
                f"detached the {_env(args)} device policy from {len(released)} more "
                "certificate(s)" + (f" (they remain): {', '.join(released)}" if released else "")
            )
    except TargetError as exc:
        raise CliError(str(exc)) from None
    return 0
