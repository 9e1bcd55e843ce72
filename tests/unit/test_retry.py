"""The one retry helper: resends what is left, waits with full jitter, gives up as transient."""

from __future__ import annotations

import pytest

from shared.ports import TransientError
from shared.retry import Backoff, UnfinishedError, resend


def test_resend_stops_as_soon_as_nothing_is_left() -> None:
    sent: list[list[str]] = []
    waits: list[float] = []

    def send(pending: list[str]) -> list[str]:
        sent.append(pending)
        return pending[1:]

    resend(send, ["a", "b", "c"], Backoff(attempts=5, base_s=0.1), what="x", sleep=waits.append)
    assert sent == [["a", "b", "c"], ["b", "c"], ["c"]]
    assert len(waits) == 2


def test_waits_are_full_jitter_below_the_exponential_cap() -> None:
    policy = Backoff(attempts=8, base_s=0.05, cap_s=0.3)
    for attempt, ceiling in enumerate([0.05, 0.1, 0.2, 0.3, 0.3]):
        draws = [policy.delay(attempt) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling / 2  # spread over the range, not a fixed delay
        assert len(set(draws)) > 150


def test_gives_up_as_transient_naming_what_is_left_and_never_sleeps_after_the_last() -> None:
    waits: list[float] = []
    with pytest.raises(
        TransientError, match=r"^batch get: 2 left unprocessed after 3 attempts$"
    ) as exc:
        resend(lambda p: p, ["a", "b"], Backoff(3, 0.01), what="batch get", sleep=waits.append)
    assert len(waits) == 2
    assert isinstance(exc.value, UnfinishedError)
    assert exc.value.pending == ["a", "b"]


def test_stalled_only_waits_after_an_attempt_that_cleared_nothing() -> None:
    answers = iter([["b", "c"], ["b", "c"], ["c"], []])
    waits: list[float] = []
    resend(
        lambda _: next(answers),
        ["a", "b", "c"],
        Backoff(5, 0.01),
        what="x",
        stalled_only=True,
        sleep=waits.append,
    )
    assert len(waits) == 1  # after the second attempt only: it left both entries pending


def test_errors_from_send_pass_through() -> None:
    def send(pending: list[str]) -> list[str]:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        resend(send, ["a"], Backoff(3, 0.01), what="x", sleep=lambda _: None)


@pytest.mark.parametrize(("attempts", "base_s", "cap_s"), [(0, 0.1, 1.0), (1, -0.1, 1.0)])
def test_a_policy_that_cannot_work_is_refused(attempts: int, base_s: float, cap_s: float) -> None:
    with pytest.raises(ValueError, match="Backoff needs"):
        Backoff(attempts, base_s, cap_s)
