"""What every event source mapping shares: reading a partial batch response, and batching."""

from __future__ import annotations

import time
from typing import Any

import pytest

from local.aws.lambda_esm import Batch, reported_failures

IDS = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, ()),
        ({}, ()),
        ("not a dict", ()),
        ({"batchItemFailures": None}, ()),
        ({"batchItemFailures": []}, ()),
        ({"batchItemFailures": [{"itemIdentifier": "c"}, {"itemIdentifier": "b"}]}, (1, 2)),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, (0, 1, 2)),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, (0, 1, 2)),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, (0, 1, 2)),
        ({"batchItemFailures": [{}]}, (0, 1, 2)),
        ({"batchItemFailures": "b"}, (0, 1, 2)),
    ],
)
def test_a_partial_batch_response_is_read_as_lambda_reads_it(response: Any, failed: Any) -> None:
    assert reported_failures(response, IDS) == failed


def test_a_batch_is_ready_when_full_or_when_its_window_has_passed() -> None:
    full: Batch[str] = Batch(3, 60.0)
    full.add(["a", "b"])
    assert (full.ready(), full.room) == (False, 1)
    full.add(["c"])
    assert full.ready()
    assert full.take() == ["a", "b", "c"]
    assert (len(full), full.first_at) == (0, None)

    windowed: Batch[str] = Batch(10, 0.05)
    windowed.add(["a"])
    assert not windowed.ready()
    time.sleep(0.06)
    assert windowed.ready()


def test_a_batch_stays_within_the_payload_limit_and_always_takes_one() -> None:
    batch: Batch[str] = Batch(10, 0.0, max_bytes=10, size_of=len, overhead_bytes=2)
    batch.add(["aaaa", "bbbb", "cccccccccccc", "d"])
    assert batch.ready()
    assert batch.take() == ["aaaa", "bbbb"]  # 2 + 4 + 4: the next would pass 10
    assert batch.take() == ["cccccccccccc"]  # too big alone: still sent, by itself
    assert batch.drain() == ["d"]
    assert len(batch) == 0
