"""The capacity model's output: a text summary, or every figure as JSON (``--json``).

Both are drawn from :meth:`Capacity.as_dict`, so the summary shows nothing the JSON lacks.
"""

from __future__ import annotations

import json
from typing import Any

from infra.capacity.facts import KIB
from infra.capacity.model import Capacity
from infra.capacity.prices import PRICE_DATE

LIMITS_SHOWN_BELOW: int = 3
"""The summary lists every limit passed, then this many of the next highest."""


def _n(x: float) -> str:
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"
    return f"{int(x):,}"


def _scenario_lines(d: dict[str, Any]) -> list[str]:
    sc, ms = d["scenario"], d["measured"]
    return [
        f"Breakaway capacity: {sc['riders']:,} riders at {sc['hz']:g} Hz, "
        f"{sc['races']} race(s) of {sc['race_minutes']} min, {sc['viewers']:,} viewers "
        f"polling every {sc['poll_seconds']:g} s, transport {sc['transport']}, "
        f"stream {sc['stream_mode']}",
        f"  reading {d['sizes']['reading_bytes']} B; processor "
        f"{_n(ms['readings_per_cpu_second'])} readings/CPU-s "
        f"({ms['readings_per_cpu_second_source']})",
    ]


def _ingest_lines(d: dict[str, Any]) -> list[str]:
    k = d["kinesis"]
    lines = [
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
    return lines


def _service_lines(d: dict[str, Any]) -> list[str]:
    k, esm, db, api, fh = d["kinesis"], d["esm"], d["dynamodb"], d["api"], d["firehose"]
    cl, cdn = d["closing"], d["cdn"]
    return [
        f"ESM       concurrency {esm['concurrency']} ({k['shards']} shards x "
        f"{esm['parallelization_factor']}), {_n(esm['invocations_per_s'])} invocations/s, "
        f"{_n(esm['records_per_invocation'])} records each, "
        f"{esm['duration_s'] * 1000:.0f} ms, busy {esm['busy_fraction']:.0%}",
        f"DynamoDB  {_n(db['standing_writes_per_s'])} standing writes/s "
        f"({db['writes_per_rider_per_s']:g} per rider key); race record "
        f"{_n(db['race_record_writes_per_s'])} writes/s; {_n(db['write_units_per_s'])} "
        f"WRU/s ({_n(db['write_units_per_s_live_builds'])} live builds), "
        f"{_n(db['read_units_per_s'])} RRU/s ({_n(db['read_units_per_s_live_builds'])} "
        "live builds)",
        f"Firehose  {_n(fh['records_per_s'])} records/s of {fh['record_bytes']} B billed as "
        f"{fh['billed_bytes_per_record']} B each ({fh['billed_to_actual']}x): "
        f"{_n(fh['billed_gb_per_hour'])} GB/h billed",
        f"CDN       {_n(cdn['viewer_requests_per_s'])} viewer requests/s over "
        f"{_n(cdn['leaderboard_cache_keys'])} leaderboard keys; "
        f"{_n(cdn['origin_shield_requests_per_s'])} to Origin Shield, "
        f"{_n(cdn['origin_requests_per_s'])} to the API; "
        f"{_n(cdn['data_out_gb_per_hour'])} GB/h out; WAF {'on' if cdn['waf'] else 'off'}",
        f"API       {_n(api['requests_per_s'])} origin requests/s, "
        f"{api['read_units_per_leaderboard_request']:g} RRU per leaderboard; "
        f"{_n(api['live_builds_per_s'])} live builds/s of {_n(api['live_build_read_units'])} "
        f"RRU + {_n(api['live_build_write_units'])} WRU, "
        f"{api['live_build_duration_s'] * 1000:.0f} ms",
        f"Closer    one invocation per race of {_n(cl['riders_per_race'])} riders: "
        f"{_n(cl['requests_total_per_close'])} requests, {_n(cl['placings_pages'])} placings "
        f"pages, ~{cl['duration_s']:g} s of its {cl['timeout_s']} s timeout, "
        f"${cl['cost_per_close_usd']:.4f} a close ({cl['closes_per_hour']:g} closes/h)",
    ]


def _cost_lines(cost: dict[str, Any]) -> list[str]:
    return [
        f"Cost (us-east-1 on-demand list prices as of {PRICE_DATE}): "
        f"${cost['race_hour_usd']:,.2f} per race hour "
        f"(${cost['per_rider_hour_usd']:.4f} per rider-hour), "
        f"${cost['monthly_24x7_usd']:,.0f} a month 24/7",
        "  " + ", ".join(f"{name} ${v:,.2f}" for name, v in cost["per_hour_usd"].items()),
    ]


def _limit_lines(limits: list[dict[str, Any]], first: dict[str, Any]) -> list[str]:
    lines = ["Limits (highest utilization first):"]
    over = [lim for lim in limits if lim["utilization"] >= 1]
    for lim in limits[: len(over) + LIMITS_SHOWN_BELOW]:
        flag = "OVER" if lim["utilization"] >= 1 else "ok  "
        line = (
            f"  {flag} {lim['utilization']:>7.0%}  {lim['service']}: {lim['what']} "
            f"({_n(lim['demand'])} of {_n(lim['limit'])})"
        )
        lines.append(f"{line} -> {lim['lift']}" if flag == "OVER" else line)
    verb = "hit" if first["utilization"] >= 1 else "nearest (none hit)"
    lines.append(f"First limit {verb}: {first['service']}: {first['what']} -> {first['lift']}")
    return lines


def render(c: Capacity) -> str:
    """The text summary: one line per service, the cost, the limits nearest to giving."""
    d = c.as_dict()
    lines = [
        *_scenario_lines(d),
        *_ingest_lines(d),
        *_service_lines(d),
        *_cost_lines(d["cost"]),
        *_limit_lines(d["limits"], d["first_limit"]),
    ]
    return "\n".join(lines)


def render_json(c: Capacity) -> str:
    """Every figure, the limits and the prices."""
    return json.dumps(c.as_dict(), indent=2)
