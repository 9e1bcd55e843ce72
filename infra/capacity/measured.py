"""The figures the capacity model takes from the benchmarks, or the assumptions it states instead.

``benchmarks/processor.py`` and ``benchmarks/api.py`` write ``benchmarks/results.json``; when a
figure is missing or damaged there, the model uses the assumption in :mod:`infra.capacity.facts`
and says so in its output. This is the package's only file input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from infra.capacity.facts import ASSUMED_API_CPU_MS, ASSUMED_READINGS_PER_CPU_SECOND

RESULTS_FILE: Final = Path(__file__).resolve().parents[2] / "benchmarks" / "results.json"


@dataclass(frozen=True)
class Measured:
    readings_per_cpu_second: float
    readings_per_cpu_second_source: str
    api_cpu_ms: float
    api_cpu_ms_source: str
    writes_per_reading: float | None
    """As measured by the processor benchmark (its own stream and window): a cross-check only."""
    standing_item_bytes: float | None = None
    """A standing item's bytes at a race's last second, as the processor writes it."""
    standing_write_units: float | None = None
    """Mean write units per standing write over the measured race."""
    standing_race_seconds: float | None = None
    """The length of the race those two were measured over."""

    def standing_sizes_for(self, race_seconds: int) -> tuple[float, float] | None:
        """(bytes at the last second, mean write units) when measured over a race this long."""
        if (
            self.standing_race_seconds == race_seconds
            and self.standing_item_bytes is not None
            and self.standing_write_units is not None
        ):
            return self.standing_item_bytes, self.standing_write_units
        return None


RESULTS_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "readings_per_cpu_second": ("processor", "readings_per_cpu_second"),
    "writes_per_reading": ("processor", "writes_per_reading"),
    "api_cpu_us": ("api", "cpu", "handler_top10_uncached_us_median"),
    "standing_item_bytes": ("processor", "standing_sizes", "standing_item_bytes_last_second"),
    "standing_write_units": ("processor", "standing_sizes", "standing_write_units_mean"),
    "standing_race_seconds": ("processor", "standing_sizes", "race_seconds"),
}
"""Where each measured figure sits in ``benchmarks/results.json`` (section first): written by
``benchmarks/processor.py`` and ``benchmarks/api.py``."""


def _measured(results: dict[str, Any], figure: str) -> float | None:
    """The positive number at ``RESULTS_KEYS[figure]``, or None when it is not there."""
    value: Any = results
    for key in RESULTS_KEYS[figure]:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def load_measured(path: Path = RESULTS_FILE) -> Measured:
    """Figures from ``benchmarks/results.json`` where present; stated assumptions otherwise."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        results = {}
    if not isinstance(results, dict):
        results = {}

    rate = _measured(results, "readings_per_cpu_second")
    if rate is not None:
        readings_rate, readings_source = rate, f"measured ({path.name} processor)"
    else:
        readings_rate = float(ASSUMED_READINGS_PER_CPU_SECOND)
        readings_source = "assumed (no processor benchmark)"

    us = _measured(results, "api_cpu_us")
    if us is not None:
        api_ms, api_source = us / 1000, f"measured ({path.name} api)"
    else:
        api_ms, api_source = ASSUMED_API_CPU_MS, "assumed (no api benchmark)"

    writes = _measured(results, "writes_per_reading")
    return Measured(
        readings_rate,
        readings_source,
        api_ms,
        api_source,
        writes,
        standing_item_bytes=_measured(results, "standing_item_bytes"),
        standing_write_units=_measured(results, "standing_write_units"),
        standing_race_seconds=_measured(results, "standing_race_seconds"),
    )
