"""An HTTP client of the organiser's routes (and the public reads they go with).

``POST /races``, ``POST /races/{id}/entries`` (in chunks of ``MAX_ENTRIES_PER_REQUEST``),
``POST /races/{id}/close``, ``POST /races/{id}/entries/{riderId}/disqualify``, ``GET /races``,
``GET /races/{id}``, ``GET /races/{id}/results`` (every page), ``GET /riders/{id}/results`` (a
rider's history, as many pages as asked) and ``GET /classes/{id}/records``. ``breakaway race``,
``breakaway rider`` and ``breakaway simulate`` use it.

Where: the local stack's API (its endpoints file's ``api_url``; the local routes need no
credentials), or a deployed environment's (the stack output ``ApiUrl``), where the organiser
routes are IAM-authorised: each request is signed with the caller's AWS credentials by
botocore's Signature Version 4 signer for ``execute-api``.

Errors: a 4xx or 5xx answer raises :class:`ApiError` with the API's own message (the API says
``{"message": ...}``; API Gateway's IAM refusals say ``{"Message": ...}``); a connection that
fails raises :class:`ApiUnreachableError`.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from shared.races import MAX_ENTRIES_PER_REQUEST, Entry, NewRace

EXECUTE_API: Final = "execute-api"
RESULTS_PAGE: Final = 100
"""Results and histories are read a page of this many at a time (the API's largest page)."""
TIMEOUT_S: Final = 30.0
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


class ApiError(Exception):
    """The API refused a request: its status and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class ApiUnreachableError(Exception):
    """No answer from the API (nothing listens, DNS, TLS, timeout)."""


class Signer(Protocol):
    def headers(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> dict[str, str]:
        """The headers to send: ``headers`` and the signature's."""


@dataclass(frozen=True)
class SigV4Signer:
    """Signs requests for API Gateway (``execute-api``) with botocore's SigV4 signer."""

    credentials: Any
    """botocore credentials (``boto3.Session().get_credentials()``)."""
    region: str
    service: str = EXECUTE_API

    def headers(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(self.credentials, self.service, self.region).add_auth(request)
        return dict(request.headers.items())


def region_of(api_url: str) -> str | None:
    """The region in an API Gateway URL (``https://<id>.execute-api.<region>.amazonaws.com/``)."""
    host = urllib.parse.urlsplit(api_url).hostname or ""
    found = _REGION_IN_HOST.search(host)
    return found.group(1) if found else None


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class Organiser:
    """The organiser's API at ``base_url`` (the API's root, with or without a trailing slash)."""

    def __init__(
        self, base_url: str, signer: Signer | None = None, timeout: float = TIMEOUT_S
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"not an HTTP URL: {base_url}")
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.timeout = timeout

    # --- the routes ----------------------------------------------------------------------------
    def create_race(self, race: NewRace) -> dict[str, Any]:
        """``POST /races``: the race as created (201)."""
        return self._call("POST", "/races", race.model_dump(mode="json", by_alias=True))

    def enter(self, race_id: str, entries: Sequence[Entry]) -> dict[str, int]:
        """``POST /races/{id}/entries``, 1,000 entries a request: how many were added and how
        many updated, summed over the requests."""
        total = {"added": 0, "updated": 0}
        for start in range(0, len(entries), MAX_ENTRIES_PER_REQUEST):
            chunk = entries[start : start + MAX_ENTRIES_PER_REQUEST]
            body = {
                "entries": [
                    e.model_dump(mode="json", by_alias=True, exclude_none=True) for e in chunk
                ]
            }
            answer = self._call("POST", f"/races/{_quote(race_id)}/entries", body)
            for key in total:
                total[key] += int(answer.get(key, 0))
        return total

    def close(self, race_id: str) -> dict[str, Any]:
        """``POST /races/{id}/close`` (202): the race, closing ``graceS`` from now at most."""
        return self._call("POST", f"/races/{_quote(race_id)}/close", None)

    def disqualify(self, race_id: str, rider_id: str) -> dict[str, Any]:
        path = f"/races/{_quote(race_id)}/entries/{_quote(rider_id)}/disqualify"
        return self._call("POST", path, None)

    def races(self, status: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """``GET /races``: one page of races, newest first (``races`` and ``nextCursor``)."""
        query = {k: str(v) for k, v in (("status", status), ("limit", limit)) if v is not None}
        return self._call("GET", "/races", None, query)

    def race(self, race_id: str) -> dict[str, Any]:
        return self._call("GET", f"/races/{_quote(race_id)}", None)

    def results(self, race_id: str, class_id: int | None = None) -> list[dict[str, Any]]:
        """Every entry of ``GET /races/{id}/results[?classId=]``, following ``nextCursor``."""
        return list(self._results(race_id, class_id))

    def _results(self, race_id: str, class_id: int | None) -> Iterator[dict[str, Any]]:
        query = {"limit": str(RESULTS_PAGE)}
        if class_id is not None:
            query["classId"] = str(class_id)
        while True:
            page = self._call("GET", f"/races/{_quote(race_id)}/results", None, query)
            yield from page["entries"]
            if not page.get("nextCursor"):
                return
            query["cursor"] = str(page["nextCursor"])

    def rider_results(self, rider_id: str, limit: int) -> list[dict[str, Any]]:
        """The rider's ``limit`` newest closed races (``GET /riders/{id}/results``), following
        ``nextCursor`` while more are wanted."""
        path = f"/riders/{_quote(rider_id)}/results"
        shown: list[dict[str, Any]] = []
        query: dict[str, str] = {}
        while len(shown) < limit:
            query["limit"] = str(min(RESULTS_PAGE, limit - len(shown)))
            page = self._call("GET", path, None, query)
            shown += page["results"]
            if not page.get("nextCursor"):
                break
            query["cursor"] = str(page["nextCursor"])
        return shown

    def records(self, class_id: int, duration_s: int, limit: int) -> list[dict[str, Any]]:
        """``GET /classes/{id}/records?durationS=``: the best results ever in the class over
        races of that length, best first."""
        query = {"durationS": str(duration_s), "limit": str(limit)}
        page = self._call("GET", f"/classes/{class_id}/records", None, query)
        rows: list[dict[str, Any]] = page["records"]
        return rows

    # --- HTTP ----------------------------------------------------------------------------------
    def url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        suffix = f"?{urllib.parse.urlencode(sorted(query.items()))}" if query else ""
        return f"{self.base_url}{path}{suffix}"

    def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        query: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        url = self.url(path, query)
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.signer is not None:
            headers = self.signer.headers(method, url, data, headers)
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 (checked in __init__)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, _message(exc.read(), exc.reason)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiUnreachableError(f"cannot reach {self.base_url} ({reason})") from None
        answer: dict[str, Any] = json.loads(raw) if raw else {}
        return answer


def _message(body: bytes, reason: str) -> str:
    """The API's message: ``message`` (the handler, API Gateway) or ``Message`` (IAM)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("message", "Message"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    text = body.decode(errors="replace").strip()
    return text[:200] or reason
