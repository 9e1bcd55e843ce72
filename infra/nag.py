"""cdk-nag 3: the AwsSolutions pack runs on every synth; findings are acknowledged one by one,
each with its reason, next to the construct it concerns."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

PACK = "AwsSolutions"
"""CDK validation ids are ``<plugin>::<rule>``; cdk-nag's AwsSolutions pack is ``AwsSolutions``."""


def attach_checks(app: App) -> None:
    """Any unacknowledged finding fails the synth (cdk-nag reports through CDK validations)."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one finding of the AwsSolutions pack (``AwsSolutions-IAM5[Resource::...]``
    names a single one)."""
    if len(reason) < 40:
        raise ValueError(f"acknowledging {rule_id} needs a real reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{rule_id}", reason=reason))


def imported(producer: Stack, value: str) -> str:
    """How cdk-nag spells a value the consumer stack imports from ``producer``: the export name
    (CDK reuses the same export for the automatic cross-stack reference)."""
    resolved = producer.resolve(producer.export_value(value))
    return str(resolved["Fn::ImportValue"])


def iam5_resource(resource: str) -> str:
    return f"AwsSolutions-IAM5[Resource::{resource}]"


def iam5_action(action: str) -> str:
    return f"AwsSolutions-IAM5[Action::{action}]"
