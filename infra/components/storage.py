"""DynamoDB: the standings table from the shared key schema, and the idempotency table."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.components.common import removal_policy
from infra.config import IDEMPOTENCY_KEY_ATTRIBUTE, IDEMPOTENCY_TTL_ATTRIBUTE, BreakawayConfig
from shared import keys

_S = dynamodb.AttributeType.STRING
_N = dynamodb.AttributeType.NUMBER


def grant_item_actions(grantee: iam.IGrantable, table: dynamodb.ITable, *actions: str) -> None:
    """``dynamodb:<action>`` for each of ``actions`` on the table's items, not its indexes.

    CDK's ``grant_read_data``/``grant_read_write_data`` give every read (or write) action,
    ``Scan``, ``BatchWriteItem`` and ``DeleteItem`` among them, on the table and ``index/*``:
    each function gets the actions its code calls instead. A transaction needs no action of its
    own: DynamoDB authorizes each ``Put``/``Update`` in it as ``PutItem``/``UpdateItem``."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=[f"dynamodb:{action}" for action in actions],
        resource_arns=[table.table_arn],
    )


def grant_index_queries(grantee: iam.IGrantable, table: dynamodb.ITable, *index_names: str) -> None:
    """``dynamodb:Query`` on the named indexes of the table, and on nothing else."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["dynamodb:Query"],
        resource_arns=[f"{table.table_arn}/index/{name}" for name in index_names],
    )


class Storage(Construct):
    """On-demand tables with point-in-time recovery and TTL; deletion protection and removal
    policy come from the environment."""

    def __init__(self, scope: Construct, construct_id: str, *, config: BreakawayConfig) -> None:
        super().__init__(scope, construct_id)
        common = {
            "billing_mode": dynamodb.BillingMode.PAY_PER_REQUEST,
            "encryption": dynamodb.TableEncryption.AWS_MANAGED,
            "point_in_time_recovery_specification": dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=config.point_in_time_recovery
            ),
            "deletion_protection": config.deletion_protection,
            "removal_policy": removal_policy(config),
        }
        self.standings = dynamodb.Table(
            self,
            "Standings",
            partition_key=dynamodb.Attribute(name=keys.PK, type=_S),
            sort_key=dynamodb.Attribute(name=keys.SK, type=_S),
            time_to_live_attribute=keys.TTL_ATTRIBUTE,
            **common,  # type: ignore[arg-type]
        )
        self.standings.add_global_secondary_index(
            index_name=keys.INDEX_RECENT,
            partition_key=dynamodb.Attribute(name=keys.INDEX_RECENT_PK, type=_S),
            sort_key=dynamodb.Attribute(name=keys.INDEX_RECENT_SK, type=_N),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=list(keys.RECENT_RACES_PROJECTION),
        )
        self.index_names = (keys.INDEX_RECENT,)

        self.idempotency = dynamodb.Table(
            self,
            "Idempotency",
            partition_key=dynamodb.Attribute(name=IDEMPOTENCY_KEY_ATTRIBUTE, type=_S),
            time_to_live_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
            **common,  # type: ignore[arg-type]
        )
