"""End to end through the local stack: a race created and entered, ridden (simulator -> MQTT or
Kinesis -> processor -> API), and closed by its own schedule (scheduler -> closer -> placings).

One stack for the module (started in this process exactly as ``breakaway up`` starts it, with
a fault-injecting wrapper around the real stream processor). Races are small and time
compressed (the simulator starts the race that much earlier, so that no fair reading runs ahead
of the race clock); every check reads the standings back through the API and compares them with
the simulator's ground truth, for every rider, and once the race has closed itself, every
placing, overall and per class.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gzip
import io
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local import cli
from local.api_client import all_results, get_json
from local.aws.lambda_runtime import Handler
from local.aws.moto_server import aws_client
from local.race import RaceSpec, run_race, wait_finished
from local.stack import LocalStack, StackOptions
from shared import items, keys
from shared.contract import CLASS_IDS, Telemetry
from shared.counting import Refusal
from shared.names import archive_prefix
from shared.placings import OVERALL
from simulator.truth import load_ground_truth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-stack")]


class Faults:
    """Per-invocation plan for the processor: 'pass', 'raise' (a transient function error) or
    'half' (process the first half, report the rest as failed, as a timeout would leave it)."""

    def __init__(self) -> None:
        self.plan: collections.deque[str] = collections.deque()
        self.done: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def wrap(self, handler: Handler) -> Handler:
        def wrapped(event: dict[str, Any], context: Any) -> Any:
            records = event["Records"]
            with self.lock:
                action = self.plan[0] if self.plan else "pass"
                if action == "half" and len(records) < 2:
                    action = "pass"  # a batch of one has no half: the fault waits for the next
                elif self.plan:
                    self.plan.popleft()
                self.done[action] += 1
            if action == "raise":
                raise RuntimeError("injected transient failure")
            if action == "half":
                half = len(records) // 2
                first = handler({"Records": records[:half]}, context) or {}
                failures = list(first.get("batchItemFailures") or [])
                failures += [
                    {"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in records[half:]
                ]
                return {"batchItemFailures": failures}
            return handler(event, context)

        return wrapped


@pytest.fixture(scope="module")
def faults() -> Faults:
    return Faults()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, faults: Faults) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("stack")
    options = StackOptions(
        state_dir=state,
        batch_size=100,
        batching_window_s=0.2,
        archive_interval_s=0.5,
        processor_wrapper=faults.wrap,
    )
    with LocalStack(options) as s:
        yield s


def race(stack: LocalStack, tmp_path: Path, **spec: Any) -> Any:
    assert stack.endpoints is not None
    spec.setdefault("riders", 25)
    spec.setdefault("duration", 20)
    spec.setdefault("time_compression", 10.0)
    drain_dead_letters(stack)
    report = run_race(
        RaceSpec(**spec),
        stack.options.state_dir / "endpoints.json",
        stack.endpoints.api_url,
        tmp_path / "truth.json",
        wait_idle=lambda t: stack.wait_idle(timeout=t),
        drain_timeout_s=60,
    )
    assert report.simulator_exit == 0, report.simulator_output
    assert report.drained
    assert report.closed, "the race did not close itself"
    assert report.placing_differences == []
    return report


def drain_dead_letters(stack: LocalStack) -> list[dict[str, Any]]:
    """Every dead letter in the processor's queue, taken off it."""
    assert stack.endpoints is not None
    sqs = aws_client("sqs", stack.endpoints.aws_endpoint_url)
    url = stack.endpoints.dead_letter_queue_url
    letters: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return letters
        letters.extend(json.loads(m["Body"]) for m in got)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )


def by_reason(letters: list[dict[str, Any]]) -> dict[Refusal, int]:
    counts: collections.Counter[Refusal] = collections.Counter()
    for letter in letters:
        (reason,) = [r for r in Refusal if letter["reason"].startswith(r.text + ":")]
        counts[reason] += 1
    return dict(counts)


CHEATS = (
    ("future", 3),
    ("past-duration", 3),
    ("wrong-device", 3),
    ("spoof-device", 3),
    ("unknown-race", 2),
    ("unentered", 2),
    ("after-final", 3),
)


