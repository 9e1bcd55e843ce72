#!/usr/bin/env python3
"""The CDK app entry point (cdk.json runs it): ``cdk synth -c env=dev|prod``."""

from __future__ import annotations

import os

from infra.application import build_app

if __name__ == "__main__":
    app, _data, _app_stack = build_app(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"))
    app.synth()
