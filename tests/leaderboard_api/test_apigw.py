"""local/aws/api_gateway.py: HTTP in, REST API (v1) Lambda proxy events out, as API Gateway does."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from local.aws.api_gateway import PROXY_RESOURCE, LocalApiGateway, match_resource
from tests.leaderboard_api.helpers import RESOURCES, fixture


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.response: dict[str, Any] = {"statusCode": 200, "headers": {}, "body": "{}"}

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gw(recorder: Recorder) -> Iterator[LocalApiGateway]:
    with LocalApiGateway(recorder, stage="prod", resources=RESOURCES) as gateway:
        yield gateway


def request(
    gw: LocalApiGateway,
    target: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, list[str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        multi: dict[str, list[str]] = {}
        for name, value in response.getheaders():
            multi.setdefault(name.lower(), []).append(value)
        return response.status, multi, response.read()
    finally:
        conn.close()


def shape(value: Any) -> Any:
    """The keys of nested objects (values dropped): what 'the same shape' means."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k not in ("headers", "multiValueHeaders")}
    return None


def test_event_has_the_shape_api_gateway_sends(gw: LocalApiGateway, recorder: Recorder) -> None:
    request(gw, "/prod/races/race-1/leaderboard?limit=5", headers={"User-Agent": "pytest"})

    event = recorder.events[0]
    expected = shape(fixture("rest_leaderboard.json"))
    del expected["requestContext"]["deploymentId"]  # set only on deployed stages
    assert shape(event) == expected
    assert event["path"] == "/races/race-1/leaderboard"
    assert event["resource"] == "/races/{raceId}/leaderboard"
    assert event["requestContext"]["resourcePath"] == "/races/{raceId}/leaderboard"
    assert event["pathParameters"] == {"raceId": "race-1"}
    assert event["queryStringParameters"] == {"limit": "5"}
    assert event["multiValueQueryStringParameters"] == {"limit": ["5"]}
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert (ctx["stage"], ctx["path"], ctx["httpMethod"]) == (
        "prod",
        "/prod/races/race-1/leaderboard",
        "GET",
    )
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["identity"]["userAgent"] == "pytest"
    assert len(ctx["requestId"]) == 36
    assert recorder.contexts[0].aws_request_id
    assert recorder.contexts[0].get_remaining_time_in_millis() > 0


def test_repeated_query_parameters_and_headers(gw: LocalApiGateway, recorder: Recorder) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    conn.putrequest("GET", "/prod/x?a=1&a=2&b=&c=%20sp%2Face")
    conn.putheader("X-Multi", "one")
    conn.putheader("X-Multi", "two")
    conn.endheaders()
    conn.getresponse().read()
    conn.close()

    event = recorder.events[0]
    assert event["queryStringParameters"] == {"a": "2", "b": "", "c": " sp/ace"}
    assert event["multiValueQueryStringParameters"] == {
        "a": ["1", "2"],
        "b": [""],
        "c": [" sp/ace"],
    }
    assert event["headers"]["X-Multi"] == "two"
    assert event["multiValueHeaders"]["X-Multi"] == ["one", "two"]


def test_root_and_no_query(gw: LocalApiGateway, recorder: Recorder) -> None:
    request(gw, "/prod/")
    request(gw, "/prod")

    for event in recorder.events:
        assert event["path"] == "/"
        assert event["resource"] == "/"
        assert event["pathParameters"] is None
        assert event["queryStringParameters"] is None
        assert event["multiValueQueryStringParameters"] is None


def test_outside_the_stage_is_forbidden(gw: LocalApiGateway, recorder: Recorder) -> None:
    status, _, body = request(gw, "/races")

    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert recorder.events == []


def test_without_a_stage_the_api_sits_at_root(recorder: Recorder) -> None:
    with LocalApiGateway(recorder) as gateway:
        assert gateway.url == f"http://127.0.0.1:{gateway.port}/"
        request(gateway, "/races?limit=1")

    ctx = recorder.events[0]["requestContext"]
    assert (recorder.events[0]["path"], ctx["path"], ctx["stage"]) == (
        "/races",
        "/races",
        "$default",
    )


def test_post_body_text_and_binary(gw: LocalApiGateway, recorder: Recorder) -> None:
    request(gw, "/prod/in", "POST", {"Content-Type": "application/json"}, b'{"a":1}')
    request(gw, "/prod/in", "POST", {"Content-Type": "application/octet-stream"}, b"\x00\xff")

    text, binary = recorder.events
    assert (text["body"], text["isBase64Encoded"]) == ('{"a":1}', False)
    assert (binary["body"], binary["isBase64Encoded"]) == (
        base64.b64encode(b"\x00\xff").decode(),
        True,
    )


def test_response_headers_status_and_base64_body(gw: LocalApiGateway, recorder: Recorder) -> None:
    recorder.response = {
        "statusCode": 418,
        "headers": {"Content-Type": "image/png", "Cache-Control": "max-age=1"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": base64.b64encode(b"\x89PNG").decode(),
        "isBase64Encoded": True,
    }

    status, headers, body = request(gw, "/prod/img")

    assert status == 418
    assert body == b"\x89PNG"
    assert headers["content-type"] == ["image/png"]
    assert headers["cache-control"] == ["max-age=1"]
    assert headers["set-cookie"] == ["a=1", "b=2"]
    assert headers["content-length"] == ["4"]


def test_a_failing_handler_is_a_502(gw: LocalApiGateway, recorder: Recorder) -> None:
    recorder.response = RuntimeError("boom")  # type: ignore[assignment]

    status, _, body = request(gw, "/prod/races")

    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


def test_a_malformed_proxy_response_is_a_502(gw: LocalApiGateway, recorder: Recorder) -> None:
    recorder.response = {"body": "no status"}

    status, _, body = request(gw, "/prod/races")

    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


def test_stop_releases_the_port(recorder: Recorder) -> None:
    gateway = LocalApiGateway(recorder).start()
    port = gateway.port
    gateway.stop()

    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()


@pytest.mark.parametrize(
    ("path", "resource", "params"),
    [
        ("/", "/", None),
        ("/races", "/races", None),
        ("/races/r-1", "/races/{raceId}", {"raceId": "r-1"}),
        (
            "/races/r-1/riders/x",
            "/races/{raceId}/riders/{riderId}",
            {"raceId": "r-1", "riderId": "x"},
        ),
        ("/openapi.json", "/openapi.json", None),
        ("/races/r-1/nope", PROXY_RESOURCE, {"proxy": "races/r-1/nope"}),
        ("/elsewhere", PROXY_RESOURCE, {"proxy": "elsewhere"}),
    ],
)
def test_resource_matching(path: str, resource: str, params: dict[str, str] | None) -> None:
    assert match_resource(path, RESOURCES) == (resource, params)


def test_a_literal_segment_wins_over_a_parameter() -> None:
    templates = ["/races/{raceId}", "/races/latest"]
    assert match_resource("/races/latest", templates) == ("/races/latest", None)
    assert match_resource("/races/r9", templates) == ("/races/{raceId}", {"raceId": "r9"})


def test_without_resources_everything_but_root_is_the_proxy(recorder: Recorder) -> None:
    with LocalApiGateway(recorder) as gateway:
        request(gateway, "/races/r-1")

    event = recorder.events[0]
    assert (event["resource"], event["pathParameters"]) == (
        PROXY_RESOURCE,
        {"proxy": "races/r-1"},
    )
