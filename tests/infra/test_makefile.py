"""`make deploy` and `make destroy` as they run, read from `make --dry-run` (no AWS, no set-up):
deploying where no terminal can answer (CI), and tearing down from any state."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from local import cli
from tests.infra.helpers import REPO

CDK = "node_modules/.bin/cdk"


def dry_run(*args: str) -> list[list[str]]:
    """The commands ``make`` would run for the target, as words, set-up recipes left out."""
    done = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [shlex.split(line) for line in done.stdout.splitlines() if line.strip()]
    return [words for words in lines if CDK in words or "breakaway" in words]


def test_deploy_asks_before_broadening_security_unless_approved() -> None:
    (deploy,) = dry_run("deploy")
    assert deploy[:3] == [CDK, "deploy", "--all"]
    assert deploy[-2:] == ["--require-approval", "broadening"]
    (ci,) = dry_run("deploy", "ENV=prod", "APPROVE=1")
    assert ci[-2:] == ["--require-approval", "never"]
    assert "env=prod" in ci
    (unapproved,) = dry_run("deploy", "APPROVE=0")
    assert unapproved[-1] == "broadening"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_destroy_first_frees_the_device_policy_of_its_environment(env: str) -> None:
    """The App stack cannot delete its IoT policy while certificates hold it (DELETE_FAILED):
    ``make destroy`` removes the simulator's things and detaches the policy first, and that
    step does nothing when there is nothing to remove."""
    deprovision, destroy = dry_run("destroy", f"ENV={env}")
    words = deprovision[deprovision.index("breakaway") + 1 :]
    args = cli.build_parser().parse_args(words)
    assert (args.command, args.env, args.teardown) == ("deprovision", env, True)
    assert destroy[:3] == [CDK, "destroy", "--all"]
    assert f"env={env}" in destroy
    assert "--force" not in destroy
    _, approved = dry_run("destroy", f"ENV={env}", "APPROVE=1")
    assert approved[-1] == "--force"


def test_make_help_says_how_to_approve() -> None:
    listed = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    targets = {line.split()[0]: line for line in listed.splitlines() if line.strip()}
    assert "APPROVE=1" in targets["deploy"]
    assert "APPROVE=1" in targets["destroy"]
