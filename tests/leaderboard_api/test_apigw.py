"""local/aws/api_gateway.py: HTTP in, REST API (v1) Lambda proxy events out, as API Gateway does."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from functions.leaderboard_api import handler as api
from local.aws.api_gateway import (
    PROXY_RESOURCE,
    LocalApiGateway,
    leaderboard_gateway,
    match_resource,
)
from tests.leaderboard_api.helpers import ENVIRONMENT, RESOURCES, fixture


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


# --- methods: what API Gateway answers for any method -----------------------------------------
MISSING_TOKEN = {"message": "Missing Authentication Token"}
ODD_METHODS = ("TRACE", "PROPFIND", "CONNECT", "BREW")
UNDECLARED = (*ODD_METHODS, "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def deployed(recorder: Recorder) -> Iterator[LocalApiGateway]:
    """The gateway shaped as the deployed API: GET on every route and on /{proxy+}, the
    preflight of CDK's CORS options on every resource."""
    with leaderboard_gateway(recorder, stage="prod", cors_origin="*") as gateway:
        yield gateway


@pytest.mark.parametrize("method", [*UNDECLARED, "GET"])
def test_a_proxy_api_hands_any_method_to_the_handler(
    gw: LocalApiGateway, recorder: Recorder, method: str
) -> None:
    recorder.response = {"statusCode": 405, "body": '{"message":"no"}'}

    status, headers, body = request(gw, "/prod/races", method)

    assert (status, body) == (405, b'{"message":"no"}')
    assert headers["content-type"] == ["application/json"]
    assert [(e["httpMethod"], e["resource"]) for e in recorder.events] == [(method, "/races")]
    assert recorder.events[0]["requestContext"]["httpMethod"] == method


@pytest.mark.parametrize(
    ("method", "path"),
    [
        *((m, p) for m in UNDECLARED for p in ("/prod/", "/prod/races/r-1", "/prod/nope/x")),
        *((m, "/prod/races") for m in UNDECLARED if m != "POST"),
        ("POST", "/prod/races/r-1/leaderboard"),
        ("POST", "/prod/races/r-1/entries/x"),
        ("GET", "/prod/races/r-1/close"),
        ("GET", "/prod/races/r-1/entries"),
        ("PUT", "/prod/races/r-1/entries/x/disqualify"),
    ],
)
def test_a_method_the_api_does_not_declare_is_missing_authentication_token(
    deployed: LocalApiGateway, recorder: Recorder, method: str, path: str
) -> None:
    status, headers, body = request(deployed, path, method)

    assert (status, json.loads(body)) == (403, MISSING_TOKEN)
    assert headers["content-type"] == ["application/json"]
    assert headers["x-amzn-errortype"] == ["MissingAuthenticationTokenException"]
    assert recorder.events == []


def test_head_is_not_get_on_the_deployed_api(deployed: LocalApiGateway, recorder: Recorder) -> None:
    status, headers, body = request(deployed, "/prod/races", "HEAD")

    assert (status, body) == (403, b"")
    assert headers["x-amzn-errortype"] == ["MissingAuthenticationTokenException"]
    assert recorder.events == []


def test_get_reaches_the_handler_on_every_route_and_the_proxy(
    deployed: LocalApiGateway, recorder: Recorder
) -> None:
    for path in ("/prod/", "/prod/races", "/prod/races/r-1/riders/x", "/prod/nope/x"):
        assert request(deployed, path)[0] == 200

    assert [e["resource"] for e in recorder.events] == [
        "/",
        "/races",
        "/races/{raceId}/riders/{riderId}",
        PROXY_RESOURCE,
    ]


def test_post_reaches_the_handler_on_the_organisers_routes_from_this_machine(
    deployed: LocalApiGateway, recorder: Recorder
) -> None:
    for path in (
        "/prod/races",
        "/prod/races/r-1/entries",
        "/prod/races/r-1/close",
        "/prod/races/r-1/entries/x/disqualify",
    ):
        assert request(deployed, path, "POST", body=b"{}")[0] == 200

    assert [(e["httpMethod"], e["resource"], e["body"]) for e in recorder.events] == [
        ("POST", "/races", "{}"),
        ("POST", "/races/{raceId}/entries", "{}"),
        ("POST", "/races/{raceId}/close", "{}"),
        ("POST", "/races/{raceId}/entries/{riderId}/disqualify", "{}"),
    ]
    assert recorder.events[3]["pathParameters"] == {"raceId": "r-1", "riderId": "x"}