@pytest.mark.parametrize("transport", ["mqtt", "kinesis"])
def test_standings_equal_the_ground_truth_despite_resends_and_reordering(
    stack: LocalStack, tmp_path: Path, transport: str
) -> None:
    """A race created, its riders entered (two who never ride), ridden with resends, reordering
    and every kind of cheating reading, closed by its own schedule: the standings and then the
    placings read through the API equal the ground truth, each cheating reading is a dead
    letter with the rule it broke, and a reading after the close changes nothing."""
    race_id = f"e2e-{transport}"
    cheats = tuple(c for c in CHEATS if transport == "mqtt" or c[0] != "spoof-device")
    report = race(
        stack,
        tmp_path,
        race_id=race_id,
        transport=transport,
        duration=60,
        time_compression=2.0,  # the race clock is 30 s ahead at the start: a reading from the
        # future (20 s ahead of it) must still be a second inside the race
        duplicate_fraction=0.1,
        reorder_window=30,
        seed=6,  # a seed whose races have riders who stop early (readings after their final)
        cheats=cheats,
        no_shows=2,
        connections=3 if transport == "mqtt" else 0,  # a wrong device needs another device
    )
    assert report.differences == []
    assert report.riders_checked == 25  # every entered rider, the two who never rode included
    assert report.placings_checked == 2 * 25  # overall, and each rider in its class
    assert report.finished == 23  # each rider who rode: the final counted once despite resends
    assert stack.endpoints is not None
    assert wait_finished(stack.endpoints.api_url, race_id, 23, timeout_s=5) == 23
    assert "resent by fault injection" in report.simulator_output
    assert "(0 resent" not in report.simulator_output
    truth = load_ground_truth(tmp_path / "truth.json")
    letters = drain_dead_letters(stack)
    assert by_reason(letters) == truth.dead_letters
    assert sum(truth.dead_letters.values()) == sum(n for c, n in cheats if c != "spoof-device")
    assert truth.spoofed_counted == (3 if transport == "mqtt" else 0)
    placings = all_results(stack.endpoints.api_url, race_id)
    assert [p["outcome"] for p in placings].count("DNS") == 2

    late_reading_after_the_close(stack, race_id, placings)
    history_follows_the_placings(stack, race_id, placings)
    the_audit_is_exact_and_names_a_tampered_placing(stack, race_id)


def history_follows_the_placings(
    stack: LocalStack, race_id: str, placings: list[dict[str, Any]]
) -> None:
    """The close kept each ranked rider's result in their history, read through the history
    route: the ranks overall and in class, points, seconds, class and both flags the results
    show; a rider who did not start has no result for the race."""
    assert stack.endpoints is not None
    api = stack.endpoints.api_url
    in_class = {p["riderId"]: p["rank"] for c in CLASS_IDS for p in all_results(api, race_id, c)}
    fields = ("points", "seconds", "classId", "personalBest", "record")
    for p in placings:
        history = get_json(f"{api}/riders/{p['riderId']}/results?limit=100")["results"]
        mine = [e for e in history if e["race"]["raceId"] == race_id]
        if p["outcome"] != "ranked":
            assert mine == [], p
            continue
        (entry,) = mine
        assert (entry["rankOverall"], entry["rankClass"], *(entry[f] for f in fields)) == (
            p["rank"],
            in_class[p["riderId"]],
            *(p[f] for f in fields),
        )


def late_reading_after_the_close(
    stack: LocalStack, race_id: str, placings: list[dict[str, Any]]
) -> None:
    """A valid-looking reading of an entered rider, put on the stream after the close: a dead
    letter ("race closed"), and the placings as they were."""
    assert stack.endpoints is not None
    ep = stack.endpoints
    rider = placings[0]["riderId"]
    reading = Telemetry(
        v=2,
        event_id="after-the-close",
        race_id=race_id,
        rider_id=rider,
        second=1,
        cadence=200,
        resistance=100,
        device_timestamp=int(time.time() * 1000),
        event="update",
    )
    kinesis = aws_client("kinesis", ep.aws_endpoint_url)
    kinesis.put_record(StreamName=ep.stream_name, Data=reading.to_json(), PartitionKey=rider)
    assert stack.wait_idle(timeout=30)
    (letter,) = drain_dead_letters(stack)
    assert letter["reason"].startswith(f"race closed: race {race_id} closed at ")
    assert all_results(ep.api_url, race_id) == placings


