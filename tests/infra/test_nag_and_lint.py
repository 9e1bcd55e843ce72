"""cdk-nag (zero unacknowledged findings, every acknowledgment with a reason) and cfn-lint on
every synthesized template."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from infra.nag import PACK, attach_checks
from tests.infra.helpers import Assembly, Synths

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]

EXPECTED_ACKNOWLEDGED = {
    "AwsSolutions-APIG3",
    "AwsSolutions-APIG4",
    "AwsSolutions-APIG6",
    "AwsSolutions-CFR1",
    "AwsSolutions-CFR2",  # dev only: the web ACL is on in prod (tests/infra/test_cdn.py)
    "AwsSolutions-CFR3",
    "AwsSolutions-CFR4",
    "AwsSolutions-COG4",
    "AwsSolutions-IAM4",
    "AwsSolutions-IAM5",
    "AwsSolutions-KDF1",
    "AwsSolutions-L1",
    "AwsSolutions-SQS3",
}


def acknowledgments(assembly: Assembly) -> list[tuple[str, str, str]]:
    """(construct path, rule id, reason) of every acknowledgment in the construct tree."""
    return [(p, r, why) for p, r, why in assembly.nag()["acknowledgments"]]


def test_every_finding_is_acknowledged_and_every_acknowledgment_is_used(dev: Assembly) -> None:
    findings = set(dev.nag()["findings"])  # cdk-nag's findings before acknowledgment
    assert findings  # the pack did run
    acknowledged = {rule.removeprefix(f"{PACK}::") for _, rule, _ in acknowledgments(dev)}
    assert findings == acknowledged


def test_dev_synth_reports_no_unacknowledged_finding(dev: Assembly) -> None:
    # And CDK's own validation report of the synth lists no violation from any plugin.
    assert [
        (plugin["pluginName"], v["ruleName"])
        for plugin in dev.validation_report()["pluginReports"]
        for v in plugin["violations"]
    ] == []


def test_prod_synth_has_no_violation(prod: Assembly) -> None:
    assert [
        (plugin["pluginName"], v["ruleName"])
        for plugin in prod.validation_report()["pluginReports"]
        for v in plugin["violations"]
    ] == []


def test_no_warning_or_error_annotations(synths: Synths) -> None:
    for assembly in (synths.dev, synths.prod):
        for artifact in assembly.manifest()["artifacts"].values():
            for path, entries in artifact.get("metadata", {}).items():
                levels = [
                    e["type"] for e in entries if e["type"] in ("aws:cdk:warning", "aws:cdk:error")
                ]
                assert levels == [], f"{path}: {entries}"


def test_every_acknowledgment_states_a_reason(dev: Assembly) -> None:
    acks = acknowledgments(dev)
    assert {rule.split("[")[0] for _, rule, _ in acks} == {
        f"AwsSolutions::{r}" for r in EXPECTED_ACKNOWLEDGED
    }
    for path, rule, reason in acks:
        assert len(reason) >= 40, (path, rule)
    # One reason per finding: no construct acknowledges the same finding twice.
    assert len({(p, r) for p, r, _ in acks}) == len(acks)


def _rendered(rule: str) -> str:
    """A rule id with the Data stack's export names shortened to ``<Resource.Attribute>``."""
    return re.sub(
        r"Breakaway-Dev-Data:ExportsOutputFnGetAtt(\w+?)[0-9A-F]{8}(Arn)[0-9A-F]{8}",
        r"<\1.\2>",
        rule.removeprefix(f"{PACK}::"),
    )


def test_each_function_role_acknowledges_only_its_own_wildcards(dev: Assembly) -> None:
    by_path: dict[str, set[str]] = {}
    for path, rule, _ in acknowledgments(dev):
        by_path.setdefault(path, set()).add(_rendered(rule))
    anything = "AwsSolutions-IAM5[Resource::*]"
    result_topics = (
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>"
        ":topic/breakaway/races/*/riders/*/result]"
    )
    # The processor announces nothing: no IoT topic of its own; only X-Ray needs *.
    # No role queries index/*: each is granted the indexes it queries by name.
    assert by_path["Breakaway-Dev-App/Processing/Processor/Role"] == {
        anything,
        "AwsSolutions-IAM5[Resource::<DeadLettersOnFailureBucket.Arn>/*]",
    }
    assert by_path["Breakaway-Dev-App/Closing/Closer/Role"] == {anything, result_topics}
    # The API schedules each race's close in its environment's schedule group only.
    assert (
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:"
        "<AWS::AccountId>:schedule/breakaway-dev-race-closes/*]"
    ) in by_path["Breakaway-Dev-App/Leaderboard/Handler/Role"]
    reasons = {(p, _rendered(r)): why for p, r, why in acknowledgments(dev)}
    processor_wildcard = reasons["Breakaway-Dev-App/Processing/Processor/Role", anything]
    assert "DescribeEndpoint" not in processor_wildcard
    assert "iot:DescribeEndpoint" in reasons["Breakaway-Dev-App/Closing/Closer/Role", anything]


def test_only_the_dead_letter_queues_are_acknowledged_without_a_dead_letter_queue(
    dev: Assembly,
) -> None:
    # Each is the dead-letter store of its own path: poison records, failed race closes.
    assert sorted(p for p, r, _ in acknowledgments(dev) if r.endswith("SQS3")) == [
        "Breakaway-Dev-Data/DeadLetters/PoisonRecords",
        "Breakaway-Dev-Data/RaceCloses/DeadLetters",
    ]


def test_an_unacknowledged_finding_fails_the_synth(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Probe")
    s3.Bucket(stack, "Plain")  # no TLS enforcement, no access logs
    attach_checks(app)
    with pytest.raises(RuntimeError, match=r"ValidationFailed(.|\n)*AwsSolutions-S10"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {
        v["ruleName"]
        for plugin in report["pluginReports"]
        if plugin["pluginName"] == "AwsSolutions"
        for v in plugin["violations"]
    }
    assert rules == {"AwsSolutions-S1", "AwsSolutions-S10"}


def test_cfn_lint_passes_on_every_template(synths: Synths) -> None:
    templates = sorted(
        str(p) for a in (synths.dev, synths.prod) for p in a.outdir.glob("*.template.json")
    )
    assert len(templates) == 5  # dev: Data, App; prod: Data, App, Edge (its web ACL)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("cfn-lint")),
            "--ignore-checks",
            "W3005",
            "--",
            *templates,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, ""), result.stdout + result.stderr
