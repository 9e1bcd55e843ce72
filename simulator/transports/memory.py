"""A transport that keeps what it is given: for tests and for feeding readings in-process."""

from __future__ import annotations

from simulator.transports.base import Outgoing, Stats, TransportError


class MemoryTransport:
    def __init__(self, devices: tuple[str, ...] = (), *, device_in_payload: bool = False) -> None:
        self.stats = Stats()
        self.items: list[Outgoing] = []
        self.devices = devices
        self.device_in_payload = device_in_payload

    def send(self, items: list[Outgoing]) -> None:
        self.items.extend(items)
        self.stats.add(sent=len(items), acknowledged=len(items))

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self) -> None:
        return None

    @property
    def error(self) -> TransportError | None:
        return None
