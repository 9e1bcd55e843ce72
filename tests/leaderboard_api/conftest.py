"""Fixtures of the leaderboard API tests (helpers live in tests/leaderboard_api/helpers.py)."""

from tests.leaderboard_api.helpers import db, faults, ties

__all__ = ["db", "faults", "ties"]
