"""Build the whole CDK app: config from cdk.json context + environment name, the stacks, and
cdk-nag. Makes no network call, so it synthesizes offline with no credentials."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Environment, Tags

from infra.config import CONTEXT_KEY, ENV_CONTEXT_KEY, BreakawayConfig, load_config
from infra.nag import attach_checks
from infra.stacks import AppStack, DataStack, EdgeStack
from shared import names
from shared.names import DEFAULT_ENV


def config_from_app(app: App) -> BreakawayConfig:
    env_name = app.node.try_get_context(ENV_CONTEXT_KEY) or DEFAULT_ENV
    environments = app.node.try_get_context(CONTEXT_KEY)
    return load_config(str(env_name), environments)


def deployment_environment() -> Environment | None:
    """The CLI's account and region when it has them; env-agnostic templates offline."""
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    if account and region:
        return Environment(account=account, region=region)
    return None


def build_app(
    *, outdir: str | None = None, context: Mapping[str, Any] | None = None
) -> tuple[App, DataStack, AppStack]:
    """The app with its data and app stacks and the cdk-nag checks, from ``context``
    (cdk.json's, or the CLI's when None). It synthesizes nothing: the caller decides when."""
    app = App(
        outdir=outdir,
        context=dict(context) if context is not None else None,
        # cfn-lint checks every template (make synth, the tests); CDK's built-in CloudFormation
        # validation covers the same ground at a large cost in synth time (docs/decisions.md).
        builtin_cloud_formation_validation=False,
    )
    config = config_from_app(app)
    env = deployment_environment()
    data = DataStack(app, config=config, env=env)
    edge = (  # the viewers' web ACL: CloudFront's must be created in us-east-1
        EdgeStack(app, config=config, account=env.account if env else None)
        if config.cdn.waf_enabled
        else None
    )
    stateless = AppStack(app, config=config, data=data, edge=edge, env=env)
    Tags.of(app).add("project", names.APP)
    Tags.of(app).add("environment", config.env_name)
    attach_checks(app)
    return app, data, stateless
