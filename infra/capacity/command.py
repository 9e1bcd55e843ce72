"""`breakaway capacity`: the model of docs/capacity.md for one scale, as text or JSON.

Numbers are checked here, not by argparse ``type=``, so that a bad one is the usual one-line
``breakaway capacity: ...`` (exit status 2) naming the option, as the scenario's own checks are.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from infra.capacity.measured import RESULTS_FILE, load_measured
from infra.capacity.model import STREAM_MODES, TRANSPORTS, Scenario, model
from infra.capacity.render import render, render_json
from infra.config import (
    CONTEXT_KEY,
    MAX_PARALLELIZATION_FACTOR,
    BreakawayConfig,
    ConfigError,
    load_config,
)
from shared.cli import CliError


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


CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"


def _deployed(env_name: str | None) -> BreakawayConfig:
    """What ``make deploy ENV=<env>`` deploys (cdk.json's overrides of infra/config.py), or the
    defaults alone."""
    if env_name is None:
        return BreakawayConfig()
    try:
        context = json.loads(CDK_JSON.read_text())["context"]
        return load_config(env_name, context.get(CONTEXT_KEY))
    except (OSError, KeyError, ValueError, ConfigError) as exc:
        raise CliError(f"--env {env_name}: {exc}") from None


def _config(args: argparse.Namespace) -> BreakawayConfig:
    """The environment's configuration with the event source options applied."""
    config = _deployed(args.env)
    es = config.event_source
    if args.batching_window is not None:
        window = _number("--batching-window", args.batching_window, int, 0, False)
        es = dataclasses.replace(es, max_batching_window_seconds=window)
    if args.parallelization is not None:
        factor = _number("--parallelization", args.parallelization, int, 1, False)
        es = dataclasses.replace(es, parallelization_factor=factor)
    try:
        return dataclasses.replace(config, event_source=es).validate()
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _scenario(args: argparse.Namespace) -> Scenario:
    riders = _number("--riders", args.riders, int, 1, False)
    hz = _number("--hz", args.hz, float, 0, True)
    minutes = _number("--race-minutes", args.race_minutes, int, 1, False)
    races = _number("--races", args.races, int, 1, False)
    viewers = None if args.viewers is None else _number("--viewers", args.viewers, int, 0, False)
    config = _config(args)
    try:
        return Scenario(
            config=config,
            riders=riders,
            hz=hz,
            race_minutes=minutes,
            races=races,
            viewers=viewers,
            transport=args.transport,
            stream_mode=args.stream_mode,
            waf=args.waf,
            viewer_function=args.viewer_function,
            standings_cache=args.standings_cache,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    result = model(_scenario(args), load_measured(Path(args.results)))
    print(render_json(result) if args.json else render(result))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "capacity",
        help="what N concurrent riders need from each service and what it costs",
        description="The capacity and cost model of docs/capacity.md for one scale.",
    )
    p.add_argument("--riders", required=True, help="concurrent riders (at least 1)")
    p.add_argument(
        "--env",
        default=None,
        help="model this environment's configuration from cdk.json (dev, prod; default: the "
        "defaults of infra/config.py, which dev deploys)",
    )
    p.add_argument("--hz", default="1", help="readings per rider per second (default 1)")
    p.add_argument("--race-minutes", default="60", help="race length in minutes (default 60)")
    p.add_argument("--races", default="1", help="concurrent races sharing the riders (default 1)")
    p.add_argument("--viewers", default=None, help="live pages polling (default: one per rider)")
    p.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default=None,
        help="ingest path (default: basic-ingest where the environment's IoT policy allows it, "
        "as `breakaway simulate --target aws` publishes; iot otherwise)",
    )
    p.add_argument(
        "--stream-mode",
        choices=STREAM_MODES,
        default=None,
        help="Kinesis capacity mode (default: what infra/config.py deploys, on-demand)",
    )
    p.add_argument(
        "--waf",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the viewers' web ACL (default: cdk.json cdn.waf_enabled; off in dev)",
    )
    p.add_argument(
        "--viewer-function",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the CloudFront Function on viewer requests (default: on, as deployed)",
    )
    p.add_argument(
        "--standings-cache",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the processor's standings cache (default: on, as the processor runs)",
    )
    p.add_argument(
        "--batching-window",
        default=None,
        help="event source mapping batching window in seconds (default: infra/config.py)",
    )
    p.add_argument(
        "--parallelization",
        default=None,
        help="event source mapping parallelization factor "
        f"1-{MAX_PARALLELIZATION_FACTOR} (default: infra/config.py)",
    )
    p.add_argument("--results", default=str(RESULTS_FILE), help="benchmarks/results.json to read")
    p.add_argument("--json", action="store_true", help="print the whole model as JSON")
    p.set_defaults(func=run)
