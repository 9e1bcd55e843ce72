"""One synthesis per test session: dev in-process (so cdk-nag can be asked directly), prod
through ``app.py`` in a child process with no credentials and no network (as ``cdk synth``
runs it), both at once. Synth tests share one xdist worker (``xdist_group("synth")``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from tests.infra.helpers import JSII_ENV, REPO, Assembly, cdk_context, offline_environment


@dataclass
class Synths:
    dev: Assembly
    prod: Assembly


@pytest.fixture(scope="session")
def synths(tmp_path_factory: pytest.TempPathFactory) -> Synths:
    os.environ.update(JSII_ENV)
    dev_out = tmp_path_factory.mktemp("cdk-dev")
    prod_out = tmp_path_factory.mktemp("cdk-prod")
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
        dev = Assembly.read(dev_out)
        dev.app = app
        dev.seconds = time.monotonic() - started
        output, _ = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, f"app.py (env=prod) failed offline:\n{output[-4000:]}"
    prod = Assembly.read(prod_out)
    prod.seconds = time.monotonic() - started
    return Synths(dev=dev, prod=prod)


@pytest.fixture(scope="session")
def dev(synths: Synths) -> Assembly:
    return synths.dev


@pytest.fixture(scope="session")
def prod(synths: Synths) -> Assembly:
    return synths.prod
