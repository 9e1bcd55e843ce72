"""The archive: Firehose from the Kinesis stream to S3, partitioned by arrival day, GZIP
newline-delimited JSON; Glue tables over it (the telemetry, and the closed races' cards) with
date partition projection for Athena. docs/decisions.md: "The archive answers across races"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from aws_cdk import Duration, Size, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.components.common import removal_policy, retention
from infra.config import ARCHIVE_PROJECTION_START, ArchiveConfig, BreakawayConfig
from infra.nag import acknowledge, iam5_resource, imported
from shared import names
from shared.archive import ENTRY_COLUMNS, TELEMETRY_COLUMNS
from shared.archive_sql import DAY

DATE_PARTITION: Final = DAY
"""The one partition key of both tables: the ``day=yyyy-MM-dd`` of the keys. Not ``date``
(reserved in Athena); not a race (a race-id partition needs ``injected`` projection, which
refuses any query that does not name its races)."""
FIREHOSE_CIDR_MAPPING: Final = "@aws-cdk--aws-kinesisfirehose.CidrBlocks"


def telemetry_columns() -> list[tuple[str, str]]:
    """Glue columns from the telemetry contract itself (wire names, lower-cased by Glue)."""
    return [(name.lower(), type_) for name, type_ in TELEMETRY_COLUMNS]


def location_template(bucket_name: str, prefix: str) -> str:
    """Where Athena finds one day's objects of a table (``prefix`` with ``{date}``)."""
    return f"s3://{bucket_name}/" + prefix.format(date="${" + DATE_PARTITION + "}")


def projection_parameters(bucket_name: str, prefix: str) -> dict[str, Any]:
    """Glue table parameters for partition projection: Athena computes the partitions (every
    day since the projection start) instead of a crawler or ``MSCK REPAIR`` registering them,
    and reads only the days a query's ``day`` predicate keeps."""
    return {
        "classification": "json",
        "compressionType": "gzip",
        "projection.enabled": "true",
        f"projection.{DATE_PARTITION}.type": "date",
        f"projection.{DATE_PARTITION}.format": "yyyy-MM-dd",
        f"projection.{DATE_PARTITION}.range": f"{ARCHIVE_PROJECTION_START},NOW",
        f"projection.{DATE_PARTITION}.interval": "1",
        f"projection.{DATE_PARTITION}.interval.unit": "DAYS",
        "storage.location.template": location_template(bucket_name, prefix),
    }


def json_storage(
    bucket_name: str, prefix: str, columns: Sequence[tuple[str, str]]
) -> glue.CfnTable.StorageDescriptorProperty:
    """How Athena reads GZIP newline-delimited JSON under ``prefix``, one column per field; a
    malformed line is skipped, not a failed query."""
    return glue.CfnTable.StorageDescriptorProperty(
        location=f"s3://{bucket_name}/{prefix.split('/', maxsplit=1)[0]}/",
        input_format="org.apache.hadoop.mapred.TextInputFormat",
        output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        compressed=True,
        serde_info=glue.CfnTable.SerdeInfoProperty(
            serialization_library="org.openx.data.jsonserde.JsonSerDe",
            parameters={"ignore.malformed.json": "true"},
        ),
        columns=[
            glue.CfnTable.ColumnProperty(name=name.lower(), type=type_) for name, type_ in columns
        ],
    )


ENTRIES_PREFIX: Final = names.ARCHIVE_ENTRIES_PREFIX
"""``entries/day={date}/``: where the closer writes the races' cards."""
CARD_OBJECTS: Final = ENTRIES_PREFIX.split("/", maxsplit=1)[0] + "/*"
"""The objects the closer may write: every card, no telemetry."""


