"""The DynamoDB adapter's BatchGetItem: keys DynamoDB leaves unprocessed are asked again."""

from __future__ import annotations

from typing import Any

import pytest

from functions.leaderboard_api.adapters import BATCH_GET_RETRY, DynamoLeaderboardReader
from shared import items, keys
from shared.ports import TransientError
from tests.leaderboard_api.helpers import EXPIRES, standing


class BatchGetStub:
    """A client whose BatchGetItem answers one key per call and leaves the rest unprocessed,
    ``stuck`` keys never."""

    def __init__(self, table: str, riders: list[str], stuck: int = 0) -> None:
        self.table = table
        self.stuck = stuck
        self.requests: list[list[dict[str, Any]]] = []
        stored = [items.standing_item(standing(r, 100), EXPIRES) for r in riders]
        self.items = {i[keys.PK]["S"]: i for i in stored}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        wanted = RequestItems[self.table]["Keys"]
        self.requests.append(wanted)
        served = wanted[:1] if len(wanted) > self.stuck else []
        left = wanted[len(served) :]
        found = [self.items[k[keys.PK]["S"]] for k in served]
        unprocessed = {self.table: {"Keys": left}} if left else {}
        return {"Responses": {self.table: found}, "UnprocessedKeys": unprocessed}


def _wanted(*riders: str) -> list[dict[str, Any]]:
    return [{k: {"S": v} for k, v in keys.standing_key("race-1", r).items()} for r in riders]


def test_unprocessed_keys_are_asked_again_until_all_are_read() -> None:
    stub = BatchGetStub("t", ["a", "b", "c"])
    reader = DynamoLeaderboardReader(stub, "t")  # type: ignore[arg-type]

    found = reader._batch_get(_wanted("a", "b", "c"))

    assert [len(r) for r in stub.requests] == [3, 2, 1]
    assert [items.standing_from_item(i).rider_id for i in found] == ["a", "b", "c"]


def test_keys_still_unprocessed_after_the_last_attempt_are_transient() -> None:
    stub = BatchGetStub("t", ["a", "b", "c"], stuck=2)
    reader = DynamoLeaderboardReader(stub, "t")  # type: ignore[arg-type]

    with pytest.raises(TransientError, match=r"^batch get: 2 left unprocessed after 5 attempts$"):
        reader._batch_get(_wanted("a", "b", "c"))

    assert len(stub.requests) == BATCH_GET_RETRY.attempts
