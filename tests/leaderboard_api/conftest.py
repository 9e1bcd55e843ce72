"""Fixtures of the leaderboard API tests (helpers live in tests/leaderboard_api/helpers.py)."""

from tests.leaderboard_api.helpers import clock, db, faults, sent, ties

__all__ = ["clock", "db", "faults", "sent", "ties"]
