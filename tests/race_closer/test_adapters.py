"""The closer's adapters: the exact requests it sends, and how it treats partial answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.race_closer.adapters import DynamoTallyReader, IotNotifier, announcement
from shared import items, keys
from shared.placings import Tally
from shared.ports import TransientError
from tests.race_closer.conftest import PLACINGS


class FakeDynamo:
    """Answers BatchGetItem from ``stored`` (by partition key), leaving the first
    ``unprocessed`` keys of the first answer unprocessed; records every request."""

    def __init__(self, stored: dict[str, dict[str, Any]], unprocessed: int = 0) -> None:
        self.stored = stored
        self.unprocessed = unprocessed
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(("BatchGetItem", json.loads(json.dumps(kwargs))))
        ((table, request),) = kwargs["RequestItems"].items()
        held, self.unprocessed = request["Keys"][: self.unprocessed], 0
        found = [
            self.stored[k["pk"]["S"]]
            for k in request["Keys"][len(held) :]
            if k["pk"]["S"] in self.stored
        ]
        answer: dict[str, Any] = {"Responses": {table: found}}
        if held:
            answer["UnprocessedKeys"] = {table: {**request, "Keys": held}}
        return answer


def tally_item(rider: str, points: int, seconds: int) -> dict[str, Any]:
    return {"riderId": {"S": rider}, "points": {"N": str(points)}, "seconds": {"N": str(seconds)}}


def test_standings_are_read_strongly_consistent_points_and_seconds_only() -> None:
    db = FakeDynamo({"RACE#r1#RIDER#ann": tally_item("ann", 900, 300)})
    reader = DynamoTallyReader(db, "standings")
    assert reader.tallies("r1", ["ann", "bob"]) == {"ann": Tally(900, 300)}
    assert db.requests == [
        (
            "BatchGetItem",
            {
                "RequestItems": {
                    "standings": {
                        "Keys": [
                            {"pk": {"S": "RACE#r1#RIDER#ann"}, "sk": {"S": "STANDING"}},
                            {"pk": {"S": "RACE#r1#RIDER#bob"}, "sk": {"S": "STANDING"}},
                        ],
                        "ConsistentRead": True,
                        "ProjectionExpression": "#a0, #a1, #a2",
                        "ExpressionAttributeNames": {
                            "#a0": "riderId",
                            "#a1": "points",
                            "#a2": "seconds",
                        },
                    }
                }
            },
        )
    ]


def test_standings_are_asked_100_at_a_time_and_unprocessed_keys_again() -> None:
    riders = [f"r{i:03d}" for i in range(250)]
    stored = {f"RACE#r1#RIDER#{r}": tally_item(r, i, 1) for i, r in enumerate(riders)}
    db = FakeDynamo(stored, unprocessed=30)
    tallies = DynamoTallyReader(db, "standings").tallies("r1", riders)
    assert tallies == {r: Tally(i, 1) for i, r in enumerate(riders)}
    sizes = [len(req["RequestItems"]["standings"]["Keys"]) for _, req in db.requests]
    assert sizes == [100, 30, 100, 50]


def placings_pages(race: str, rows: list[Any]) -> dict[str, dict[str, Any]]:
    """The overall placings ``rows`` as stored, 5 to a page here, by partition key."""
    pages = [rows[i : i + 5] for i in range(0, len(rows), 5)]
    stored = [items.placings_item(race, "ALL", n, len(rows), page) for n, page in enumerate(pages)]
    return {item["pk"]["S"]: item for item in stored}


def test_stored_placings_are_read_consistently_first_page_then_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keys, "PLACINGS_PER_ITEM", 5)
    db = FakeDynamo(placings_pages("r1", PLACINGS))
    assert DynamoTallyReader(db, "standings").stored_placings("r1") == PLACINGS
    assert [r["RequestItems"]["standings"] for _, r in db.requests] == [
        {
            "Keys": [{"pk": {"S": "RACE#r1#PLACINGS#ALL#00000"}, "sk": {"S": "PLACINGS"}}],
            "ConsistentRead": True,
        },
        {
            "Keys": [{"pk": {"S": "RACE#r1#PLACINGS#ALL#00001"}, "sk": {"S": "PLACINGS"}}],
            "ConsistentRead": True,
        },
    ]


def test_stored_placings_missing_a_page_are_a_transient_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keys, "PLACINGS_PER_ITEM", 5)
    stored = placings_pages("r1", PLACINGS)
    del stored["RACE#r1#PLACINGS#ALL#00001"]
    with pytest.raises(TransientError, match="stored placings of r1: 5 of 8 read"):
        DynamoTallyReader(FakeDynamo(stored), "standings").stored_placings("r1")
    with pytest.raises(TransientError, match="stored placings of r1: none found"):
        DynamoTallyReader(FakeDynamo({}), "standings").stored_placings("r1")


class FakeIot:
    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.published: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> None:
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "x"}}, "Publish")
        self.published.append(kwargs)


def test_a_placing_is_published_on_the_riders_result_topic_at_qos_1() -> None:
    iot = FakeIot()
    IotNotifier(iot).publish("r1", PLACINGS[2])
    assert iot.published == [
        {
            "topic": "breakaway/races/r1/riders/cat/result",
            "qos": 1,
            "payload": b'{"raceId":"r1","riderId":"cat","name":"Cat","classId":1,'
            b'"outcome":"ranked","rank":3,"classRank":2,"points":700,"seconds":250,'
            b'"personalBest":true,"record":false}',
        }
    ]
    assert announcement("r1", PLACINGS[7]) == {
        "raceId": "r1", "riderId": "hal", "name": "Hal", "classId": 1, "outcome": "DSQ",
        "rank": None, "classRank": None, "points": 1000, "seconds": 300, "personalBest": False,
        "record": False,
    }  # fmt: skip


def test_a_failed_publish_is_a_transient_error() -> None:
    with pytest.raises(TransientError, match="IoT publish"):
        IotNotifier(FakeIot("ThrottlingException")).publish("r1", PLACINGS[0])
