"""Infra section: how long ``app.py`` takes to synthesize offline, and its peak memory.

Each run is a fresh ``python app.py`` (cold: a new interpreter and jsii/node runtime), with no
AWS credentials, exactly as ``cdk synth`` starts it. Peak memory is the largest sum of the
resident set sizes of the process tree (python + its node child), sampled every 20 ms from
/proc.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RUNS = 2
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            statm = Path(f"/proc/{entry}/statm").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = int(statm.split()[1]) * PAGE
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def synth_once(env_name: str) -> dict[str, float]:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    with tempfile.TemporaryDirectory() as outdir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
            CDK_DISABLE_VERSION_CHECK="1",
            AWS_EC2_METADATA_DISABLED="true",
            CDK_CONTEXT_JSON=json.dumps({**context, "env": env_name}),
            CDK_OUTDIR=outdir,
        )
        started = time.perf_counter()
        cpu_before = os.times()
        child = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak = 0
        while child.poll() is None:
            peak = max(peak, _tree_rss(child.pid))
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        cpu_after = os.times()
        if child.returncode != 0:
            raise RuntimeError(f"app.py (env={env_name}) exited {child.returncode}")
        templates = len(list(Path(outdir).glob("*.template.json")))
    cpu = (cpu_after.children_user - cpu_before.children_user) + (
        cpu_after.children_system - cpu_before.children_system
    )
    return {
        "wall_s": round(elapsed, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_mb": round(peak / 2**20),
        "templates": templates,
    }


def run() -> dict[str, Any]:
    runs = [synth_once(env_name) for env_name in ("dev", "prod") for _ in range(RUNS)]
    return {
        "synth_runs": runs,
        "synth_wall_s_min": min(r["wall_s"] for r in runs),
        "synth_cpu_s_min": min(r["cpu_s"] for r in runs),
        "synth_peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
        "note": "cold python app.py per run (includes cdk-nag; cfn-lint not included); "
        "wall time depends on the machine's load, CPU time much less",
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
