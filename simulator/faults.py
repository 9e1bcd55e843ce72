"""Fault injection on the way out: resent readings and reordering, seeded and deterministic;
and cheating: readings the pipeline must refuse.

- ``duplicate_fraction``: that fraction of readings (chosen by a hash of the seed and the
  eventId) is sent a second time, byte for byte (same eventId, same payload): what a device
  does when it missed an acknowledgement. The copy goes through the reorder buffer like any
  reading, so it arrives later than the original.
- ``reorder_window``: readings pass through a buffer of that many slots; each step emits a
  random slot (seeded), so a reading can be overtaken by up to ``window - 1`` later ones,
  across ticks. ``drain()`` empties the buffer at the end.

Neither changes the ground truth: the pipeline must count each (race, rider, second) once.

:class:`Cheater` sends readings that must not count (:class:`Cheats`): each is kept out of the
ground truth and tallied there by the reason the pipeline must refuse it for. They bypass the
fault injector (neither copied nor reordered), so those tallies are what was sent (a transport's
own resends aside: the summary counts them).
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from dataclasses import dataclass
from typing import Any, Final

from shared.contract import (
    CONTRACT_VERSION,
    EVENT_UPDATE,
    MAX_ID_LENGTH,
    MAX_RACE_SECONDS,
    Telemetry,
)
from shared.counting import Refusal
from shared.races import DEFAULT_FUTURE_SLACK_S
from simulator.fleet import Fleet
from simulator.model import RaceConfig, event_id, rider, seconds_of
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


# --- Cheating: readings the pipeline must refuse ------------------------------------------------
FUTURE_LEAD_S: Final = DEFAULT_FUTURE_SLACK_S + 15
"""How far past the race clock a reading from the future claims to be: beyond the processor's
slack by more than the pipeline takes to deliver it, so it is still from the future then."""
FORGED_CADENCE: Final = 200
FORGED_RESISTANCE: Final = 100
"""A forged reading rides flat out: were it counted, its rider's score would show it."""
UNKNOWN_RACE_SUFFIX: Final = "-unknown"


@dataclass(frozen=True)
class Cheats:
    """How many readings of each kind that must not count to send (``breakaway simulate``'s
    cheating options). None of them is in the ground truth; each is tallied there under the
    reason the pipeline must refuse it for (``shared.counting.Refusal``), except spoofed ones,
    which count: the rule takes ``deviceId`` from the topic, whatever the payload says."""

    future: int = 0
    """Readings of a second beyond the race clock and its slack (sent early; the real reading
    of that second follows at its time)."""
    past_duration: int = 0
    """Readings of seconds at and past the race's duration (durationS, durationS + 1, ...)."""
    wrong_device: int = 0
    """Riders' readings published by a device their entry does not name (instead of theirs)."""
    spoof_device: int = 0
    """Readings whose payload names another device, published by the rider's own (MQTT)."""
    unknown_race: int = 0
    """Readings for a race that does not exist."""
    unentered: int = 0
    """Readings of riders nobody entered."""
    after_final: int = 0
    """Readings of seconds after a rider's final one (riders who stopped early), sent once the
    rest is acknowledged."""

    @property
    def total(self) -> int:
        return sum(vars(self).values())


@dataclass(frozen=True)
class Diverted:
    """A rider's reading sent another way: ``counts`` says whether it still counts."""

    item: Outgoing
    counts: bool


def outgoing(reading: Telemetry, device_id: str | None) -> Outgoing:
    return Outgoing(
        reading.race_id, reading.rider_id, reading.event_id, reading.to_json(), device_id
    )


