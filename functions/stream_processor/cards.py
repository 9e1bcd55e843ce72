"""The race cards a processor checks readings against, kept per execution environment.

A reading is checked against its race's record (schedule, ``closesAt``, state) and its rider's
entry. Reading them per reading would cost more requests than the writes themselves (one per
rider per batch), so each environment keeps a copy of each race's card and refreshes it by the
batch's clock (the processor's, injected: the cache itself reads no clock):

* the records of a batch's races are read again, in one ``BatchGetItem``, once the copy is
  ``RACE_REFRESH_S`` old; a race that does not exist is remembered as unknown just as long;
* the entries are read again (one paginated ``Query``) only when the record's
  ``entriesVersion`` has moved, which every added or changed entry does.

So an organiser's change (a new entry, an early close) applies to every batch whose clock is
``RACE_REFRESH_S`` or more after it; a race created after a reading for it was refused is
found within the same time. A disqualification changes nothing here: it is the closer's.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from shared.ports import RaceCards, TransientError
from shared.races import RACE_REFRESH_S, Race, RaceCard, card

DEFAULT_RACES: Final = 1_024
"""Races whose cards an environment keeps (least recently used first out): far more than run
at once, and a bound on what readings naming made-up races can make it hold."""


@dataclass(frozen=True, slots=True)
class _Copy:
    card: RaceCard | None
    """None: no such race (when it was read)."""
    read_at: int


class RaceCardCache:
    def __init__(
        self,
        source: RaceCards,
        refresh_ms: int = RACE_REFRESH_S * 1000,
        size: int = DEFAULT_RACES,
    ) -> None:
        self._source = source
        self._refresh_ms = refresh_ms
        self._size = size
        self._copies: OrderedDict[str, _Copy] = OrderedDict()

    def cards(
        self, race_ids: Collection[str], now_ms: int
    ) -> tuple[dict[str, RaceCard | None], dict[str, str]]:
        """The card of each race (None: no such race), read at most the refresh time before
        ``now_ms``; and apart, the races that could not be read, with why (transient)."""
        found: dict[str, RaceCard | None] = {}
        stale = []
        for race_id in race_ids:
            copy = self._copies.get(race_id)
            if copy is not None and 0 <= now_ms - copy.read_at < self._refresh_ms:
                self._copies.move_to_end(race_id)
                found[race_id] = copy.card
            else:
                stale.append(race_id)
        if not stale:
            return found, {}
        try:
            records = self._source.get_races(stale, consistent=True)
        except TransientError as exc:
            return found, dict.fromkeys(stale, f"race records: {exc}")
        failed: dict[str, str] = {}
        for race_id in stale:
            try:
                found[race_id] = self._read(race_id, records.get(race_id))
            except TransientError as exc:
                failed[race_id] = f"entries: {exc}"
                continue
            self._store(race_id, found[race_id], now_ms)
        return found, failed

    def _read(self, race_id: str, race: Race | None) -> RaceCard | None:
        """The race's card from its record just read: the entries kept from the copy while
        the record's entries version has not moved, else read again (strongly consistent, so
        they hold at least every change the version counts)."""
        if race is None:
            return None
        copy = self._copies.get(race_id)
        kept = copy.card if copy is not None else None
        if kept is not None and kept.race.entries_version == race.entries_version:
            return RaceCard(race, kept.entries)
        return card(race, self._source.entries(race_id, consistent=True))

    def _store(self, race_id: str, found: RaceCard | None, now_ms: int) -> None:
        self._copies[race_id] = _Copy(found, now_ms)
        self._copies.move_to_end(race_id)
        while len(self._copies) > self._size:
            self._copies.popitem(last=False)

    def clear(self) -> None:
        self._copies.clear()
