"""The archive's queries: an Athena workgroup per environment, its results bucket, and the
queries of :mod:`shared.archive_sql` as named queries in it (the SQL the local audit and the
tests run with DuckDB, the same text)."""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.components.buckets import SecureBucket
from shared import names
from shared.archive_sql import QUERIES

ENGINE_VERSION: Final = "Athena engine version 3"
RESULTS_PREFIX: Final = "results/"
DESCRIPTION_LIMIT: Final = 1024
"""The longest description a named query may have."""


class QueryResults(Construct):
    """Where the workgroup writes query results: private, encrypted, TLS only, access-logged,
    each result expired after a few days (a result is rerun, never kept). Kept on stack
    deletion where the environment keeps its data, as every bucket is."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        access_logs: s3.IBucket,
        expiration_days: int,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = SecureBucket(
            self,
            "Results",
            access_logs=access_logs,
            log_prefix="athena-results/",
            retain=retain,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        ).bucket


class ArchiveQueries(Construct):
    """The environment's workgroup (its settings enforced on every query) and the named
    queries, each in the archive's database."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_name: str,
        database: glue.CfnDatabase,
        results: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=names.athena_workgroup_name(env_name),
            description="Breakaway archive queries (the audit, docs/queries.md)",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version=ENGINE_VERSION
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=results.s3_url_for_object(RESULTS_PREFIX),
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
        self.named_queries = []
        for query in QUERIES:
            named = athena.CfnNamedQuery(
                self,
                query.name,
                name=query.name,
                description=query.answers[:DESCRIPTION_LIMIT],
                database=database.ref,
                query_string=query.sql,
                work_group=self.workgroup.ref,
            )
            self.named_queries.append(named)
