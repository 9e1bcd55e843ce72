"""The organiser's HTTP client against a fake API on 127.0.0.1 (every request recorded), and its
SigV4 signature with fixed credentials and a fixed clock."""

from __future__ import annotations

import datetime
import socket
from typing import Any

import botocore.auth
import pytest
from botocore.credentials import Credentials

from shared.races import Entry, NewRace
from simulator.organiser import (
    ApiError,
    ApiUnreachableError,
    Organiser,
    SigV4Signer,
    region_of,
)
from tests.simulator.fake_api import FakeState

Api = tuple[str, FakeState]
KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> datetime.datetime:
    """botocore's signer reads the time once per request; this is 2011-09-09 23:36:00 UTC."""
    when = datetime.datetime(2011, 9, 9, 23, 36, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda **_: when)
    return when


def new_race(race_id: str = "spring-gp") -> NewRace:
    return NewRace(
        race_id=race_id, name="Spring GP", starts_at=1_900_000_000_000, duration_s=1800, grace_s=45
    )


def entries(n: int, start: int = 0) -> list[Entry]:
    return [
        Entry(rider_id=f"r{i:05d}", name=f"Rider {i}", class_id=1 + i % 6, device_id=None)
        for i in range(start, start + n)
    ]


def test_create_sends_the_new_race_and_returns_the_api_s(api: Api) -> None:
    url, state = api
    race = Organiser(url).create_race(new_race())
    (req,) = state.requests
    assert (req.method, req.path, req.headers["content-type"]) == (
        "POST",
        "/races",
        "application/json",
    )
    assert req.body == {
        "raceId": "spring-gp",
        "name": "Spring GP",
        "startsAt": 1_900_000_000_000,
        "durationS": 1800,
        "graceS": 45,
    }
    assert race["closesAt"] == 1_900_000_000_000 + 1000 * (1800 + 45)


def test_entries_go_a_thousand_a_request_and_the_counts_add_up(api: Api) -> None:
    url, state = api
    organiser = Organiser(url)
    organiser.create_race(new_race())
    assert organiser.enter("spring-gp", entries(2500)) == {"added": 2500, "updated": 0}
    assert organiser.enter("spring-gp", entries(1200, start=2000)) == {"added": 700, "updated": 500}
    posted = [r for r in state.requests if r.path == "/races/spring-gp/entries"]
    assert [len(r.body["entries"]) for r in posted] == [1000, 1000, 500, 1000, 200]
    assert posted[0].body["entries"][1] == {"riderId": "r00001", "name": "Rider 1", "classId": 2}
    first = posted[3].body["entries"][0]
    assert first == {"riderId": "r02000", "name": "Rider 2000", "classId": 3}


def test_a_device_is_sent_when_the_entry_names_one(api: Api) -> None:
    url, state = api
    organiser = Organiser(url)
    organiser.create_race(new_race())
    organiser.enter("spring-gp", [Entry(rider_id="ann", name="Ann", class_id=2, device_id="hub-1")])
    assert state.requests[-1].body == {
        "entries": [{"riderId": "ann", "name": "Ann", "classId": 2, "deviceId": "hub-1"}]
    }


def test_close_disqualify_list_and_read(api: Api) -> None:
    url, state = api
    organiser = Organiser(url)
    organiser.create_race(new_race())
    organiser.enter("spring-gp", entries(2))
    assert organiser.close("spring-gp")["raceId"] == "spring-gp"
    organiser.disqualify("spring-gp", "r00001")
    assert organiser.races(status="scheduled", limit=5)["races"][0]["raceId"] == "spring-gp"
    assert organiser.race("spring-gp")["entrants"] == 2
    calls = [(r.method, r.path, r.query, r.body) for r in state.requests[2:]]
    assert calls == [
        ("POST", "/races/spring-gp/close", {}, None),
        ("POST", "/races/spring-gp/entries/r00001/disqualify", {}, None),
        ("GET", "/races", {"limit": "5", "status": "scheduled"}, None),
        ("GET", "/races/spring-gp", {}, None),
    ]
    assert all(r.headers["accept"] == "application/json" for r in state.requests)
    assert "authorization" not in state.requests[0].headers  # the local stack: no credentials


def results(n: int) -> list[dict[str, Any]]:
    return [
        {
            "rank": i + 1,
            "riderId": f"r{i:05d}",
            "name": f"Rider {i}",
            "classId": 1 + i % 2,
            "points": 10_000 - i,
            "seconds": 60,
            "outcome": "ranked",
        }
        for i in range(n)
    ]


def test_results_follow_the_cursor_to_the_last_page(api: Api) -> None:
    url, state = api
    organiser = Organiser(url)
    organiser.create_race(new_race())
    state.results["spring-gp"] = results(250)
    assert organiser.results("spring-gp") == results(250)
    pages = [r.query for r in state.requests if r.path.endswith("/results")]
    assert pages == [
        {"limit": "100"},
        {"limit": "100", "cursor": "100"},
        {"limit": "100", "cursor": "200"},
    ]
    class_two = organiser.results("spring-gp", class_id=2)
    assert [r["riderId"] for r in class_two] == [f"r{i:05d}" for i in range(1, 250, 2)]
    assert state.requests[-1].query["classId"] == "2"