@pytest.mark.parametrize(
    ("client", "answer"),
    [
        ("127.0.0.1", "handler"),
        ("127.8.9.10", "handler"),
        ("::1", "handler"),
        ("192.168.1.20", "none"),
        ("203.0.113.7", "none"),
        ("2001:db8::7", "none"),
        ("not-an-address", "none"),
    ],
)
def test_the_organisers_routes_are_answered_only_on_this_machine(
    deployed: LocalApiGateway, client: str, answer: str
) -> None:
    """Locally they need no signature, so a client elsewhere gets what API Gateway answers an
    unsigned request to an IAM-authorised method; the reads answer anyone."""
    assert deployed.route("POST", "/races/r-1/close", client) == answer
    assert deployed.route("POST", "/races", client) == answer
    assert deployed.route("GET", "/races/r-1/results", client) == "handler"


def test_a_resource_on_the_way_to_a_route_has_no_get(
    deployed: LocalApiGateway, recorder: Recorder
) -> None:
    """CDK creates /races/{raceId}/riders for /races/{raceId}/riders/{riderId}: a resource of
    its own (more specific than /{proxy+}) with no method but the preflight."""
    status, _, body = request(deployed, "/prod/races/r-1/riders")

    assert (status, json.loads(body)) == (403, MISSING_TOKEN)
    assert recorder.events == []


PREFLIGHT_HEADERS = {
    "access-control-allow-headers": [
        "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token,X-Amz-User-Agent"
    ],
    "access-control-allow-origin": ["*"],
    "access-control-allow-methods": ["GET,OPTIONS"],
}


@pytest.mark.parametrize("path", ["/prod/", "/prod/races", "/prod/races/r-1/riders", "/prod/x/y"])
def test_options_is_the_cors_preflight_on_every_resource(
    deployed: LocalApiGateway, recorder: Recorder, path: str
) -> None:
    status, headers, body = request(deployed, path, "OPTIONS", {"Origin": "https://a.example"})

    assert (status, body) == (204, b"")
    assert {k: v for k, v in headers.items() if k.startswith("access-control-")} == (
        PREFLIGHT_HEADERS
    )
    assert "vary" not in headers
    assert recorder.events == []


def test_the_preflight_echoes_a_listed_origin_as_cdk_templates_it(recorder: Recorder) -> None:
    origins = "https://a.example, https://b.example"
    with leaderboard_gateway(recorder, cors_origin=origins) as gateway:
        answers = {
            origin: request(gateway, "/races", "OPTIONS", {"Origin": origin})[1]
            for origin in ("https://a.example", "https://b.example", "https://evil.example")
        }

    assert {o: h["access-control-allow-origin"] for o, h in answers.items()} == {
        "https://a.example": ["https://a.example"],
        "https://b.example": ["https://b.example"],
        "https://evil.example": ["https://a.example"],
    }
    assert all(h["vary"] == ["Origin"] for h in answers.values())


def test_without_cors_options_is_an_undeclared_method(recorder: Recorder) -> None:
    with leaderboard_gateway(recorder, cors_origin="") as gateway:
        status, _, body = request(gateway, "/races", "OPTIONS")

    assert (status, json.loads(body)) == (403, MISSING_TOKEN)


