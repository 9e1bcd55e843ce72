"""Run the benchmark sections and write ``benchmarks/results.json``.

``python -m benchmarks`` runs every section; ``python -m benchmarks processor`` runs only the
named ones and keeps the other sections already in the file. Each section is a module of this
package exposing ``run() -> dict``.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

SECTIONS = ("processor", "simulator", "api", "closer", "infra", "local")
RESULTS = Path(__file__).with_name("results.json")


def main(argv: list[str]) -> int:
    wanted = argv or list(SECTIONS)
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in wanted:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"benchmarks.{name}":
                raise
            print(f"[{name}] not written yet, skipped", file=sys.stderr)
            continue
        print(f"[{name}] running ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        section = module.run()
        section["wall_s"] = round(time.perf_counter() - started, 1)
        results[name] = section
        print(json.dumps({name: section}, indent=2), flush=True)
    results["machine"] = {
        "python": platform.python_version(),
        "processor": platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