def test_a_refusal_carries_the_api_s_status_and_message(api: Api) -> None:
    url, state = api
    organiser = Organiser(url)
    organiser.create_race(new_race())
    with pytest.raises(ApiError) as refused:
        organiser.create_race(new_race())
    assert (refused.value.status, refused.value.message) == (409, "race spring-gp exists")
    with pytest.raises(ApiError, match=r"^409: race spring-gp is not closed: its results"):
        organiser.results("spring-gp")
    state.fail["POST", "/races/spring-gp/close"] = (
        403,
        {"Message": "User: arn:aws:iam::1:user/x is not authorized to perform: execute-api:Invoke"},
    )
    with pytest.raises(ApiError, match=r"^403: User: arn:aws:iam::1:user/x is not authorized"):
        organiser.close("spring-gp")
    state.fail["GET", "/races"] = (502, "Bad gateway")
    with pytest.raises(ApiError, match=r'^502: "Bad gateway"$'):
        organiser.races()


def test_nothing_listening_is_one_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ApiUnreachableError, match=rf"cannot reach http://127\.0\.0\.1:{port} \("):
        Organiser(f"http://127.0.0.1:{port}/").race("r")
    with pytest.raises(ValueError, match="not an HTTP URL"):
        Organiser("file:///etc/passwd")


# --- SigV4 ----------------------------------------------------------------------------------------


def test_the_signer_reproduces_aws_s_published_sigv4_example(fixed_clock: Any) -> None:
    """AWS's General Reference signs this request (POST to IAM, 2011-09-09 23:36:00 UTC, the
    example key) with ``Signature=ced6826d...``: botocore's signer, as the organiser uses it."""
    signer = SigV4Signer(Credentials(KEY, SECRET), "us-east-1", service="iam")
    headers = signer.headers(
        "POST",
        "http://iam.amazonaws.com/",
        b"Action=ListUsers&Version=2010-05-08",
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert headers["X-Amz-Date"] == "20110909T233600Z"
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c"
    )


def test_an_organiser_request_is_signed_for_execute_api(fixed_clock: Any) -> None:
    """The signature, worked out by hand from the SigV4 spec: the canonical request
    ``POST``, ``/prod/races``, no query, the headers ``accept``, ``content-type``, ``host`` and
    ``x-amz-date``, and the body's SHA-256; the scope ``20110909/eu-west-1/execute-api/
    aws4_request``; the key derived from the secret by date, region, service."""
    signer = SigV4Signer(Credentials(KEY, SECRET), "eu-west-1")
    url = "https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod/races"
    body = b'{"raceId":"spring-gp","name":"Spring GP","startsAt":1900000000000,"durationS":1800}'
    headers = signer.headers(
        "POST", url, body, {"Accept": "application/json", "Content-Type": "application/json"}
    )
    assert headers == {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-Amz-Date": "20110909T233600Z",
        "Authorization": "AWS4-HMAC-SHA256 "
        "Credential=AKIDEXAMPLE/20110909/eu-west-1/execute-api/aws4_request, "
        "SignedHeaders=accept;content-type;host;x-amz-date, "
        "Signature=3561ddd0ffde3489f5dfd3be6cff12412e7ac9fc36e636b94723e26f96d6560c",
    }
    session = SigV4Signer(Credentials(KEY, SECRET, token="session-token"), "eu-west-1")
    with_token = session.headers("GET", url, None, {"Accept": "application/json"})
    assert with_token["X-Amz-Security-Token"] == "session-token"
    assert "x-amz-security-token" in with_token["Authorization"]


def test_the_api_receives_the_signed_headers_as_signed(api: Api, fixed_clock: Any) -> None:
    url, state = api
    signer = SigV4Signer(Credentials(KEY, SECRET), "eu-west-1")
    organiser = Organiser(url, signer)
    organiser.create_race(new_race())
    organiser.close("spring-gp")
    for req in state.requests:
        sent = organiser.url(req.path)
        body = None if req.body is None else organiser_body(req.body)
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        expected = signer.headers(req.method, sent, body, headers)
        assert req.headers["authorization"] == expected["Authorization"]
        assert req.headers["x-amz-date"] == "20110909T233600Z"
        assert req.headers["host"] == url.removeprefix("http://").rstrip("/")


def organiser_body(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod/", "eu-west-1"),
        ("https://abc.execute-api.cn-north-1.amazonaws.com.cn/prod", "cn-north-1"),
        ("http://127.0.0.1:8080/", None),
        ("https://api.example.com/", None),
    ],
)
def test_the_signing_region_is_the_api_url_s(url: str, region: str | None) -> None:
    assert region_of(url) == region
