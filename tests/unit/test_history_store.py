"""The history book's contract (shared.ports.HistoryBook), shared by the DynamoDB adapter (in moto,
on the real table definition) and its in-memory twin: a personal best is claimed only by more
points or by the same race again, a class's records are saved only on the version they were
read at, results are one item per rider and race, and a rider's history pages newest first."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared import keys
from shared.history import Best, ClassRecords, RaceRef, RiderResult
from shared.history_store import DynamoHistoryStore
from shared.memory import InMemoryHistoryStore
from shared.ports import HistoryBook, TransientError
from shared.tables import create_tables
from tests.support.faults import FaultInjector

TABLE = "standings"


def race(n: int, duration_s: int = 600) -> RaceRef:
    return RaceRef(f"race-{n}", f"Race {n}", 1_700_000_000_000 + n * 3_600_000, duration_s)


def best(rider: str, points: int, n: int = 1, class_id: int = 1, duration_s: int = 600) -> Best:
    return Best(rider, rider.title(), class_id, points, 300, race(n, duration_s))


def result(rider: str, n: int, points: int = 900) -> RiderResult:
    return RiderResult(rider, rider.title(), race(n), 2, n, 1, points, 300, n % 2 == 0, n == 3)


@pytest.fixture(params=["memory", "dynamodb"])
def book(request: pytest.FixtureRequest) -> Iterator[HistoryBook]:
    if request.param == "memory":
        yield InMemoryHistoryStore()
        return
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(ddb, TABLE, "idempotency")
        yield DynamoHistoryStore(ddb, TABLE)


def test_the_first_result_in_a_class_and_length_is_a_personal_best(book: HistoryBook) -> None:
    assert book.claim_personal_best(best("ann", 500))
    # another class, another race length: bests of their own
    assert book.claim_personal_best(best("ann", 100, n=2, class_id=2))
    assert book.claim_personal_best(best("ann", 100, n=3, duration_s=3_600))


def test_only_more_points_beat_a_personal_best(book: HistoryBook) -> None:
    assert book.claim_personal_best(best("ann", 500, n=1))
    assert not book.claim_personal_best(best("ann", 500, n=2))  # equalling is not a best
    assert not book.claim_personal_best(best("ann", 499, n=3))
    assert book.claim_personal_best(best("ann", 501, n=4))
    assert not book.claim_personal_best(best("ann", 500, n=5))


def test_a_race_claims_its_personal_best_again_but_never_lowers_a_better_one(
    book: HistoryBook,
) -> None:
    assert book.claim_personal_best(best("ann", 500, n=1))
    assert book.claim_personal_best(best("ann", 500, n=1))  # the same close, run again
    assert book.claim_personal_best(best("ann", 700, n=2))
    assert not book.claim_personal_best(best("ann", 500, n=1))  # race 1 retried after race 2
    assert book.claim_personal_best(best("ann", 700, n=2))
    assert not book.claim_personal_best(best("ann", 600, n=3))


def test_records_are_empty_at_version_0_until_saved(book: HistoryBook) -> None:
    assert book.records(1, 600, consistent=True) == ClassRecords(1, 600)


def test_records_are_saved_only_on_the_version_read(book: HistoryBook) -> None:
    first = ClassRecords(1, 600).merged([best("ann", 900), best("bob", 900), best("cat", 10)])
    assert book.save_records(first)
    assert not book.save_records(first)  # version 1 again: stored already
    assert book.records(1, 600, consistent=True) == first
    second = first.merged([best("dan", 950, n=2)])
    other = first.merged([best("eve", 990, n=3)])
    assert book.save_records(second)
    assert not book.save_records(other)  # read at version 1, version 2 is stored
    assert book.records(1, 600) == second
    assert book.records(1, 600).version == 2
    # another class and another race length are records of their own
    assert book.records(2, 600) == ClassRecords(2, 600)
    assert book.records(1, 3_600) == ClassRecords(1, 3_600)


def test_results_are_one_item_per_rider_and_race_however_often_put(book: HistoryBook) -> None:
    results = [result("ann", n) for n in range(1, 4)] + [result("bob", 2)]
    book.put_results(results)
    book.put_results(results)
    page, after = book.rider_results("ann", 10)
    assert (page, after) == ([result("ann", 3), result("ann", 2), result("ann", 1)], None)
    assert book.rider_results("bob", 10) == ([result("bob", 2)], None)
    assert book.rider_results("cat", 10) == ([], None)


def test_history_pages_newest_first_and_the_last_page_has_no_next(book: HistoryBook) -> None:
    book.put_results([result("ann", n) for n in range(1, 8)])
    book.claim_personal_best(best("ann", 900))  # in the rider's partition, not in the history
    pages: list[list[int]] = []
    after: str | None = None
    while True:
        page, after = book.rider_results("ann", 3, after)
        pages.append([r.rank_overall for r in page])
        if after is None:
            break
    assert pages == [[7, 6, 5], [4, 3, 2], [1]]
    # exactly a page's worth: no next page
    assert book.rider_results("ann", 7)[1] is None
    assert book.rider_results("ann", 6)[1] is not None


def test_a_result_keeps_every_field(book: HistoryBook) -> None:
    r = replace(result("ann", 3), personal_best=True, record=True, name="Ann Ö")
    book.put_results([r])
    assert book.rider_results("ann", 1) == ([r], None)


# --- the DynamoDB adapter's requests --------------------------------------------------------
@pytest.fixture
def dynamo() -> Iterator[tuple[DynamoHistoryStore, FaultInjector, Any]]:
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        faults = FaultInjector()
        faults.attach(session.events)
        ddb = session.client("dynamodb")
        create_tables(ddb, TABLE, "idempotency")
        yield DynamoHistoryStore(ddb, TABLE), faults, ddb


def test_results_are_written_25_an_item_batch(
    dynamo: tuple[DynamoHistoryStore, FaultInjector, Any],
) -> None:
    store, faults, _ = dynamo
    store.put_results([result(f"r{i:02d}", 1) for i in range(60)])
    assert faults.calls["BatchWriteItem"] == 3
    assert sum(len(store.rider_results(f"r{i:02d}", 5)[0]) for i in range(60)) == 60


def test_the_items_are_keyed_as_shared_keys_says(
    dynamo: tuple[DynamoHistoryStore, FaultInjector, Any],
) -> None:
    store, _, ddb = dynamo
    store.claim_personal_best(best("ann", 900, n=4))
    store.save_records(ClassRecords(1, 600).merged([best("ann", 900, n=4)]))
    store.put_results([result("ann", 4)])
    found = {(i["pk"]["S"], i["sk"]["S"]) for i in ddb.scan(TableName=TABLE)["Items"]}
    assert found == {
        tuple(keys.best_key("ann", 1, 600).values()),
        tuple(keys.records_key(1, 600).values()),
        tuple(keys.result_key("ann", race(4).starts_at, "race-4").values()),
    }
    assert found == {
        ("RIDER#ann", "BEST#1#00600"),
        ("RECORDS#1#00600", "RECORDS"),
        ("RIDER#ann", "RESULT#1700014400000#race-4"),
    }


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("PutItem", lambda s: s.claim_personal_best(best("ann", 1))),
        ("PutItem", lambda s: s.save_records(ClassRecords(1, 600).merged([best("ann", 1)]))),
        ("GetItem", lambda s: s.records(1, 600, consistent=True)),
        ("BatchWriteItem", lambda s: s.put_results([result("ann", 1)])),
        ("Query", lambda s: s.rider_results("ann", 5)),
    ],
)
def test_a_throttled_request_is_a_transient_error(
    dynamo: tuple[DynamoHistoryStore, FaultInjector, Any], operation: str, call: Any
) -> None:
    store, faults, _ = dynamo
    faults.fail(operation, code="ThrottlingException")
    with pytest.raises(TransientError):
        call(store)


def test_in_memory_faults_fail_the_next_call_of_a_method() -> None:
    store = InMemoryHistoryStore()
    store.fail_next["claim_personal_best"] = 1
    with pytest.raises(TransientError, match="claim_personal_best: injected failure"):
        store.claim_personal_best(best("ann", 1))
    assert store.claim_personal_best(best("ann", 1))
    assert store.calls == {"claim_personal_best": 2}
