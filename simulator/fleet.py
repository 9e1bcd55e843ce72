"""Which device carries which rider, and so which device each rider is entered with.

Contract v2 trusts a reading's ``deviceId`` only from the ingest path. Over MQTT it is the
thing name the rule reads from the topic, so a rider's device is the connection that publishes
it: the simulator's pooled connections each carry many riders (as a gym hub forwards its bikes),
rider ``i`` on connection ``i % connections``, and each rider is entered with that connection's
client id. The assignment depends only on the rider's index and the pool, so an entry list made
before the ride names the devices the ride publishes from.

Over Kinesis PutRecords the producer holds IAM credentials and is trusted to say where a reading
comes from: the simulator is one gateway, :data:`PRODUCER_ID`, that stamps its id into every
reading and enters every rider with it. The entries then name a device on both paths, so the
"right device" rule is exercised end to end over either; and the archive says which producer
sent each reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shared.contract import MAX_ID_LENGTH
from shared.races import Entry
from simulator.model import RaceConfig, entry, riders_of

PRODUCER_ID: Final = "breakaway-simulator"
"""The simulator's id as a PutRecords producer (a trusted gateway)."""
OTHER_SUFFIX: Final = "-other"


@dataclass(frozen=True)
class Fleet:
    devices: tuple[str, ...] = ()
    """The device ids readings are published under; empty: riders ride without a device."""
    in_payload: bool = False
    """True when the producer writes ``deviceId`` into each reading (PutRecords); False when the
    ingest path takes it from where the reading was published (the MQTT topic)."""

    def device_of(self, index: int) -> str | None:
        """The device that carries rider ``index`` (None without devices)."""
        if not self.devices:
            return None
        return self.devices[index % len(self.devices)]

    def other_device(self, index: int) -> str:
        """A device that is not rider ``index``'s: the next one in the pool, or (a single
        producer) its id with a suffix, for a reading claimed by the wrong device."""
        if not self.devices:
            raise ValueError("riders without devices have no wrong device")
        if len(self.devices) > 1:
            return self.devices[(index + 1) % len(self.devices)]
        own = self.devices[0]
        return own[: MAX_ID_LENGTH - len(OTHER_SUFFIX)] + OTHER_SUFFIX


def local_device_ids(race_id: str, count: int) -> tuple[str, ...]:
    """The client ids of ``count`` connections to the local broker for a race: ``<race>-d000``,
    ``<race>-d001``, ... A function of the race alone, so an existing race's entries name the
    devices a later ride publishes from; distinct races get distinct client ids (the broker
    lets one client id connect once). The race id is cut so that an id stays within 64."""
    digits = max(3, len(str(count - 1)))
    base = race_id[: MAX_ID_LENGTH - 2 - digits]
    return tuple(f"{base}-d{i:0{digits}d}" for i in range(count))


def entries(config: RaceConfig, fleet: Fleet) -> list[Entry]:
    """Every rider of the field as entered: name, class, and the device that carries it."""
    return [entry(config, r.index, fleet.device_of(r.index)) for r in riders_of(config)]
