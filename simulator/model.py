"""The rider model: seeded and pure.

Every reading is a function of (seed, race id, rider index, race second) and nothing else:
``reading(config, rider, second)`` always returns the same :class:`Telemetry` (contract v2: no
name or class; the device it comes from is the ingest path's to say), and the same seed gives
byte-identical wire payloads. ``deviceTimestamp`` is derived too: it is
``start_ms + second * 1000`` (the race clock), where ``start_ms`` is part of the config (the
CLI defaults it to the wall clock when the run starts; pass ``--start-ms`` to pin it). So two
runs with the same seed and start_ms produce the same bytes; two runs with the same seed but
different start times differ in ``deviceTimestamp`` only.

A rider has a class (spread round-robin over the classes in play, shuffled by the seed), an
ability, a preferred cadence and resistance, a warm-up, efforts (30-second blocks where the
rider pushes harder, chosen by a hash of the block), fatigue (output falls over the race),
per-second noise, and a last second: most riders ride the whole race, a few stop early. The
last reading carries ``event="final"``. A rider's name and class go into the race's entries
(:func:`entry`), never into its readings.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from shared.contract import (
    CLASS_IDS,
    CONTRACT_VERSION,
    EVENT_FINAL,
    EVENT_UPDATE,
    MAX_RACE_SECONDS,
    Telemetry,
)
from shared.races import Entry

_FIRST = (
    "Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Greta", "Hugo", "Ines", "Jonas", "Kaia",
    "Liam", "Maya", "Nils", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Tess", "Umar", "Vera",
    "Wen", "Xavi", "Yara", "Zoe",
)  # fmt: skip
_LAST = "ABCDEFGHIJKLMNOPRSTVWZ"
EFFORT_BLOCK_SECONDS = 30
_NAMESPACE = uuid.UUID("6f0c1f1e-7b4b-5d1a-9a55-3c2f0e6b7a10")


@dataclass(frozen=True, slots=True)
class RaceConfig:
    """Everything a race's readings depend on."""

    race_id: str
    riders: int
    duration: int
    """Race seconds: readings carry seconds 0 .. duration-1 (at 1 Hz)."""
    seed: int = 1
    classes: int = len(CLASS_IDS)
    """How many of the six classes are in play (1-6); riders are spread evenly over them."""
    start_ms: int = 0
    """Epoch ms of race second 0; ``deviceTimestamp = start_ms + second * 1000``."""
    period: int = 1
    """Seconds between two readings of a rider (1 = 1 Hz, 2 = 0.5 Hz, ...)."""

    def __post_init__(self) -> None:
        if self.riders < 1:
            raise ValueError("riders must be at least 1")
        if not 1 <= self.duration <= MAX_RACE_SECONDS + 1:
            raise ValueError(f"duration must be 1..{MAX_RACE_SECONDS + 1} seconds")
        if not 1 <= self.classes <= len(CLASS_IDS):
            raise ValueError(f"classes must be 1..{len(CLASS_IDS)}")
        if self.period < 1:
            raise ValueError("period must be at least 1 second")


@dataclass(frozen=True, slots=True)
class Rider:
    index: int
    rider_id: str
    name: str
    class_id: int
    ability: float
    cadence: float
    resistance: float
    warmup: int
    fatigue: float
    effort_share: float
    last_second: int
    """The rider's final reading is at this second."""
    key: bytes
    """``seed/race/index/``: the prefix of every hash drawn for this rider."""


def rider_id(index: int) -> str:
    return f"rider-{index:05d}"


_TWO_UNITS = struct.Struct("<QQ")
_SCALE = float(1 << 53)


def _units(key: bytes) -> tuple[float, float]:
    """Two uniform floats in [0, 1) from one hash of ``key``: cheap, pure, seedable."""
    a, b = _TWO_UNITS.unpack(hashlib.blake2b(key, digest_size=16).digest())
    return (a >> 11) / _SCALE, (b >> 11) / _SCALE


