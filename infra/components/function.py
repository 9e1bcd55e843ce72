"""The one function factory: every Lambda of the app is built here, the same way."""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.bundle import REPO_ROOT, asset_excludes
from infra.components.common import retention
from infra.config import POWERTOOLS_LAYER_PARAMETER, FunctionConfig
from infra.nag import acknowledge

HANDLER_FUNCTION: Final = "handler"
XRAY_REASON: Final = (
    "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; CDK "
    "adds them for active tracing."
)


def powertools_layer(scope: Construct, arn: str | None = None) -> lambda_.ILayerVersion:
    """The Powertools layer (it carries pydantic): the public layer of the pinned release,
    resolved by CloudFormation at deploy time from its SSM parameter (CDK makes one template
    parameter per stack), so synth makes no AWS call; or ``arn`` where that parameter does not
    exist."""
    if arn is None:
        arn = ssm.StringParameter.value_for_string_parameter(scope, POWERTOOLS_LAYER_PARAMETER)
    return lambda_.LayerVersion.from_layer_version_arn(scope, "PowertoolsLayer", arn)


class PythonFunction(Construct):
    """A Python 3.13 arm64 Lambda with X-Ray tracing, its own role holding only the grants the
    caller adds, and an explicit log group with a retention (no AWS managed policy).
    ``physical_name`` fixes the function's name, for a function that something outside the
    stack invokes by ARN (the race closer); otherwise CloudFormation names it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_name: str,
        config: FunctionConfig,
        environment: dict[str, str],
        log_retention_days: int,
        removal_policy: RemovalPolicy,
        description: str,
        wildcard_reason: str = XRAY_REASON,
        layer_arn: str | None = None,
        physical_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=retention(log_retention_days),
            removal_policy=removal_policy,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the {function_name} function",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=physical_name,
            description=description,
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=f"functions.{function_name}.handler.{HANDLER_FUNCTION}",
            code=lambda_.Code.from_asset(
                str(REPO_ROOT),
                ignore_mode=IgnoreMode.GLOB,
                exclude=asset_excludes(function_name),
            ),
            layers=[powertools_layer(self, layer_arn)],
            memory_size=config.memory_mb,
            timeout=Duration.seconds(config.timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
            environment=environment,
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.13 on purpose: the Powertools public layer parameter this app resolves is "
            "the python3.13 one, and the code is tested on it; bump both together.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            wildcard_reason,
        )