def audit(stack: LocalStack, race_id: str) -> tuple[int, list[str]]:
    """``breakaway audit --race`` against the local stack: exit status, lines printed."""
    out = io.StringIO()
    endpoints = stack.options.state_dir / "endpoints.json"
    with contextlib.redirect_stdout(out):
        status = cli.main(["audit", "--race", race_id, "--endpoints-file", str(endpoints)])
    return status, out.getvalue().splitlines()


def the_audit_is_exact_and_names_a_tampered_placing(stack: LocalStack, race_id: str) -> None:
    """The archive (every record the stream carried: resends, reordered, cheating, the reading
    after the close) recounted by the processor's rules gives the stored placings, rider by
    rider; a stored placing changed by a point is named."""
    assert stack.archiver is not None
    assert stack.endpoints is not None
    stack.archiver.flush()
    status, lines = audit(stack, race_id)
    assert (status, lines[-1]) == (0, "exact"), lines
    assert "placings compared" in lines[0]
    db = aws_client("dynamodb", stack.endpoints.dynamodb_endpoint_url)
    table = stack.endpoints.standings_table
    key = {k: {"S": v} for k, v in keys.placings_key(race_id, OVERALL, 0).items()}
    item = db.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    rows, total = items.placings_from_item(item)
    tampered = dataclasses.replace(rows[0], points=rows[0].points + 1)
    db.put_item(
        TableName=table,
        Item=items.placings_item(race_id, OVERALL, 0, total, [tampered, *rows[1:]]),
    )
    try:
        status, lines = audit(stack, race_id)
    finally:
        db.put_item(TableName=table, Item=item)
    assert status == 1
    assert lines[1:] == [
        f"ALL {tampered.rider_id}: points stored {tampered.points} != archive {rows[0].points}"
    ]


def test_transient_processor_failures_lose_nothing_and_double_count_nothing(
    stack: LocalStack, tmp_path: Path, faults: Faults
) -> None:
    assert stack.mapping is not None
    errors_before = stack.mapping.stats.function_errors
    partial_before = stack.mapping.stats.partial_failures
    faults.plan.extend(["pass", "raise", "half", "pass", "raise", "raise", "half", "half"])
    report = race(stack, tmp_path, race_id="e2e-faults", transport="kinesis", seed=11)
    assert not faults.plan, "every planned fault was injected"
    assert faults.done["raise"] >= 3
    assert faults.done["half"] >= 3
    assert stack.mapping.stats.function_errors - errors_before == faults.done["raise"]
    assert stack.mapping.stats.partial_failures - partial_before >= faults.done["half"]
    assert stack.mapping.stats.records_discarded == 0
    assert report.differences == []
    assert report.riders_checked == 25
    assert report.finished == 25


def test_a_bridge_killed_mid_race_and_started_again_leaves_the_standings_exact(
    stack: LocalStack, tmp_path: Path
) -> None:
    """SIGKILL the rule bridge while the riders publish, start it again a second later: its
    persistent session kept what was published meanwhile, its journal what it had taken and
    not put, and what comes twice counts once. The race rides in a thread; the bridge is
    started again from this one (a child of the stack dies with the thread that started it)."""
    bridge = stack.bridge
    assert bridge is not None
    assert bridge.proc is not None
    riders, put_before = 40, bridge.stats.put
    result: dict[str, Any] = {}

    def ride() -> None:
        try:
            result["report"] = race(
                stack,
                tmp_path,
                race_id="e2e-bridge-killed",
                transport="mqtt",
                riders=riders,
                duration=60,
                time_compression=6.0,
                seed=13,
                grace_s=20,  # what the broker kept for the bridge arrives well after the ride
            )
        except BaseException as exc:  # reported below, in the test's thread
            result["error"] = exc

    rider = threading.Thread(target=ride, name="race", daemon=True)
    rider.start()
    try:
        deadline = time.monotonic() + 60
        while bridge.stats.put < put_before + 5 * riders:  # five seconds of the race are in
            assert rider.is_alive(), "the race ended before the bridge had five seconds of it"
            assert time.monotonic() < deadline, "the race never got going"
            time.sleep(0.02)
        assert bridge.proc is not None
        os.kill(bridge.proc.pid, signal.SIGKILL)
        bridge.proc.wait(timeout=10)
        time.sleep(1.0)  # the riders go on publishing: the broker keeps it for the bridge
        bridge.start()
    finally:
        rider.join(300)
    if "error" in result:
        raise result["error"]
    report = result["report"]
    assert report.differences == []
    assert report.riders_checked == riders
    assert report.finished == riders