class Cheater:
    """Which riders cheat how, chosen by the seed, and the readings they send.

    Riders are drawn in a seeded order: the no-shows first (entered, never riding), then those
    who publish a second from the wrong device, then those who spoof a device, each set apart;
    the other cheats take riders from the rest of that order in turn.
    """

    def __init__(self, config: RaceConfig, fleet: Fleet, cheats: Cheats, no_shows: int = 0) -> None:
        check_cheats(config, fleet, cheats, no_shows)
        self.config, self.fleet, self.cheats = config, fleet, cheats
        order = list(range(config.riders))
        random.Random(f"{config.seed}/{config.race_id}/cheats").shuffle(order)
        self.no_shows = frozenset(order[:no_shows])
        riding = order[no_shows:]
        wrong = riding[: cheats.wrong_device]
        spoof = riding[cheats.wrong_device : cheats.wrong_device + cheats.spoof_device]
        self._wrong = {(i, _middle(config, i)): fleet.other_device(i) for i in wrong}
        self._spoof = {(i, _middle(config, i)): fleet.other_device(i) for i in spoof}
        self._others = riding[len(wrong) + len(spoof) :] or riding
        self._future = self._take(cheats.future)
        self.refusals: dict[Refusal, int] = {}
        self.spoofed_counted = 0
        if cheats.after_final > len(self._after_final_seconds()):
            raise ValueError(
                f"{cheats.after_final} readings after a rider's final need riders who stop "
                f"early: race {config.race_id} (seed {config.seed}) has "
                f"{len(self._after_final_seconds())} seconds after such a final; try another "
                "--seed or fewer"
            )

    def _after_final_seconds(self) -> list[tuple[int, int]]:
        """(rider, second) of every second after a riding rider's final one."""
        return [
            (i, s)
            for i in range(self.config.riders)
            if i not in self.no_shows
            for s in seconds_of(self.config)
            if s > rider(self.config, i).last_second
        ]

    def unsent(self) -> dict[str, int]:
        """Cheating readings asked for that the race gave no room to send (a reading from the
        future needs a second far enough ahead of the race clock within the race)."""
        return {"future": len(self._future)} if self._future else {}

    def _take(self, n: int) -> list[int]:
        return [self._others[k % len(self._others)] for k in range(n)]

    def _device(self, index: int) -> str | None:
        return self.fleet.device_of(index)

    def _forge(self, index: int, second: int, tag: str, **change: Any) -> Outgoing:
        """A flat-out reading of rider ``index`` at ``second``, its own eventId."""
        r = rider(self.config, index)
        device = change.pop("device", self._device(index))
        fields: dict[str, Any] = {
            "v": CONTRACT_VERSION,
            "event_id": event_id(self.config, index, second) + tag,
            "race_id": self.config.race_id,
            "rider_id": r.rider_id,
            "second": second,
            "cadence": FORGED_CADENCE,
            "resistance": FORGED_RESISTANCE,
            "device_timestamp": self.config.start_ms + second * 1000,
            "event": EVENT_UPDATE,
            "device_id": device if self.fleet.in_payload else None,
        }
        return outgoing(Telemetry(**(fields | change)), device)

    def _refuse(self, reason: Refusal, items: list[Outgoing]) -> list[Outgoing]:
        if items:
            self.refusals[reason] = self.refusals.get(reason, 0) + len(items)
        return items

    def divert(self, index: int, second: int, reading: Telemetry) -> Diverted | None:
        """How rider ``index``'s reading at ``second`` goes, if not the usual way."""
        key = (index, second)
        if key in self._wrong:
            device = self._wrong[key]
            wrong = (
                reading.model_copy(update={"device_id": device})
                if self.fleet.in_payload
                else reading
            )
            self._refuse(Refusal.WRONG_DEVICE, [item := outgoing(wrong, device)])
            return Diverted(item, counts=False)
        if key in self._spoof:
            spoofed = reading.model_copy(update={"device_id": self._spoof[key]})
            self.spoofed_counted += 1
            return Diverted(outgoing(spoofed, self._device(index)), counts=True)
        return None

    def at_tick(self, second: int, race_clock_s: float) -> list[Outgoing]:
        """Cheating readings due when ``second`` is sent, the race clock (by the processor's
        reckoning, from the race's start) then at ``race_clock_s``: at the first second, the
        unknown race's and the unentered riders'; the future ones as soon as there is a second
        far enough ahead within the race."""
        out: list[Outgoing] = []
        if second == seconds_of(self.config)[0]:
            out += self._refuse(Refusal.UNKNOWN_RACE, self._unknown_race(second))
            out += self._refuse(Refusal.NOT_ENTERED, self._unentered(second))
        ahead = math.floor(race_clock_s) + FUTURE_LEAD_S
        if self._future and 0 <= ahead < self.config.duration:
            riders, self._future = self._future, []
            forged = [self._forge(i, ahead, "-future") for i in riders]
            out += self._refuse(Refusal.FROM_THE_FUTURE, forged)
        return out

    def _unknown_race(self, second: int) -> list[Outgoing]:
        race = unknown_race_id(self.config.race_id)
        return [
            self._forge(i, second, "-unknown-race", race_id=race)
            for i in self._take(self.cheats.unknown_race)
        ]

    def _unentered(self, second: int) -> list[Outgoing]:
        out = []
        for k in range(self.cheats.unentered):
            index = self.config.riders + k
            out.append(self._forge(index, second, "-unentered"))
        return out

    def at_end(self) -> list[Outgoing]:
        """After the last second: readings of seconds at and past the duration."""
        d = self.config.duration
        out = [
            self._forge(i, d + k, "-past-duration")
            for k, i in enumerate(self._take(self.cheats.past_duration))
            if d + k < MAX_RACE_SECONDS
        ]
        return self._refuse(Refusal.SECOND_OUT_OF_RANGE, out)

    def after_final(self) -> list[Outgoing]:
        """Once everything else is acknowledged (so each rider's final is ahead of them):
        readings of seconds after a rider's final one, from riders who stopped early."""
        seconds = seconds_of(self.config)
        after = {
            i: [s for s in seconds if s > rider(self.config, i).last_second]
            for i in range(self.config.riders)
            if i not in self.no_shows
        }
        stoppers = [i for i, later in after.items() if later]
        out: list[Outgoing] = []
        for k in range(self.cheats.after_final):
            if not stoppers:
                break
            i = stoppers[k % len(stoppers)]
            j = k // len(stoppers)
            if j < len(after[i]):
                out.append(self._forge(i, after[i][j], "-after-final"))
        return self._refuse(Refusal.AFTER_FINAL, out)


