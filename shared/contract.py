"""The telemetry contract, v2: one JSON object per reading, validated strictly at every boundary.

This module is the single definition of a reading. The stream processor, the simulator, the
local stack's rule bridge and the tests all validate and build readings through it.

v2 differs from v1 in what a device is trusted with. A rider's name and class come from the
race's entries (:mod:`shared.races`), not from readings, so v2 has neither; and ``deviceId`` is
set by the ingest path (the IoT rule takes it from the topic the device may publish on), never
believed from a device's payload. A v1 reading is refused with a reason that says so.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

CONTRACT_VERSION: Final = 2
V1: Final = 1
MAX_READING_BYTES: Final = 1024
"""A reading is 'well under 1 KB'; anything larger is refused before it is parsed."""
MAX_RACE_SECONDS: Final = 86_400
"""The longest race the contract accepts (24 h); it bounds the per-rider second bitmap."""
MAX_ID_LENGTH: Final = 64
NUM_CLASSES: Final = 6
CLASS_IDS: Final = tuple(range(1, NUM_CLASSES + 1))
ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
EVENT_UPDATE: Final = "update"
EVENT_FINAL: Final = "final"


PRINTABLE_PATTERN: Final = r"^(?:[^\p{C}\p{Z}]| )*$"
"""Python's ``str.isprintable``, as a pattern pydantic-core checks without calling back into
Python (a name is in every reading): no character of Unicode's Other (control, format,
surrogate, private use, unassigned) or Separator categories, except the ASCII space."""
NOT_PRINTABLE: Final = "must contain only printable characters"

Id = Annotated[str, Field(pattern=ID_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=PRINTABLE_PATTERN)]


WIRE_MODEL: Final = ConfigDict(
    strict=True,
    extra="forbid",
    frozen=True,
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)
"""How the project's messages are modelled: strict, closed, immutable, camelCase on the wire."""


class Telemetry(BaseModel):
    """One reading of one rider in one race second (contract v2).

    Field names on the wire are camelCase (``raceId``); in Python they are snake_case.
    Validation is strict: ``"5"`` is not an int, ``5.0`` is not an int, ``true`` is not an int.
    """

    model_config = WIRE_MODEL

    v: Literal[2]
    event_id: Annotated[str, Field(pattern=ID_PATTERN)]
    race_id: Id
    rider_id: Id
    second: Annotated[int, Field(ge=0, lt=MAX_RACE_SECONDS)]
    cadence: Annotated[int, Field(ge=0, le=200)]
    resistance: Annotated[int, Field(ge=0, le=100)]
    device_timestamp: Annotated[int, Field(ge=0, lt=2**53)]
    event: Literal["update", "final"]
    device_id: Id | None = None
    """Set by the ingest path: the IoT rule writes the thing name from the topic over whatever
    the payload said; a PutRecords producer (trusted, it holds IAM credentials) may set it or
    leave it out."""

    @property
    def is_final(self) -> bool:
        return self.event == EVENT_FINAL

    def to_json(self) -> bytes:
        """The wire form: compact JSON, camelCase keys (``deviceId`` left out when unset)."""
        return self.model_dump_json(exclude_none=True).encode()


class ContractError(ValueError):
    """A payload that can never become a valid reading; the message names the field(s)."""


def describe(error: ValidationError) -> str:
    """A one-line reason naming each offending field.

    e.g. ``cadence: Input should be less than or equal to 200 (got 250)``.
    """
    parts = []
    for item in error.errors(include_url=False):
        field = ".".join(str(p) for p in item["loc"]) or "reading"
        if item["type"] == "missing":
            parts.append(f"{field}: {item['msg']}")
            continue
        message = item["msg"]
        if (
            item["type"] == "string_pattern_mismatch"
            and (item.get("ctx") or {}).get("pattern") == PRINTABLE_PATTERN
        ):
            message = NOT_PRINTABLE
        got = item.get("input")
        shown = repr(got) if not isinstance(got, dict) else "{...}"
        if len(shown) > 40:
            shown = shown[:37] + "..."
        parts.append(f"{field}: {message} (got {shown})")
    return "; ".join(parts)


def parse_reading(payload: bytes | str) -> Telemetry:
    """Parse one wire payload into a reading, or raise :class:`ContractError` saying why not."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > MAX_READING_BYTES:
        raise ContractError(
            f"reading: payload is {len(raw)} bytes, the limit is {MAX_READING_BYTES}"
        )
    try:
        reading: Telemetry = _validate_json(raw)
    except ValidationError as exc:
        if _is_v1(exc):
            raise ContractError(V1_REFUSED) from exc
        raise ContractError(describe(exc)) from exc
    return reading


V1_REFUSED: Final = (
    "v: contract v1 is no longer accepted: a rider's name and class come from the race's "
    "entries, send v2 readings without them"
)


def _is_v1(error: ValidationError) -> bool:
    """The payload says ``"v": 1`` (only looked at once a reading has failed to parse)."""
    return any(
        item["loc"] == ("v",) and item.get("input") == V1 and type(item.get("input")) is int
        for item in error.errors(include_url=False)
    )


_validate_json = Telemetry.__pydantic_validator__.validate_json
"""The model's own pydantic-core validator (``Telemetry.model_validate_json`` without the Python
wrapper around it: the same strict schema, a sixth of the cost of parsing a reading), because
every reading the processor sees comes through here."""
