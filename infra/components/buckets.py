"""S3 buckets: public access blocked, TLS enforced, encrypted, access-logged, with a lifecycle."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct


def _removal(retain: bool) -> dict[str, object]:
    if retain:
        return {"removal_policy": RemovalPolicy.RETAIN}
    return {"removal_policy": RemovalPolicy.DESTROY, "auto_delete_objects": True}


class AccessLogsBucket(Construct):
    """Receives the server access logs of the other buckets."""

    def __init__(
        self, scope: Construct, construct_id: str, *, retain: bool, expiration_days: int
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(expiration_days))],
            **_removal(retain),  # type: ignore[arg-type]
        )


class SecureBucket(Construct):
    """A private, encrypted, TLS-only bucket that logs its access and expires its objects."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        access_logs: s3.IBucket,
        log_prefix: str,
        retain: bool,
        lifecycle_rules: Sequence[s3.LifecycleRule],
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=log_prefix,
            lifecycle_rules=list(lifecycle_rules),
            **_removal(retain),  # type: ignore[arg-type]
        )