def test_archive_holds_every_reading_once_per_delivery_in_the_firehose_layout(
    stack: LocalStack, tmp_path: Path
) -> None:
    race_id = "e2e-archive"
    report = race(stack, tmp_path, race_id=race_id, transport="kinesis", duplicate_fraction=0.2)
    assert report.differences == []
    assert stack.archiver is not None
    assert stack.endpoints is not None
    stack.archiver.flush()
    ep = stack.endpoints
    # what the stream holds for this race: each delivery (a resend is a second record)
    kinesis = aws_client("kinesis", ep.aws_endpoint_url)
    in_stream: collections.Counter[bytes] = collections.Counter()
    for shard in kinesis.list_shards(StreamName=ep.stream_name)["Shards"]:
        it = kinesis.get_shard_iterator(
            StreamName=ep.stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            page = kinesis.get_records(ShardIterator=it, Limit=10_000)
            for r in page["Records"]:
                if json.loads(r["Data"])["raceId"] == race_id:
                    in_stream[r["Data"]] += 1
            it = page["NextShardIterator"]
            if not page["Records"]:
                break
    s3 = aws_client("s3", ep.aws_endpoint_url)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    prefix = archive_prefix(today)  # one prefix a day, every race's records in it
    archived: collections.Counter[bytes] = collections.Counter()
    objects = s3.list_objects_v2(Bucket=ep.archive_bucket, Prefix=prefix).get("Contents", [])
    assert objects
    for obj in objects:
        assert obj["Key"].endswith(".gz")
        body = s3.get_object(Bucket=ep.archive_bucket, Key=obj["Key"])["Body"].read()
        lines = gzip.decompress(body).splitlines()
        archived.update(line for line in lines if json.loads(line).get("raceId") == race_id)
    assert archived == in_stream
    assert sum(archived.values()) > len(set(archived))  # the resends are there too
    truth = load_ground_truth(tmp_path / "truth.json")
    distinct = {(json.loads(line)["riderId"], json.loads(line)["second"]) for line in archived}
    assert len(distinct) == sum(r.seconds for r in truth.riders.values())


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.browser
def test_live_page_in_headless_chromium_shows_the_riders_of_a_running_race(
    stack: LocalStack, tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    assert stack.endpoints is not None
    race_id = "e2e-live-page"
    result: dict[str, Any] = {}
    rider = threading.Thread(
        target=lambda: result.update(
            report=race(
                stack,
                tmp_path,
                race_id=race_id,
                transport="mqtt",
                riders=8,
                duration=30,
                time_compression=1.0,
            )
        ),
        daemon=True,
    )
    rider.start()
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                user_data_dir=str(tmp_path / "chromium-profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"{stack.endpoints.api_url}?race={race_id}")
                expect(page.locator("#rows tr")).to_have_count(8, timeout=30_000)
                shown = page.evaluate(
                    "() => [...document.querySelectorAll('#rows tr')].map(t => t.dataset.riderId)"
                )
                assert rider.is_alive(), "the race was still running when the page showed it"
                assert errors == []
            finally:
                context.close()
    finally:
        rider.join(120)
    assert sorted(shown) == [f"rider-{i:05d}" for i in range(8)]
    assert result["report"].differences == []