class Archive(Construct):
    """Every telemetry reading, kept for analysis after the live tables expire: Firehose
    delivers the stream to S3, and a Glue table lets Athena query it in place."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BreakawayConfig,
        stream: kinesis.IStream,
        bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.delivery_logs = logs.LogGroup(
            self,
            "DeliveryErrors",
            retention=retention(config.log_retention_days),
            removal_policy=removal_policy(config),
        )
        self.delivery_stream = self._delivery_stream(config.archive, stream, bucket)
        self._acknowledge_delivery_findings(bucket)
        # The L2 always adds a region -> CIDR mapping for Redshift/Splunk/OpenSearch
        # destinations; an S3 destination never references it (cfn-lint W7001).
        Stack.of(self).node.try_remove_child(FIREHOSE_CIDR_MAPPING)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Stack.of(self).account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=names.glue_database_name(config.env_name),
                description="Breakaway telemetry archive (Athena)",
            ),
        )
        self.table = self._table(
            "Telemetry",
            names.GLUE_TABLE,
            "One row per telemetry record as delivered by Firehose (every copy)",
            bucket,
            names.ARCHIVE_PREFIX,
            TELEMETRY_COLUMNS,
        )
        self.entries_table = self._table(
            "Entries",
            names.GLUE_ENTRIES_TABLE,
            "One row per rider entered in a closed race, with the race (written by the closer)",
            bucket,
            ENTRIES_PREFIX,
            ENTRY_COLUMNS,
        )
        self.bucket = bucket

    def archive_cards_from(self, closer: lambda_.Function) -> None:
        """The race closer writes each closed race's card into the archive: the bucket's name
        in its environment, and ``s3:PutObject`` on the cards' prefix, nothing else."""
        closer.add_environment(names.ENV_ARCHIVE_BUCKET, self.bucket.bucket_name)
        closer.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[self.bucket.arn_for_objects(CARD_OBJECTS)]
            )
        )
        if closer.role is not None:
            acknowledge(
                closer.role,
                iam5_resource(
                    imported(Stack.of(self.bucket), self.bucket.bucket_arn) + "/" + CARD_OBJECTS
                ),
                "The closer names each race card object by the race's start day and id, known "
                "at run time: s3:PutObject under the archive's entries/ prefix only.",
            )

    def _delivery_stream(
        self, archive: ArchiveConfig, stream: kinesis.IStream, bucket: s3.IBucket
    ) -> firehose.DeliveryStream:
        """Firehose reads the stream and writes GZIP objects under the arrival day of their
        oldest record, one record per line so that Athena can split them."""
        role, policy = self._destination_role(bucket)
        delivery = firehose.DeliveryStream(
            self,
            "Delivery",
            source=firehose.KinesisStreamSource(stream),
            destination=firehose.S3Bucket(
                bucket,
                # Immutable: the L2 would add read/write (s3:DeleteObject* included) to it.
                role=role.without_policy_updates(),
                data_output_prefix=names.ARCHIVE_FIREHOSE_PREFIX,
                error_output_prefix=names.ARCHIVE_FIREHOSE_ERROR_PREFIX,
                compression=firehose.Compression.GZIP,
                logging_config=firehose.EnableLogging(self.delivery_logs),
                buffering_interval=Duration.seconds(archive.buffering_interval_seconds),
                buffering_size=Size.mebibytes(archive.buffering_size_mib),
                # No dynamic partitioning: the prefix's one expression is Firehose's own
                # timestamp, so there is no active-partition limit to exceed.
                processors=[firehose.AppendDelimiterToRecordProcessor()],
            ),
        )
        delivery.node.add_dependency(policy)  # no delivery before the role may write
        return delivery

    def _destination_role(self, bucket: s3.IBucket) -> tuple[iam.Role, iam.Policy]:
        """The role Firehose writes the archive with: the S3 actions AWS documents for an S3
        destination ("Grant Firehose access to an Amazon S3 destination"), bucket-level ones on
        the bucket and object-level ones on its objects, and its error log. Never
        ``s3:DeleteObject*``: CDK's destination grants read/write, Firehose deletes nothing."""
        role = iam.Role(
            self, "DeliveryRole", assumed_by=iam.ServicePrincipal("firehose.amazonaws.com")
        )
        policy = iam.Policy(
            self,
            "DeliveryPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "s3:GetBucketLocation",
                        "s3:ListBucket",
                        "s3:ListBucketMultipartUploads",
                    ],
                    resources=[bucket.bucket_arn],
                ),
                iam.PolicyStatement(
                    actions=["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                    resources=[bucket.arn_for_objects("*")],
                ),
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.delivery_logs.log_group_arn],
                ),
            ],
        )
        return role, policy

    def _acknowledge_delivery_findings(self, bucket: s3.IBucket) -> None:
        """cdk-nag flags the delivery stream's encryption and the wildcards in the grants the
        L2 writes for its S3 destination; each is acknowledged here with its reason."""
        acknowledge(
            self.delivery_stream,
            "AwsSolutions-KDF1",
            "Firehose server-side encryption applies to Direct PUT sources only; this stream "
            "reads an encrypted Kinesis stream and writes to an SSE-S3 encrypted bucket.",
        )
        acknowledge(
            self.node.find_child("DeliveryPolicy"),
            iam5_resource(imported(Stack.of(bucket), bucket.bucket_arn) + "/*"),
            "Firehose names each archive object itself (prefix, partition, time, random "
            "suffix): PutObject, GetObject and AbortMultipartUpload on the archive bucket's "
            "objects, nowhere else.",
        )

    def _table(  # noqa: PLR0917 - one table's identity, then where it lives
        self,
        construct_id: str,
        name: str,
        description: str,
        bucket: s3.IBucket,
        prefix: str,
        columns: Sequence[tuple[str, str]],
    ) -> glue.CfnTable:
        """An Athena table over ``day=`` partitions of the archive, projected, not registered."""
        return glue.CfnTable(
            self,
            construct_id,
            catalog_id=Stack.of(self).account,
            database_name=self.database.ref,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description,
                table_type="EXTERNAL_TABLE",
                parameters=projection_parameters(bucket.bucket_name, prefix),
                partition_keys=[glue.CfnTable.ColumnProperty(name=DATE_PARTITION, type="string")],
                storage_descriptor=json_storage(bucket.bucket_name, prefix, columns),
            ),
        )
