"""Races close themselves: one EventBridge Scheduler one-time schedule per race (created at run
time by the API when the race is created, in this environment's schedule group) invokes the
race closer, which weighs the final placings (the riders' history, personal bests and class
records), stores them and announces them.

Two constructs, for the two stacks:

* :class:`RaceScheduling` (data stack, stateful): the schedule group, the role EventBridge
  Scheduler assumes to invoke the closer, and the dead-letter queue of closes that failed. The
  group holds every pending race's schedule, and deleting a group deletes its schedules, so it
  outlives a redeploy of the app stack; the closer has a fixed name
  (:func:`shared.names.closer_function_name`) so that the schedules' target stays valid too.
* :class:`RaceClosing` (app stack): the closer function, its grants, and how Lambda retries a
  close that fails (Scheduler invokes it asynchronously): twice, then the event goes to the
  same dead-letter queue.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.common import removal_policy, secure_queue
from infra.components.function import PythonFunction
from infra.components.iot import topic_arn, topic_arn_as_nag_reports
from infra.components.storage import grant_item_actions
from infra.config import NOTIFY_TARGET_IOT, SQS_MAX_RETENTION_DAYS, BreakawayConfig
from infra.nag import acknowledge, iam5_resource
from shared import names

FUNCTION_NAME: Final = "race_closer"
RESULT_TOPIC_FILTER: Final = names.RESULT_TOPIC.format(race_id="+", rider_id="+")
SCHEDULER_PRINCIPAL: Final = "scheduler.amazonaws.com"
SCHEDULING_ACTIONS: Final = (
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
)
"""What the API does with a race's schedule: create it with the race (or update it, when a
create finds one left by a failed attempt), move it on an early close. It never reads or
deletes one (a schedule deletes itself after it ran: ``ActionAfterCompletion=DELETE``)."""


class RaceScheduling(Construct):
    """The schedule group, the scheduler's execution role (it may invoke the closer and write
    to the dead-letter queue, nothing else) and the dead-letter queue (alarmed)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: BreakawayConfig) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.group_name = names.schedule_group_name(config.env_name)
        self.group = scheduler.CfnScheduleGroup(self, "Group", name=self.group_name)
        self.group.apply_removal_policy(removal_policy(config))
        self.dead_letters = secure_queue(
            self, "DeadLetters", config, retention_days=SQS_MAX_RETENTION_DAYS
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter store of the race closes: schedules that "
            "could not invoke the closer, and closes that failed all of Lambda's retries. Nothing "
            "consumes it automatically (an alarm watches it), so it needs no DLQ of its own.",
        )
        self.closer_arn = stack.format_arn(
            service="lambda",
            resource="function",
            resource_name=names.closer_function_name(config.env_name),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        """The closer's ARN, from its fixed name: the function lives in the app stack, which
        depends on this one, so this stack cannot refer to it."""
        self.role = iam.Role(
            self,
            "SchedulerRole",
            # Confused-deputy prevention as EventBridge Scheduler documents it: this account,
            # and this schedule group (the ARN of a group, never of a schedule).
            assumed_by=iam.ServicePrincipal(SCHEDULER_PRINCIPAL).with_conditions(
                {
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "aws:SourceArn": self.group.attr_arn,
                    }
                }
            ),
            description="EventBridge Scheduler invokes the race closer for each race's schedule",
        )
        iam.Grant.add_to_principal(
            grantee=self.role, actions=["lambda:InvokeFunction"], resource_arns=[self.closer_arn]
        )
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["sqs:SendMessage"],
            resource_arns=[self.dead_letters.queue_arn],
        )

    @property
    def schedule_arns(self) -> str:
        """Every schedule of the group (one per race, named by its race id)."""
        return Stack.of(self).format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=f"{self.group_name}/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    def grant_scheduling(self, grantee: iam.IGrantable) -> None:
        """What the API needs to schedule a race's close: create, update and read the group's
        schedules, and hand them the scheduler's role (to EventBridge Scheduler only)."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(SCHEDULING_ACTIONS), resource_arns=[self.schedule_arns]
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": SCHEDULER_PRINCIPAL}},
            )
        )
        if isinstance(grantee.grant_principal, Construct):
            acknowledge(
                grantee.grant_principal,
                iam5_resource(
                    "arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/"
                    f"{self.group_name}/*"
                ),
                "scheduler:CreateSchedule/UpdateSchedule on the schedules of this "
                "environment's group only: one schedule per race, named by a race id known at "
                "run time.",
            )

    def environment(self, closer_arn: str) -> dict[str, str]:
        """The API's environment variables for creating a race's schedule."""
        return {
            names.ENV_SCHEDULE_GROUP: self.group_name,
            names.ENV_CLOSER_ARN: closer_arn,
            names.ENV_SCHEDULER_ROLE_ARN: self.role.role_arn,
            names.ENV_SCHEDULE_DLQ_ARN: self.dead_letters.queue_arn,
        }


class RaceClosing(Construct):
    """The race closer: its function (fixed name), its grants (the race book and standings, the
    idempotency table, the result topics, the IoT endpoint lookup) and its asynchronous
    invocation settings."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BreakawayConfig,
        dead_letters: sqs.IQueue,
        standings: dynamodb.ITable,
        idempotency: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.closer = PythonFunction(
            self,
            "Closer",
            function_name=FUNCTION_NAME,
            physical_name=names.closer_function_name(config.env_name),
            description="Closes a race at its schedule: stores and announces the final placings",
            config=config.closer,
            environment={
                names.ENV_STANDINGS_TABLE: standings.table_name,
                names.ENV_IDEMPOTENCY_TABLE: idempotency.table_name,
                names.ENV_NOTIFY_TARGET: NOTIFY_TARGET_IOT,
                names.ENV_IDEMPOTENCY_TTL_SECONDS: str(config.idempotency_ttl_seconds),
                "POWERTOOLS_SERVICE_NAME": names.POWERTOOLS_SERVICE_CLOSER,
                "POWERTOOLS_METRICS_NAMESPACE": names.METRICS_NAMESPACE,
            },
            layer_arn=config.powertools_layer_arn,
            log_retention_days=config.log_retention_days,
            removal_policy=removal_policy(config),
            wildcard_reason=(
                "iot:DescribeEndpoint (the race closer finds the account's IoT data endpoint "
                "once per cold start) and X-Ray tracing support no resource-level permissions."
            ),
        )
        fn = self.closer.function
        # shared/race_store.py and functions/race_closer/adapters.py: the race record by key
        # and its state (UpdateItem), the entries and the stored placings (Query on the table,
        # no index), the standings by key (BatchGetItem), the placings pages (BatchWriteItem).
        # shared/history_store.py: each class's records by key (GetItem) and saved on their
        # version (PutItem), each personal best claimed (a conditional PutItem), the riders'
        # results (BatchWriteItem).
        # Powertools' idempotency layer reads, writes, updates and deletes its own records.
        grant_item_actions(
            fn,
            standings,
            "GetItem",
            "Query",
            "BatchGetItem",
            "UpdateItem",
            "PutItem",
            "BatchWriteItem",
        )
        grant_item_actions(fn, idempotency, "GetItem", "PutItem", "UpdateItem", "DeleteItem")
        self.result_topics = topic_arn(RESULT_TOPIC_FILTER)
        iam.Grant.add_to_principal(
            grantee=fn, actions=["iot:Publish"], resource_arns=[self.result_topics]
        )
        iam.Grant.add_to_principal(
            grantee=fn, actions=["iot:DescribeEndpoint"], resource_arns=["*"]
        )
        fn.configure_async_invoke(
            retry_attempts=config.closing.retry_attempts,
            max_event_age=Duration.seconds(config.closing.max_event_age_seconds),
            on_failure=destinations.SqsDestination(dead_letters),
        )
        acknowledge(
            self.closer.role,
            iam5_resource(topic_arn_as_nag_reports(RESULT_TOPIC_FILTER)),
            "iot:Publish on the result topic pattern only: race and rider ids are known at run "
            "time, one topic per rider's placing.",
        )
