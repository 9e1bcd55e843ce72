"""A small fake of the organiser's API on 127.0.0.1 (a free port), for the organiser client's,
``breakaway race``'s and ``breakaway simulate``'s tests: it records every request (method,
path, query, headers, body) and answers in the API's shapes (issue 15) from what it was told,
with the API's 201/202/404/409 and ``{"message": ...}`` errors. It is no model of the API's
rules beyond those: the API's own tests hold those."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RACE = "race"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeState:
    races: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per race, the overall results the fake lists (``?classId=`` filters them)."""
    records: dict[tuple[int, int], list[dict[str, Any]]] = field(default_factory=dict)
    """(classId, durationS) -> the class records the fake lists (absent: none yet)."""
    requests: list[Recorded] = field(default_factory=list)
    fail: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    """(method, path) -> (status, body) answered instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: FakeState


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> Recorded:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        recorded = Recorded(
            self.command,
            url.path,
            dict(urllib.parse.parse_qsl(url.query)),
            {k.lower(): v for k, v in self.headers.items()},
            json.loads(raw) if raw else None,
        )
        self.server.state.requests.append(recorded)
        return recorded

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        req = self._record()
        state = self.server.state
        failure = state.fail.get((req.method, req.path))
        if failure is not None:
            self._reply(*failure)
            return
        status, body = route(state, req)
        self._reply(status, body)


def route(state: FakeState, req: Recorded) -> tuple[int, Any]:
    parts = req.path.strip("/").split("/")
    if parts == ["races"]:
        return _races(state, req)
    if len(parts) == 3 and parts[0] == "classes" and parts[2] == "records":
        key = (int(parts[1]), int(req.query["durationS"]))
        rows = state.records.get(key, [])[: int(req.query.get("limit", "10"))]
        return 200, {"classId": key[0], "durationS": key[1], "records": rows}
    if len(parts) < 2 or parts[0] != "races":
        return 404, {"message": f"no route {req.method} {req.path}"}
    race = state.races.get(parts[1])
    if race is None:
        return 404, {"message": f"no race {parts[1]}"}
    rest = (req.method, *parts[2:])
    if rest == ("GET",):
        return 200, race
    if rest == ("POST", "entries"):
        return _enter(state, parts[1], req.body["entries"])
    if rest == ("POST", "close"):
        return 202, race
    if rest[:2] == ("POST", "entries") and rest[3:] == ("disqualify",):
        entry = state.entries.get(parts[1], {}).get(parts[3])
        if entry is None:
            return 404, {"message": f"rider {parts[3]} is not entered in race {parts[1]}"}
        entry["disqualified"] = True
        return 200, {"raceId": parts[1], "riderId": parts[3], "disqualified": True}
    if rest == ("GET", "results"):
        return _results(state, parts[1], req.query)
    return 404, {"message": f"no route {req.method} {req.path}"}


def _races(state: FakeState, req: Recorded) -> tuple[int, Any]:
    if req.method == "POST":
        body = req.body
        if body["raceId"] in state.races:
            return 409, {"message": f"race {body['raceId']} exists"}
        grace = body.get("graceS", 30)
        race = body | {
            "graceS": grace,
            "status": "scheduled",
            "closesAt": body["startsAt"] + 1000 * (body["durationS"] + grace),
            "entrants": 0,
        }
        state.races[body["raceId"]] = race
        return 201, race
    listed = [r for r in state.races.values() if req.query.get("status") in (None, r["status"])]
    return 200, {"races": listed, "nextCursor": None}


def _enter(state: FakeState, race_id: str, entries: list[dict[str, Any]]) -> tuple[int, Any]:
    known = state.entries.setdefault(race_id, {})
    added = sum(1 for e in entries if e["riderId"] not in known)
    for e in entries:
        known[e["riderId"]] = dict(e)
    state.races[race_id]["entrants"] = len(known)
    return 200, {"added": added, "updated": len(entries) - added}


def _results(state: FakeState, race_id: str, query: dict[str, str]) -> tuple[int, Any]:
    listed = state.results.get(race_id)
    if listed is None:
        return 409, {"message": f"race {race_id} is not closed: its results are not final"}
    class_id = int(query["classId"]) if "classId" in query else None
    if class_id is not None:
        listed = [r for r in listed if r["classId"] == class_id]
    start = int(query.get("cursor", "0"))
    limit = int(query.get("limit", "100"))
    page = listed[start : start + limit]
    more = start + limit < len(listed)
    return 200, {
        "raceId": race_id,
        "classId": class_id,
        "entries": page,
        "nextCursor": str(start + limit) if more else None,
    }


@contextmanager
def fake_api() -> Iterator[tuple[str, FakeState]]:
    """The fake's URL (with a stage, as API Gateway's) and its state; stopped at the end."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = FakeState()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
