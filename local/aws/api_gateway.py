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
import json
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.aws.lambda_runtime import ACCOUNT_ID, LambdaContext
from shared.names import LOCAL_REGION

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

    def _error(self, status: int, message: str) -> None:
        self._send(status, {}, {}, json.dumps({"message": message}).encode())

    def _handle(self) -> None:
        gateway = self.server.gateway
        self._request_id = str(uuid.uuid4())
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._error(413, "Request Too Long")
            return
        body = self.rfile.read(length) if length else b""
        target = self.path
        if gateway.stage is not None:
            prefix = f"/{gateway.stage}"
            path_only = urlsplit(target).path
            if path_only != prefix and not path_only.startswith(prefix + "/"):
                self._error(403, "Forbidden")
                return
            target = target[len(prefix) :] or "/"
            if target.startswith("?"):
                target = "/" + target
        event = build_event(
            self.command,
            target,
            list(self.headers.items()),
            body,
            source_ip=self.client_address[0],
            stage=gateway.stage or "$default",
            host=self.headers.get("Host", "127.0.0.1"),
            resources=gateway.resources,
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

    do_GET = _handle  # noqa: N815 (BaseHTTPRequestHandler's naming)
    do_POST = _handle  # noqa: N815
    do_PUT = _handle  # noqa: N815
    do_PATCH = _handle  # noqa: N815
    do_DELETE = _handle  # noqa: N815
    do_OPTIONS = _handle  # noqa: N815
    do_HEAD = _handle  # noqa: N815


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
    ) -> None:
        self.handler = handler
        self.stage = stage
        self.resources = tuple(resources)
        self.context_factory = context_factory
        self.log_requests = log_requests
        self._server = _Server((host, port), _RequestHandler)
        self._server.gateway = self
        self._thread: threading.Thread | None = None

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
    gateway = LocalApiGateway(OneEnvironment(handler), host=args.host, port=args.port)
    serve(gateway, args.status, lambda: {"url": gateway.url})
    return 0


if __name__ == "__main__":
    sys.exit(main())