def raw_exchange(gw: LocalApiGateway, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (http.client refuses malformed request lines), read one answer."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


@pytest.mark.parametrize(
    ("request_line", "status", "message"),
    [
        (b"GARBAGE", 400, "Bad request syntax ('GARBAGE')"),
        (b"GET /prod/races HTTP/1.x", 400, "Bad request version ('HTTP/1.x')"),
        (b"GET /prod/races HTTP/9.9", 505, "Invalid HTTP version (9.9)"),
    ],
)
def test_a_request_the_server_cannot_parse_is_answered_in_json(
    deployed: LocalApiGateway, recorder: Recorder, request_line: bytes, status: int, message: str
) -> None:
    """Not API Gateway's answer (its front end is not documented for these), but JSON."""
    answer = raw_exchange(deployed, request_line + b"\r\nHost: x\r\n\r\n")

    assert (answer[0], answer[1]["content-type"], json.loads(answer[2])) == (
        status,
        "application/json",
        {"message": message},
    )
    assert recorder.events == []


def test_an_absolute_form_connect_target_is_no_resource(recorder: Recorder) -> None:
    with leaderboard_gateway(recorder) as gateway:
        status, _, body = raw_exchange(
            gateway, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        )

    assert (status, json.loads(body)) == (403, MISSING_TOKEN)
    assert recorder.events == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("TRACE", "/races"),
        ("PROPFIND", "/races"),
        ("CONNECT", "/races"),
        ("POST", "/races/r-1/leaderboard"),
    ],
)
def test_the_handler_answers_an_odd_method_with_a_json_404(
    monkeypatch: pytest.MonkeyPatch, method: str, path: str
) -> None:
    """What a user sees if the API ever takes ANY method: the handler's own 4xx, never a 5xx."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    api.install(None)
    with LocalApiGateway(api.handler, stage="prod", resources=RESOURCES) as proxy:
        proxied = request(proxy, "/prod" + path, method)
    with leaderboard_gateway(api.handler, stage="prod", cors_origin="*") as gateway:
        deployed = request(gateway, "/prod" + path, method)
    api.install(None)

    assert (proxied[0], json.loads(proxied[2])) == (404, {"message": f"no route {method} {path}"})
    assert (deployed[0], json.loads(deployed[2])) == (403, MISSING_TOKEN)


def deployed_api_methods() -> tuple[dict[str, set[str]], dict[str, str], set[tuple[str, str]]]:
    """The leaderboard API's construct, synthesized: each resource's path and its methods, the
    headers of its OPTIONS methods' mock integration response (with its status code), and the
    (path, method) API Gateway authorizes with IAM."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_dynamodb as dynamodb

    from infra.components.leaderboard_api import LeaderboardApi
    from infra.config import BreakawayConfig

    app = App(outdir=tempfile.mkdtemp(prefix="apigw-synth-"))
    stack = Stack(app, "ApiOnly")
    key = dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING)
    table = dynamodb.Table(stack, "Table", partition_key=key)
    LeaderboardApi(stack, "Api", config=BreakawayConfig(), standings=table)
    resources = app.synth().get_stack_by_name("ApiOnly").template["Resources"]

    def path(ref: Any) -> str:
        if "Fn::GetAtt" in ref:
            return "/"
        props = resources[ref["Ref"]]["Properties"]
        return path(props["ParentId"]).rstrip("/") + "/" + str(props["PathPart"])

    methods: dict[str, set[str]] = {}
    preflights: list[dict[str, str]] = []
    signed: set[tuple[str, str]] = set()
    for resource in resources.values():
        if resource["Type"] == "AWS::ApiGateway::Method":
            props = resource["Properties"]
            methods.setdefault(path(props["ResourceId"]), set()).add(props["HttpMethod"])
            if props["AuthorizationType"] == "AWS_IAM":
                signed.add((path(props["ResourceId"]), props["HttpMethod"]))
            if props["HttpMethod"] == "OPTIONS":
                (answer,) = props["Integration"]["IntegrationResponses"]
                params = answer["ResponseParameters"]
                headers = {k.rsplit(".", 1)[1].lower(): v.strip("'") for k, v in params.items()}
                preflights.append({"status": answer["StatusCode"], **headers})
    assert all(p == preflights[0] for p in preflights)
    return methods, preflights[0], signed


@pytest.mark.synth
def test_the_local_api_routes_what_the_deployed_api_declares(recorder: Recorder) -> None:
    deployed_methods, preflight, signed = deployed_api_methods()

    with leaderboard_gateway(recorder, cors_origin="*") as gateway:
        assert gateway.declared_methods() == deployed_methods
        assert gateway.signed == signed
        assert len(signed) == 4
        status, headers, _ = request(gateway, "/races", "OPTIONS", {"Origin": "https://x"})
    local = {k: v[0] for k, v in headers.items() if k.startswith("access-control-")}
    assert {"status": str(status), **local} == preflight
