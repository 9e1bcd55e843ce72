"""Fixtures of the leaderboard API tests (helpers live in tests/api/helpers.py)."""

from tests.api.helpers import db, ties

__all__ = ["db", "ties"]
