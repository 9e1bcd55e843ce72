"""Security headers (issue 16, item 13). The live page runs only the script and style it ships,
inline and pinned by their SHA-256 (a Content-Security-Policy with no ``'unsafe-inline'``),
may not be framed and sends no referrer; every response, JSON included, is ``nosniff``.

The hashes are computed here independently of the handler, with the standard library's HTML
parser, over the page file as served; the browser test (test_api_browser.py) checks that
Chromium, enforcing the policy, runs the page with no violation.
"""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser

import pytest

from functions.leaderboard_api import handler as api
from tests.leaderboard_api.helpers import Db, Reply, fixture, get, invoke
from tests.support.faults import FaultInjector

EVERY_RESPONSE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


class InlineBlocks(HTMLParser):
    """The text of each inline ``<script>`` and ``<style>`` element, exactly as written."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.blocks: dict[str, list[str]] = {"script": [], "style": []}
        self._open: str | None = None
        self._inline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.blocks:
            self._open, self._inline = tag, not any(name == "src" for name, _ in attrs)
            if self._inline:
                self.blocks[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open and self._inline:
            self.blocks[self._open][-1] += data


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def page_blocks() -> dict[str, list[str]]:
    parser = InlineBlocks()
    parser.feed(api.PAGE_FILE.read_text(encoding="utf-8"))
    return parser.blocks


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        assert name not in parsed, name
        parsed[name] = sources
    return parsed


def test_the_page_carries_a_policy_pinning_its_inline_script_and_style(db: Db) -> None:
    reply = invoke(fixture("rest_page.json"))

    assert reply.status == 200
    blocks = page_blocks()
    assert len(blocks["script"]) == len(blocks["style"]) == 1
    assert directives(reply.headers["content-security-policy"]) == {
        "default-src": ["'none'"],
        "script-src": [sha256_source(b) for b in blocks["script"]],
        "style-src": [sha256_source(b) for b in blocks["style"]],
        "connect-src": ["'self'"],
        "img-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    assert "unsafe" not in reply.headers["content-security-policy"]
    assert {k: reply.headers[k] for k in EVERY_RESPONSE} == EVERY_RESPONSE


def _security(reply: Reply) -> dict[str, str]:
    return {
        k: v
        for k, v in reply.headers.items()
        if k in EVERY_RESPONSE or k == "content-security-policy"
    }


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/races/race-1/leaderboard", 200),
        ("/races", 200),
        ("/races/race-1/riders/rider-01", 200),
        ("/openapi.json", 200),
        ("/races/nope", 404),
        ("/no/such/route", 404),
        ("/races/race-1/leaderboard?limit=0", 422),
    ],
)
def test_every_json_response_is_nosniff(ties: Db, path: str, status: int) -> None:
    route, _, query = path.partition("?")
    reply = get(route, dict([query.split("=")]) if query else None)

    assert reply.status == status
    assert reply.headers["content-type"] == "application/json"
    assert _security(reply) == EVERY_RESPONSE


@pytest.mark.parametrize(("code", "status"), [("ThrottlingException", 503), ("Boom", 500)])
def test_error_responses_are_nosniff_too(faults: FaultInjector, code: str, status: int) -> None:
    faults.fail("Query", times=100, code=code)

    reply = get("/races/race-1/leaderboard")

    assert reply.status == status
    assert _security(reply) == EVERY_RESPONSE


def test_the_swagger_page_is_nosniff_and_unframed_without_the_page_policy(db: Db) -> None:
    """Swagger UI loads its script and style from a CDN: the live page's policy would block
    it, so it gets every other header."""
    reply = get("/swagger")

    assert reply.status == 200
    assert _security(reply) == EVERY_RESPONSE
