"""The ``local`` section: the local stack at full size, in real time.

1,000 riders at 1 Hz for a 300 s race over MQTT (the default path of ``make demo``), against
a stack started in this process exactly as ``breakaway up`` starts it. Reports the event
source mapping's iterator age (p50/p99/max), the time from publishing a reading to seeing it
through the API (p50/p95/p99, from polling the top 100), whether every standing read
back through the API equals the simulator's ground truth, how many riders the race record
counts as finished (their final reading counted, each once), and, once the race has closed
itself (its schedule running the closer), whether every placing read through the results route,
overall and per class, equals the placings the ground truth implies.

Environment overrides (for a quicker look): BREAKAWAY_BENCH_RIDERS, BREAKAWAY_BENCH_DURATION,
BREAKAWAY_BENCH_TRANSPORT, BREAKAWAY_BENCH_WINDOW (batching window, s),
BREAKAWAY_BENCH_BATCH (batch size).
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from local.race import RaceReport, RaceSpec, percentile, run_race
from local.stack import LocalStack, StackOptions

BUDGET_ITERATOR_AGE_P99_S = 5.0
BUDGET_VISIBLE_P95_S = 3.0


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def run() -> dict[str, Any]:
    riders = int(os.environ.get("BREAKAWAY_BENCH_RIDERS", "1000"))
    duration = int(os.environ.get("BREAKAWAY_BENCH_DURATION", "300"))
    transport = os.environ.get("BREAKAWAY_BENCH_TRANSPORT", "mqtt")
    window = float(os.environ.get("BREAKAWAY_BENCH_WINDOW", "0"))
    batch = int(os.environ.get("BREAKAWAY_BENCH_BATCH", "10000"))
    bridge_qos = int(os.environ.get("BREAKAWAY_BENCH_BRIDGE_QOS", "1"))
    with tempfile.TemporaryDirectory(prefix="breakaway-bench-") as tmp:
        state = Path(tmp) / "state"
        options = StackOptions(
            state_dir=state, batching_window_s=window, batch_size=batch, bridge_qos=bridge_qos
        )
        with LocalStack(options) as stack:
            assert stack.endpoints is not None
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            spec = RaceSpec(
                race_id=f"bench-{int(time.time())}",
                riders=riders,
                duration=duration,
                transport=transport,
                probe_interval_s=0.1,
            )
            report = run_race(
                spec,
                state / "endpoints.json",
                stack.endpoints.api_url,
                Path(tmp) / "truth.json",
                wait_idle=lambda t: stack.wait_idle(timeout=t),
            )
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu_s = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
            return _results(spec, options, report, stack, cpu_s)


def _results(
    spec: RaceSpec, options: StackOptions, report: RaceReport, stack: LocalStack, cpu_s: float
) -> dict[str, Any]:
    assert stack.mapping is not None
    assert stack.bridge is not None
    assert stack.closing is not None
    stats = stack.mapping.stats
    closing = stack.closing.stats
    ages = list(stats.iterator_ages_s)
    age_p99 = percentile(ages, 99)
    vis_p95 = percentile(report.latencies_s, 95)
    return {
        "riders": spec.riders,
        "duration_s": spec.duration,
        "transport": spec.transport,
        "shards": options.shards,
        "batch_size": options.batch_size,
        "batching_window_s": options.batching_window_s,
        "bridge_subscription_qos": options.bridge_qos,
        "iterator_age_p50_s": _r(percentile(ages, 50)),
        "iterator_age_p99_s": _r(age_p99),
        "iterator_age_max_s": _r(max(ages) if ages else None),
        "visible_latency_p50_s": _r(percentile(report.latencies_s, 50)),
        "visible_latency_p95_s": _r(vis_p95),
        "visible_latency_p99_s": _r(percentile(report.latencies_s, 99)),
        "latency_samples": len(report.latencies_s),
        "exact": report.exact,
        "drained": report.drained,
        "differences": report.differences[:20],
        "riders_checked": report.riders_checked,
        "invocations": stats.invocations,
        "function_errors": stats.function_errors,
        "records_delivered": stats.records_delivered,
        "riders_finished": report.finished,
        "closed_by_its_schedule": report.closed,
        "placings_exact": report.placings_exact,
        "placings_checked": report.placings_checked,
        "placing_differences": report.placing_differences[:20],
        "closer_invocations": closing.invocations,
        "closer_failures": closing.failures,
        "bridge_records_put": stack.bridge.stats.put,
        "stack_process_cpu_s": round(cpu_s, 1),
        "within_budget": bool(
            report.exact
            and report.placings_exact
            and report.finished == spec.riders
            and age_p99 is not None
            and age_p99 <= BUDGET_ITERATOR_AGE_P99_S
            and vis_p95 is not None
            and vis_p95 <= BUDGET_VISIBLE_P95_S
        ),
        "simulator": report.simulator_output.splitlines()[-1:] if report.simulator_output else [],
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
