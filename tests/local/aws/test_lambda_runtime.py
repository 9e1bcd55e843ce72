"""The local stack runs each function in one execution environment: invocations take turns."""

from __future__ import annotations

import threading
import time
from typing import Any

from local.aws.lambda_runtime import OneEnvironment


def test_invocations_from_many_threads_never_overlap_and_all_answer() -> None:
    lock = threading.Lock()
    running, most = 0, 0

    def handler(event: dict[str, Any], context: Any) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.005)
        with lock:
            running -= 1
        return int(event["n"]) * 2

    function = OneEnvironment(handler)
    answers: dict[int, int] = {}

    def call(n: int) -> None:
        answers[n] = function({"n": n}, None)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert answers == {n: 2 * n for n in range(12)}
    assert most == 1


def test_each_new_environment_has_its_own_warm_state() -> None:
    from functions.stream_processor import handler as deployed
    from local.aws.lambda_runtime import new_environment

    first = new_environment("functions.stream_processor.handler", "shard-0")
    second = new_environment("functions.stream_processor.handler", "shard-1")
    warm = object()

    first.install(warm)

    assert first.runtime() is warm
    assert second.warm.value is None  # still cold: its first invocation builds its own
    assert deployed.warm.value is not warm


def test_a_mapping_takes_a_handler_or_an_environment_per_shard_not_both() -> None:
    import pytest

    from local.aws.kinesis_esm import KinesisEventSourceMapping, KinesisMappingConfig

    def handler(event: dict[str, Any], context: Any) -> None:
        return None

    config = KinesisMappingConfig(function_name="f")
    for given in ({}, {"handler": handler, "environment_factory": lambda _shard: handler}):
        with pytest.raises(ValueError, match="a handler or an environment factory, not both"):
            KinesisEventSourceMapping(
                kinesis=None, stream_name="s", config=config, region="r", **given
            )
