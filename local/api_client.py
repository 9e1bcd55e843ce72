"""Read the race back through the API (what a user sees): top N, every standing, the results."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

PAGE = 100


def get_json(url: str, timeout: float = 10.0) -> Any:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {url}")
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (checked above)
        return json.loads(resp.read())


def leaderboard_url(api_url: str, race_id: str, limit: int, cursor: str | None = None) -> str:
    query = {"limit": str(limit)}
    if cursor:
        query["cursor"] = cursor
    race = urllib.parse.quote(race_id, safe="")
    return f"{api_url.rstrip('/')}/races/{race}/leaderboard?{urllib.parse.urlencode(query)}"


def top(api_url: str, race_id: str, limit: int = 10) -> dict[str, Any]:
    """One leaderboard page (the API's JSON)."""
    page: dict[str, Any] = get_json(leaderboard_url(api_url, race_id, limit))
    return page


def race(api_url: str, race_id: str) -> dict[str, Any]:
    """The race record (the API's JSON): riders, classes, how many finished."""
    found: dict[str, Any] = get_json(
        f"{api_url.rstrip('/')}/races/{urllib.parse.quote(race_id, safe='')}"
    )
    return found


def all_standings(api_url: str, race_id: str) -> dict[str, dict[str, Any]]:
    """Every rider's entry, following the cursor: ``{riderId: entry}``."""
    out: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        page = get_json(leaderboard_url(api_url, race_id, PAGE, cursor))
        for entry in page["entries"]:
            out[entry["riderId"]] = entry
        cursor = page.get("nextCursor")
        if not cursor:
            return out


def all_results(api_url: str, race_id: str, class_id: int | None = None) -> list[dict[str, Any]]:
    """Every placing of a closed race, overall or in a class, following the cursor."""
    out: list[dict[str, Any]] = []
    query = {"limit": str(PAGE)}
    if class_id is not None:
        query["classId"] = str(class_id)
    race_path = urllib.parse.quote(race_id, safe="")
    while True:
        page = get_json(
            f"{api_url.rstrip('/')}/races/{race_path}/results?{urllib.parse.urlencode(query)}"
        )
        out.extend(page["entries"])
        cursor = page.get("nextCursor")
        if not cursor:
            return out
        query["cursor"] = cursor
