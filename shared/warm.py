"""An execution environment's warm state, for the functions' entry points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Warm(Generic[T]):
    """What one execution environment keeps between invocations: built by ``cold_start`` on the
    first invocation, or put in place with :meth:`install` (tests, benchmarks, the local stack).
    A handler module holds one at module level, so each environment (each copy of the module,
    in the local stack) has its own."""

    def __init__(self, cold_start: Callable[[], T]) -> None:
        self._cold_start = cold_start
        self.value: T | None = None

    def install(self, value: T | None) -> None:
        """Use ``value`` for the next invocations (None: the next one starts cold)."""
        self.value = value

    def get(self) -> T:
        """The warm state, built on the first call."""
        if self.value is None:
            self.value = self._cold_start()
        return self.value