def unknown_race_id(race_id: str) -> str:
    """A race id that is not ``race_id``'s race, within the 64 characters an id may have."""
    return race_id[: MAX_ID_LENGTH - len(UNKNOWN_RACE_SUFFIX)] + UNKNOWN_RACE_SUFFIX


def _middle(config: RaceConfig, index: int) -> int:
    """The middle one of the seconds rider ``index`` rides."""
    rode = [s for s in seconds_of(config) if s <= rider(config, index).last_second]
    return rode[len(rode) // 2]


def check_cheats(config: RaceConfig, fleet: Fleet, cheats: Cheats, no_shows: int) -> None:
    """Refuse cheats that cannot be told apart from fair riding."""
    apart = no_shows + cheats.wrong_device + cheats.spoof_device
    if apart > config.riders or (cheats.total and no_shows >= config.riders):
        raise ValueError(
            f"{config.riders} riders cannot hold {no_shows} no-shows, "
            f"{cheats.wrong_device} wrong-device and {cheats.spoof_device} spoofing riders "
            "and still ride"
        )
    if cheats.wrong_device and not (fleet.devices and (fleet.in_payload or len(fleet.devices) > 1)):
        raise ValueError(
            "a reading from the wrong device needs riders entered with devices, "
            "and over MQTT at least two connections (--connections)"
        )
    if cheats.spoof_device and (fleet.in_payload or not fleet.devices):
        raise ValueError(
            "a spoofed deviceId is an MQTT cheat (the topic overrides it); a "
            "PutRecords producer is trusted with deviceId"
        )
