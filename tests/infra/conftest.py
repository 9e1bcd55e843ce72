"""One synthesis per test session: dev in-process (so cdk-nag can be asked directly), prod
through ``app.py`` in a child process with no credentials and no network (as ``cdk synth``
runs it), both at once.

Synth tests are marked ``xdist_group("synth")``, but with pytest 9.2 and pytest-xdist 3.8
``--dist loadgroup`` does not keep a group on one worker (xdist sets ``item._nodeid``, which
pytest 9 no longer reads). So the synthesis is shared across workers through files: the first
worker to take the lock synthesizes into the session's shared temporary folder, the others
wait for it and read the same assemblies.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.infra.helpers import (
    JSII_ENV,
    NAG_FILE,
    REPO,
    Assembly,
    Synths,
    cdk_context,
    offline_environment,
)


def _nag_summary(app: Any) -> dict[str, Any]:
    """cdk-nag's raw findings (before acknowledgments) and every acknowledgment in the tree."""
    from aws_cdk import Validations
    from cdk_nag import AwsSolutionsChecks

    raw = AwsSolutionsChecks().validate_scope(app)
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    acks = [
        [construct.node.path, rule_id, reason]
        for construct in app.node.find_all()
        for entry in construct.node.metadata
        if entry.type == key
        for rule_id, reason in entry.data.items()
    ]
    return {"findings": sorted({v.rule_name for v in raw.violations}), "acknowledgments": acks}


def _synthesize(shared: Path) -> None:
    os.environ.update(JSII_ENV)
    dev_out, prod_out = shared / "dev", shared / "prod"
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=REPO,
        env=offline_environment(
            CDK_CONTEXT_JSON=json.dumps(cdk_context("prod")), CDK_OUTDIR=str(prod_out)
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        from infra.application import build_app

        app, _, _ = build_app(outdir=str(dev_out), context=cdk_context("dev"))
        app.synth()
        (dev_out / NAG_FILE).write_text(json.dumps(_nag_summary(app)))
        output, _ = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, f"app.py (env=prod) failed offline:\n{output[-4000:]}"
    (shared / "done.json").write_text(json.dumps({"seconds": time.monotonic() - started}))


@pytest.fixture(scope="session")
def synths(tmp_path_factory: pytest.TempPathFactory) -> Synths:
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's basetemp is a child of the session's folder.
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "synth"
    shared.mkdir(exist_ok=True)
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (shared / "done.json").exists():
            _synthesize(shared)
    return Synths(dev=Assembly.read(shared / "dev"), prod=Assembly.read(shared / "prod"))


@pytest.fixture(scope="session")
def dev(synths: Synths) -> Assembly:
    return synths.dev


@pytest.fixture(scope="session")
def prod(synths: Synths) -> Assembly:
    return synths.prod
