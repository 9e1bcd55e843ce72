"""API Gateway, locally: HTTP requests in, REST API (v1) Lambda proxy events to a handler, out.

What API Gateway does for a ``{proxy+}`` resource with the Lambda proxy integration:

* the event carries ``path`` (percent-decoded, without the stage), ``httpMethod``,
  ``headers`` (last value wins) and ``multiValueHeaders``, ``queryStringParameters`` (last
  value wins) and ``multiValueQueryStringParameters`` (both ``null`` when there is no query),
  ``resource`` and ``pathParameters`` (the matching resource template given in ``resources``
  and its parameters, else ``/{proxy+}`` and ``{"proxy": ...}``; ``null`` at ``/``),
  ``stageVariables``, ``body``
  (text, or base64 with ``isBase64Encoded`` for binary), and ``requestContext`` (requestId,
  stage, path *with* the stage, httpMethod, identity.sourceIp, requestTimeEpoch, ...);
* the handler's ``statusCode``, ``headers``, ``multiValueHeaders``, ``body`` and
  ``isBase64Encoded`` become the HTTP response;
* a handler that raises, or returns something that is not a proxy response, gets
  ``502 {"message": "Internal server error"}``.

Routing (API Gateway matches the resource, then the method on it):

* the API's resources are ``/``, the given templates, every resource on the way to them
  (CDK's ``resource_for_path`` creates ``/races/{raceId}/riders`` for
  ``/races/{raceId}/riders/{riderId}``: a resource with no method of its own) and
  ``/{proxy+}`` for any other path;
* ``methods`` are the methods declared on each resource (``/``, the templates, ``/{proxy+}``);
  ``None`` is ``ANY`` on every resource (any method, ``TRACE`` or ``PROPFIND`` too, reaches the
  handler);
* a method the matched resource does not declare is no route: ``403 {"message": "Missing
  Authentication Token"}`` with ``x-amzn-ErrorType: MissingAuthenticationTokenException``, as
  API Gateway answers (``HEAD`` is not ``GET``), never the handler;
* ``signed`` methods are the IAM-authorised ones (the organiser's): API Gateway answers an
  unsigned request to them with the same 403. Locally they need no signature, so they are
  answered only to a client on a loopback address; any other gets that 403;
* with a :class:`Preflight`, ``OPTIONS`` on every resource is the mock integration CDK's
  ``default_cors_preflight_options`` adds: ``204`` and its CORS headers, never the handler;
* a request the HTTP server cannot parse (a malformed request line or version) is answered in
  JSON too, never with the standard library's HTML error page.

:func:`leaderboard_gateway` is the leaderboard API as ``infra/components/leaderboard_api.py``
deploys it (each route of ``shared.routes`` with its method, the organiser's signed, ``GET`` on
``/{proxy+}``, the preflight); a test compares it with the synthesized template.

With ``stage`` set, URLs are ``/{stage}/...`` as on an ``execute-api`` endpoint (others get
``403 {"message": "Forbidden"}``); without it the API sits at ``/`` as on a custom domain.

Usage::

    with LocalApiGateway(handler, port=0, stage="local") as gw:
        print(gw.url)  # http://127.0.0.1:PORT/local/

The local stack serves the leaderboard API from a process of its own (``python -m
local.aws.api_gateway``, through :mod:`local.component`), as API Gateway and the API's function
run apart from the stream processor.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import os
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from local.aws.lambda_runtime import ACCOUNT_ID, LambdaContext
from shared.names import ENV_CORS_ORIGIN, LOCAL_REGION
from shared.routes import API_ROUTES, Route

Handler = Callable[[dict[str, Any], Any], Any]

API_ID = "local"
MAX_BODY_BYTES = 10 * 1024 * 1024
"""API Gateway's payload limit."""
BINARY_TYPES = ("application/octet-stream", "image/", "application/zip", "application/gzip")


def LocalContext() -> LambdaContext:  # noqa: N802 - used like the class it stands for
    """The Lambda context of one API invocation: API Gateway's 29 s integration timeout."""
    return LambdaContext(
        function_name="leaderboard-api", region=LOCAL_REGION, timeout_s=29.0, memory_limit_in_mb=256
    )


PROXY_RESOURCE = "/{proxy+}"
ANY: Final = "ANY"
NO_ROUTE_MESSAGE: Final = "Missing Authentication Token"
"""API Gateway's answer (403) to a method or resource it has no route for."""
CATCH_ALL_METHOD: Final = "GET"
"""What ``infra/components/leaderboard_api.py`` declares on ``/{proxy+}``."""
LEADERBOARD_PREFLIGHT_METHODS: Final = ("GET", "OPTIONS")
"""The ``allow_methods`` of its CORS preflight options."""
CDK_DEFAULT_CORS_HEADERS: Final = (
    "Content-Type",
    "X-Amz-Date",
    "Authorization",
    "X-Api-Key",
    "X-Amz-Security-Token",
    "X-Amz-User-Agent",
)
"""``apigateway.Cors.DEFAULT_HEADERS``: the preflight's allowed headers unless told others."""


