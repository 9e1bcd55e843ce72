"""Lambda's runtime, locally: the context object and the execution environments of a function.

A handler the local stack invokes gets a :class:`LambdaContext` (the attributes and the
deadline Lambda gives it) and runs in an execution environment: :class:`OneEnvironment` (one
invocation at a time) around a fresh copy of its module (:func:`new_environment`: its own
globals and its own cold start). Unlike Lambda: no process or memory isolation, no timeout
enforced (the deadline is only reported), no layers, no concurrency limit beyond the pollers.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]
"""A Lambda handler: ``(event, context) -> response``."""

ACCOUNT_ID = "123456789012"
"""moto's default account: the local stack's ARNs use it."""


def function_arn(name: str, region: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"


@dataclass
class LambdaContext:
    function_name: str
    region: str
    timeout_s: float = 60.0
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return function_arn(self.function_name, self.region)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[{self.function_version}]{self.aws_request_id[:8]}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class OneEnvironment:
    """A function with one execution environment: its invocations take turns.

    Lambda never runs two invocations in one environment, and the handlers keep per-environment
    state in module globals (the warm runtime, Powertools' batch processor and resolver). The
    gateway's request threads queue here, as if the API's reserved concurrency were 1.
    (Before this existed, two shards' invocations sharing one batch processor lost readings at
    the end of a race.) The event source mapping gives each shard an environment of its own
    (:func:`new_environment`), so shards are processed in parallel, as in AWS.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self._lock:
            return self._handler(event, context)


def new_environment(module: str, name: str) -> ModuleType:
    """A fresh copy of a handler module, as a new execution environment has: its own module
    globals (the warm runtime, Powertools' processor and resolver) and its own cold start. The
    modules it imports are shared; they hold no per-environment state."""
    found = importlib.util.find_spec(module)
    if found is None or found.origin is None:
        raise ModuleNotFoundError(module)
    spec = importlib.util.spec_from_file_location(f"{module}[{name}]", found.origin)
    assert spec is not None
    assert spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fresh  # dataclasses and pydantic look their module up there
    spec.loader.exec_module(fresh)
    return fresh
