"""The archive: Firehose from the Kinesis stream to S3, partitioned by race and date, GZIP
newline-delimited JSON; a Glue table over it with partition projection for Athena."""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import Duration, Size, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.components.common import removal_policy, retention
from infra.config import (
    ARCHIVE_PARTITION_KEYS,
    ARCHIVE_PROJECTION_START,
    ArchiveConfig,
    BreakawayConfig,
)
from infra.nag import acknowledge, iam5_resource, imported
from shared import names
from shared.contract import Telemetry

RACE_PARTITION: Final = "race"
DATE_PARTITION: Final = "day"
"""Glue partition keys: they may not repeat a column name (``raceId`` is a column), and
``date`` is reserved in Athena. ``storage.location.template`` maps them onto the S3 layout."""
FIREHOSE_CIDR_MAPPING: Final = "@aws-cdk--aws-kinesisfirehose.CidrBlocks"
_GLUE_TYPES: Final = {"integer": "bigint", "string": "string"}


def telemetry_columns() -> list[tuple[str, str]]:
    """Glue columns from the telemetry contract itself (wire names, lower-cased by Glue). An
    optional field (``deviceId``: ``anyOf`` a type and null) is a column of that type, null where
    a reading has none."""
    schema = Telemetry.model_json_schema(by_alias=True)
    return [
        (name.lower(), _GLUE_TYPES[_json_type(prop)]) for name, prop in schema["properties"].items()
    ]


def _json_type(prop: dict[str, Any]) -> str:
    if "type" in prop:
        return str(prop["type"])
    (kind,) = {p["type"] for p in prop["anyOf"] if p.get("type") != "null"}
    return str(kind)


def location_template(bucket_name: str) -> str:
    """Where Athena finds one partition's objects: the Firehose prefix with the partition keys
    in place of the race id and the date."""
    prefix = names.ARCHIVE_PREFIX.format(
        race_id="${" + RACE_PARTITION + "}", date="${" + DATE_PARTITION + "}"
    )
    return f"s3://{bucket_name}/{prefix}"


def projection_parameters(bucket_name: str) -> dict[str, Any]:
    """Glue table parameters for partition projection: Athena computes the partitions from
    these (any race id, every day since the projection start) instead of a crawler or
    ``MSCK REPAIR`` keeping a partition list up to date."""
    return {
        "classification": "json",
        "compressionType": "gzip",
        "projection.enabled": "true",
        f"projection.{RACE_PARTITION}.type": "injected",
        f"projection.{DATE_PARTITION}.type": "date",
        f"projection.{DATE_PARTITION}.format": "yyyy-MM-dd",
        f"projection.{DATE_PARTITION}.range": f"{ARCHIVE_PROJECTION_START},NOW",
        f"projection.{DATE_PARTITION}.interval": "1",
        f"projection.{DATE_PARTITION}.interval.unit": "DAYS",
        "storage.location.template": location_template(bucket_name),
    }


def telemetry_storage(bucket_name: str) -> glue.CfnTable.StorageDescriptorProperty:
    """How Athena reads what Firehose wrote: GZIP newline-delimited JSON under the archive
    prefix, one column per telemetry field; a malformed line is skipped, not a failed query."""
    return glue.CfnTable.StorageDescriptorProperty(
        location=f"s3://{bucket_name}/{names.ARCHIVE_PREFIX.split('/')[0]}/",
        input_format="org.apache.hadoop.mapred.TextInputFormat",
        output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        compressed=True,
        serde_info=glue.CfnTable.SerdeInfoProperty(
            serialization_library="org.openx.data.jsonserde.JsonSerDe",
            parameters={"ignore.malformed.json": "true"},
        ),
        columns=[
            glue.CfnTable.ColumnProperty(name=name, type=type_)
            for name, type_ in telemetry_columns()
        ],
    )


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
        self.table = self._telemetry_table(bucket)

    def _delivery_stream(
        self, archive: ArchiveConfig, stream: kinesis.IStream, bucket: s3.IBucket
    ) -> firehose.DeliveryStream:
        """Firehose reads the stream and writes GZIP objects partitioned by race (a jq query
        on each record) and arrival day, one reading per line so that Athena can split them."""
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
                dynamic_partitioning=firehose.DynamicPartitioningProps(enabled=True),
                processors=[
                    firehose.MetadataExtractionProcessor(
                        options=firehose.MetadataExtractionProcessorOptions(
                            json_parsing_engine=firehose.JsonParsingEngine.JQ_1_6,
                            metadata_extraction_query=names.ARCHIVE_PARTITION_QUERY,
                        ),
                        keys=list(ARCHIVE_PARTITION_KEYS),
                    ),
                    firehose.AppendDelimiterToRecordProcessor(),
                ],
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

    def _telemetry_table(self, bucket: s3.IBucket) -> glue.CfnTable:
        """The Athena table over the archive: partition keys named as the Firehose prefix's
        placeholders, partitions projected rather than registered."""
        return glue.CfnTable(
            self,
            "Telemetry",
            catalog_id=Stack.of(self).account,
            database_name=self.database.ref,
            table_input=glue.CfnTable.TableInputProperty(
                name=names.GLUE_TABLE,
                description="One row per telemetry reading as delivered by Firehose",
                table_type="EXTERNAL_TABLE",
                parameters=projection_parameters(bucket.bucket_name),
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=RACE_PARTITION, type="string"),
                    glue.CfnTable.ColumnProperty(name=DATE_PARTITION, type="string"),
                ],
                storage_descriptor=telemetry_storage(bucket.bucket_name),
            ),
        )
