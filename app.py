#!/usr/bin/env python3
"""The CDK app entry point: ``cdk synth -c env=dev|prod`` (cdk.json runs this file).

Run directly (``python app.py``) it reads cdk.json's context itself, as the CLI would.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from infra.application import build_app
from infra.config import ConfigError


def main() -> int:
    context = None
    if "CDK_CONTEXT_JSON" not in os.environ:
        context = json.loads((Path(__file__).parent / "cdk.json").read_text())["context"]
    try:
        app, _data, _stateless = build_app(
            outdir=os.environ.get("CDK_OUTDIR", "cdk.out"), context=context
        )
    except ConfigError as exc:
        print(f"breakaway config: {exc}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