@dataclass(frozen=True)
class Preflight:
    """The ``OPTIONS`` method CDK adds to every resource for ``default_cors_preflight_options``:
    a mock integration answering 204 with the CORS headers. The first origin is the static
    ``Access-Control-Allow-Origin`` (with ``Vary: Origin`` unless it is ``*``); CDK's response
    template puts the request's ``Origin`` there instead when it is one of the others."""

    origins: tuple[str, ...]
    methods: tuple[str, ...] = LEADERBOARD_PREFLIGHT_METHODS
    headers: tuple[str, ...] = CDK_DEFAULT_CORS_HEADERS

    def response_headers(self, origin: str | None) -> dict[str, str]:
        first = self.origins[0]
        answer = {
            "Access-Control-Allow-Headers": ",".join(self.headers),
            "Access-Control-Allow-Origin": origin if origin in self.origins[1:] else first,
            "Access-Control-Allow-Methods": ",".join(self.methods),
        }
        if first != "*":
            answer["Vary"] = "Origin"
        return answer


def route_methods(routes: Iterable[Route]) -> dict[str, set[str]]:
    """Each resource's methods as the deployed API declares them: every route's method on its
    path, ``GET`` on ``/{proxy+}``."""
    declared: dict[str, set[str]] = {PROXY_RESOURCE: {CATCH_ALL_METHOD}}
    for route in routes:
        declared.setdefault(route.path, set()).add(route.method)
    return declared


def signed_methods(routes: Iterable[Route]) -> frozenset[tuple[str, str]]:
    """(resource, method) of the routes API Gateway authorizes with IAM."""
    return frozenset((r.path, r.method) for r in routes if r.organiser)


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def resource_tree(templates: Iterable[str]) -> tuple[str, ...]:
    """The resources below ``/`` that ``templates`` need: each template and every resource on
    the way to it (API Gateway has a resource per path level), in order, ``/{proxy+}`` left
    out (it is always there)."""
    tree: dict[str, None] = {}
    for template in templates:
        parts = [p for p in template.split("/") if p]
        for depth in range(1, len(parts) + 1):
            resource = "/" + "/".join(parts[:depth])
            if resource != PROXY_RESOURCE:
                tree[resource] = None
    return tuple(tree)


def match_resource(path: str, resources: Sequence[str]) -> tuple[str, dict[str, str] | None]:
    """The API Gateway resource a path reaches and its path parameters: among ``resources``
    (templates such as ``/races/{raceId}``) those matching segment by segment, a literal
    segment preferred to a parameter from left to right, as API Gateway does; else the greedy
    ``/{proxy+}``. ``/`` is the root resource, without parameters."""
    if path == "/":
        return "/", None
    segments = path.strip("/").split("/")
    best: tuple[tuple[bool, ...], str, dict[str, str]] | None = None
    for template in resources:
        parts = template.strip("/").split("/")
        if len(parts) != len(segments):
            continue
        params: dict[str, str] = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{") and part.endswith("}") and not part.endswith("+}"):
                if not segment:
                    break
                params[part[1:-1]] = segment
            elif part != segment:
                break
        else:
            literal = tuple(not p.startswith("{") for p in parts)
            if best is None or literal > best[0]:
                best = (literal, template, params)
    if best is not None:
        return best[1], best[2] or None
    return PROXY_RESOURCE, {"proxy": path.lstrip("/")}


