"""Fault injection on the way out: resent readings and reordering, seeded and deterministic.

- ``duplicate_fraction``: that fraction of readings (chosen by a hash of the seed and the
  eventId) is sent a second time, byte for byte (same eventId, same payload): what a device
  does when it missed an acknowledgement. The copy goes through the reorder buffer like any
  reading, so it arrives later than the original.
- ``reorder_window``: readings pass through a buffer of that many slots; each step emits a
  random slot (seeded), so a reading can be overtaken by up to ``window - 1`` later ones,
  across ticks. ``drain()`` empties the buffer at the end.

Neither changes the ground truth: the pipeline must count each (race, rider, second) once.
"""

from __future__ import annotations

import hashlib
import random
import struct

from simulator.transports.base import Outgoing


def _unit(seed: int, event_id: str) -> float:
    digest = hashlib.blake2b(f"{seed}/dup/{event_id}".encode(), digest_size=8).digest()
    value: int = struct.unpack("<Q", digest)[0]
    return (value >> 11) / float(1 << 53)


class FaultInjector:
    def __init__(self, seed: int, duplicate_fraction: float = 0.0, reorder_window: int = 0):
        if not 0.0 <= duplicate_fraction <= 1.0:
            raise ValueError("duplicate fraction must be between 0 and 1")
        if reorder_window < 0:
            raise ValueError("reorder window must be 0 or more")
        self.seed = seed
        self.duplicate_fraction = duplicate_fraction
        self.window = reorder_window
        self.duplicates = 0
        self._rng = random.Random(f"{seed}/reorder")
        self._buffer: list[Outgoing] = []

    @property
    def active(self) -> bool:
        return self.duplicate_fraction > 0 or self.window > 1

    def feed(self, items: list[Outgoing]) -> list[Outgoing]:
        """What to send now for these items (with copies, in the injected order)."""
        if not self.active:
            return items
        stream: list[Outgoing] = []
        for item in items:
            stream.append(item)
            if self.duplicate_fraction and _unit(self.seed, item.event_id) < (
                self.duplicate_fraction
            ):
                stream.append(item)
                self.duplicates += 1
        if self.window <= 1:
            return stream
        out: list[Outgoing] = []
        for item in stream:
            self._buffer.append(item)
            if len(self._buffer) >= self.window:
                out.append(self._take())
        return out

    def _take(self) -> Outgoing:
        i = self._rng.randrange(len(self._buffer))
        self._buffer[i], self._buffer[-1] = self._buffer[-1], self._buffer[i]
        return self._buffer.pop()

    def drain(self) -> list[Outgoing]:
        out: list[Outgoing] = []
        while self._buffer:
            out.append(self._take())
        return out