@lru_cache(maxsize=65_536)
def rider(config: RaceConfig, index: int) -> Rider:
    """The rider's fixed traits, drawn from a generator seeded by (seed, race, index)."""
    rng = random.Random(f"{config.seed}/{config.race_id}/{index}")
    # Spread evenly over the classes in play; which class gets the remainder depends on seed.
    offset = random.Random(f"{config.seed}/{config.race_id}/classes").randrange(config.classes)
    class_id = CLASS_IDS[(index + offset) % config.classes]
    ability = min(1.5, max(0.5, rng.gauss(1.0, 0.15)))
    last = _schedule_last(config, rng)
    return Rider(
        index=index,
        rider_id=rider_id(index),
        name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}.",
        class_id=class_id,
        ability=ability,
        cadence=rng.uniform(75, 100) + 6 * class_id,
        resistance=rng.uniform(25, 45) + 3 * class_id,
        warmup=min(rng.randint(60, 240), max(1, config.duration // 5)),
        fatigue=rng.uniform(0.05, 0.25),
        effort_share=rng.uniform(0.15, 0.35),
        last_second=last,
        key=f"{config.seed}/{config.race_id}/{index}/".encode(),
    )


def _schedule_last(config: RaceConfig, rng: random.Random) -> int:
    """Most riders finish; about 4% stop somewhere in the second half (still sending final)."""
    seconds = seconds_of(config)
    full = seconds[-1]
    if len(seconds) > 4 and rng.random() < 0.04:
        return seconds[rng.randrange(len(seconds) // 2, len(seconds))]
    return full


@lru_cache(maxsize=64)
def seconds_of(config: RaceConfig) -> tuple[int, ...]:
    """The race seconds at which riders report (every ``period`` seconds)."""
    return tuple(range(0, config.duration, config.period))


def _uuid5(name: bytes) -> str:
    """``str(uuid.uuid5(_NAMESPACE, name))``, without building a UUID object."""
    h = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name).digest()[:16])  # noqa: S324 (RFC 4122)
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


_NAMESPACE_BYTES = _NAMESPACE.bytes


def event_id(config: RaceConfig, index: int, second: int) -> str:
    """A uuid5 of ``seed/race/index/second``: unique per reading, the same every run."""
    return _uuid5(rider(config, index).key + str(second).encode())


def entry(config: RaceConfig, index: int, device_id: str | None = None) -> Entry:
    """Rider ``index``'s entry in the race: its name and class, and the device that carries it."""
    r = rider(config, index)
    return Entry(rider_id=r.rider_id, name=r.name, class_id=r.class_id, device_id=device_id)


def reading(config: RaceConfig, index: int, second: int, device_id: str | None = None) -> Telemetry:
    """Rider ``index``'s reading at race ``second`` (pure); ``device_id`` is set only by a
    producer trusted to say it (a PutRecords gateway), never by a device."""
    r = rider(config, index)
    if second > r.last_second:
        raise ValueError(f"rider {index} stopped at second {r.last_second}")
    return reading_of(config, r, second, device_id)


def reading_of(
    config: RaceConfig, r: Rider, second: int, device_id: str | None = None
) -> Telemetry:
    """``r``'s reading at ``second`` (the same as :func:`reading`, without the checks)."""
    progress = second / max(1, config.duration - 1)
    warm = min(1.0, 0.55 + 0.45 * second / r.warmup)
    tired = 1.0 - r.fatigue * progress * progress
    effort, _ = _units(r.key + b"e" + str(second // EFFORT_BLOCK_SECONDS).encode())
    push = 1.18 if effort < r.effort_share else 1.0
    wave = 1.0 + 0.04 * math.sin(second / 17.0 + r.index)
    name = r.key + str(second).encode()
    n1, n2 = _units(name)
    level = r.ability * warm * tired * wave
    cadence = r.cadence * level * push + (n1 - 0.5) * 10
    resistance = r.resistance * level * (1.25 if push > 1 else 1.0) + (n2 - 0.5) * 6
    return Telemetry(
        v=CONTRACT_VERSION,
        event_id=_uuid5(name),
        race_id=config.race_id,
        rider_id=r.rider_id,
        second=second,
        cadence=max(0, min(200, round(cadence))),
        resistance=max(0, min(100, round(resistance))),
        device_timestamp=config.start_ms + second * 1000,
        event=EVENT_FINAL if second == r.last_second else EVENT_UPDATE,
        device_id=device_id,
    )


def tick(config: RaceConfig, second: int) -> list[Telemetry]:
    """Every still-riding rider's reading at ``second``, in rider order."""
    return [reading_of(config, r, second) for r in riders_of(config) if second <= r.last_second]


@lru_cache(maxsize=16)
def riders_of(config: RaceConfig) -> tuple[Rider, ...]:
    return tuple(rider(config, i) for i in range(config.riders))


def race(config: RaceConfig) -> Iterator[list[Telemetry]]:
    """The whole race, one list of readings per reporting second, in time order."""
    for second in seconds_of(config):
        batch = tick(config, second)
        if batch:
            yield batch