def _last_and_all(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """API Gateway's single-value form (the last value wins) and multi-value form."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def _event_body(body: bytes, content_type: str) -> tuple[str | None, bool]:
    """The event's ``body`` and ``isBase64Encoded``: binary media types go base64."""
    if not body:
        return None, False
    if content_type.startswith(BINARY_TYPES):
        return base64.b64encode(body).decode(), True
    return body.decode("utf-8", errors="replace"), False


def _identity(source_ip: str, user_agent: str | None) -> dict[str, Any]:
    """The caller's identity: an unauthenticated request from ``source_ip``."""
    return {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "sourceIp": source_ip,
        "principalOrgId": None,
        "accessKey": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": user_agent,
        "user": None,
    }


def _request_context(
    method: str, path: str, resource: str, *, stage: str, host: str, identity: dict[str, Any]
) -> dict[str, Any]:
    now = time.time()
    request_id = str(uuid.uuid4())
    return {
        "resourceId": "local0",
        "resourcePath": resource,
        "httpMethod": method,
        "extendedRequestId": request_id[:16],
        "requestTime": formatdate(now, usegmt=True),
        "path": path if stage == "$default" else f"/{stage}{path}",
        "accountId": ACCOUNT_ID,
        "protocol": "HTTP/1.1",
        "stage": stage,
        "domainPrefix": host.split(".", maxsplit=1)[0],
        "requestTimeEpoch": int(now * 1000),
        "requestId": request_id,
        "identity": identity,
        "domainName": host,
        "apiId": API_ID,
    }


def build_event(
    method: str,
    raw_path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str,
    stage: str,
    host: str = "127.0.0.1",
    resources: Sequence[str] = (),
) -> dict[str, Any]:
    """The REST API proxy event API Gateway sends for this request.

    ``raw_path`` is the request target *after* the stage (``/races?limit=5``); ``resources``
    are the API's resource templates (any other path reaches ``/{proxy+}``).
    """
    parts = urlsplit(raw_path)
    path = unquote(parts.path) or "/"
    single_headers, multi_headers = _last_and_all(headers)
    query, multi_query = _last_and_all(parse_qsl(parts.query, keep_blank_values=True))
    text_body, binary = _event_body(body, _header(headers, "content-type") or "")
    resource, path_parameters = match_resource(path, resources)
    identity = _identity(source_ip, _header(headers, "user-agent"))
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": _request_context(
            method, path, resource, stage=stage, host=host, identity=identity
        ),
        "body": text_body,
        "isBase64Encoded": binary,
    }


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # One response is written in two parts (head, body): without TCP_NODELAY, Nagle's
        # algorithm and the client's delayed ACK add the ACK delay to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.gateway.log_requests:
            super().log_message(format, *args)

    def _send(
        self,
        status: int,
        headers: dict[str, str],
        multi: dict[str, list[str]],
        body: bytes,
    ) -> None:
        self.send_response(status)
        sent = {k.lower() for k in headers} | {k.lower() for k in multi}
        for name, value in headers.items():
            if name.lower() not in {k.lower() for k in multi}:
                self.send_header(name, value)
        for name, values in multi.items():
            for value in values:
                self.send_header(name, value)
        if "content-type" not in sent:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", self._request_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"message": message}, separators=(",", ":")).encode()
        self._send(status, headers or {}, {}, body)

    def parse_request(self) -> bool:
        """Every method reaches :meth:`_handle`, as every method reaches API Gateway (the
        standard library's server answers one it has no ``do_`` for with an HTML 501)."""
        if not super().parse_request():
            return False
        setattr(self, f"do_{self.command}", self._handle)
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What the server answers before a request reaches the API (a malformed request line, a
        version it does not speak): JSON as everything else, not the standard library's HTML."""
        self._request_id = str(uuid.uuid4())
        self.close_connection = True
        # An unparsed request line leaves HTTP/0.9, which has no status line or headers.
        self.request_version = self.protocol_version
        self._error(code, message or HTTPStatus(code).phrase, {"Connection": "close"})

    def _target_in_stage(self, target: str) -> str | None:
        """The request target after the stage, ``None`` outside the stage."""
        stage = self.server.gateway.stage
        if stage is None:
            return target
        prefix = f"/{stage}"
        path_only = urlsplit(target).path
        if path_only != prefix and not path_only.startswith(prefix + "/"):
            return None
        target = target[len(prefix) :] or "/"
        return "/" + target if target.startswith("?") else target

    def _handle(self) -> None:
        gateway = self.server.gateway
        self._request_id = str(uuid.uuid4())
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._error(413, "Request Too Long")
            return
        body = self.rfile.read(length) if length else b""
        target = self._target_in_stage(self.path)
        if target is None:
            self._error(403, "Forbidden")
            return
        answer = gateway.route(self.command, target, self.client_address[0])
        if answer == "preflight":
            assert gateway.preflight is not None
            headers = gateway.preflight.response_headers(self.headers.get("Origin"))
            self._send(204, headers, {}, b"")
        elif answer == "handler":
            self._invoke(target, body)
        else:
            error_type = {"x-amzn-ErrorType": "MissingAuthenticationTokenException"}
            self._error(403, NO_ROUTE_MESSAGE, error_type)

    def _invoke(self, target: str, body: bytes) -> None:
        """The handler's proxy response (a 502 if it raises or answers no proxy response)."""
        gateway = self.server.gateway
        event = build_event(
            self.command,
            target,
            list(self.headers.items()),
            body,
            source_ip=self.client_address[0],
            stage=gateway.stage or "$default",
            host=self.headers.get("Host", "127.0.0.1"),
            resources=gateway.tree,
        )
        self._request_id = event["requestContext"]["requestId"]
        try:
            response = gateway.handler(event, gateway.context_factory())
            status = int(response["statusCode"])
            headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
            multi = {
                str(k): [str(v) for v in vs]
                for k, vs in (response.get("multiValueHeaders") or {}).items()
            }
            raw = response.get("body") or ""
            payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
        except Exception:
            if gateway.log_requests:
                traceback.print_exc()
            self._error(502, "Internal server error")
            return
        self._send(status, headers, multi, payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    gateway: LocalApiGateway


class LocalApiGateway:
    """Serve ``handler`` over HTTP on 127.0.0.1 (``port=0``: a free port)."""

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str | None = None,
        context_factory: Callable[[], Any] = LocalContext,
        log_requests: bool = False,
        resources: Sequence[str] = (),
        methods: Mapping[str, Collection[str]] | None = None,
        signed: Collection[tuple[str, str]] = (),
        preflight: Preflight | None = None,
    ) -> None:
        self.handler = handler
        self.stage = stage
        self.resources = tuple(resources)
        self.tree = resource_tree(self.resources)
        self.methods = None if methods is None else {r: frozenset(m) for r, m in methods.items()}
        self.signed = frozenset(signed)
        self.preflight = preflight
        self._declared = self.declared_methods()
        self.context_factory = context_factory
        self.log_requests = log_requests
        self._server = _Server((host, port), _RequestHandler)
        self._server.gateway = self
        self._thread: threading.Thread | None = None

    def declared_methods(self) -> dict[str, set[str]]:
        """Each resource with a method and its methods, as API Gateway lists them (``ANY``: any
        method). Resources on the way to a template have none but the preflight's."""
        preflight = {"OPTIONS"} if self.preflight is not None else set()
        declared = {
            resource: ({ANY} if self.methods is None else set(self.methods.get(resource, ())))
            | preflight
            for resource in ("/", *self.tree, PROXY_RESOURCE)
        }
        return {resource: methods for resource, methods in declared.items() if methods}

    def route(self, method: str, target: str, client: str = "127.0.0.1") -> str:
        """Who answers ``method`` on ``target`` (the request target after the stage) from the
        ``client`` address: ``"preflight"``, ``"handler"``, or ``"none"`` (no route, or a
        signed method asked from off this machine: 403 Missing Authentication Token). A
        target that is not a path (``CONNECT host:443``) reaches no resource."""
        if not target.startswith("/"):
            return "none"
        resource, _ = match_resource(unquote(urlsplit(target).path) or "/", self.tree)
        declared = self._declared.get(resource, set())
        if method == "OPTIONS" and self.preflight is not None:
            return "preflight"
        if ANY not in declared and method not in declared:
            return "none"
        if (resource, method) in self.signed and not is_loopback(client):
            return "none"
        return "handler"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The API's base URL, ending in ``/``."""
        host = str(self._server.server_address[0])
        base = f"http://{host}:{self.port}/"
        return base + (f"{self.stage}/" if self.stage else "")

    def start(self) -> LocalApiGateway:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="local-apigw",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` (or KeyboardInterrupt)."""
        self._server.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LocalApiGateway:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def leaderboard_gateway(
    handler: Handler, *, cors_origin: str | None = None, **options: Any
) -> LocalApiGateway:
    """The leaderboard API as deployed: every route of ``shared.routes`` with its method (the
    organiser's signed), ``GET`` on ``/{proxy+}``, and the CORS preflight of ``cors_origin``
    (comma-separated origins, as the stack's setting; by default ``CORS_ORIGIN``, which the
    handler reads too) on every resource. ``options`` go to :class:`LocalApiGateway`."""
    if cors_origin is None:
        cors_origin = os.environ.get(ENV_CORS_ORIGIN, "")
    origins = tuple(o.strip() for o in cors_origin.split(",") if o.strip())
    declared = route_methods(API_ROUTES)
    return LocalApiGateway(
        handler,
        resources=tuple(r for r in declared if r not in ("/", PROXY_RESOURCE)),
        methods=declared,
        signed=signed_methods(API_ROUTES),
        preflight=Preflight(origins) if origins else None,
        **options,
    )


def main(argv: list[str] | None = None) -> int:
    """Serve the leaderboard API's handler (one execution environment) until stopped."""
    from functions.leaderboard_api.handler import handler
    from local.aws.lambda_runtime import OneEnvironment
    from local.component import serve

    parser = argparse.ArgumentParser(prog="python -m local.aws.api_gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", required=True, type=Path, help="status file to write")
    args = parser.parse_args(argv)
    gateway = leaderboard_gateway(OneEnvironment(handler), host=args.host, port=args.port)
    serve(gateway, args.status, lambda: {"url": gateway.url})
    return 0


if __name__ == "__main__":
    sys.exit(main())
