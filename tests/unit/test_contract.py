"""The telemetry contract v2: every rule, with the message a producer will see."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.contract import ContractError, Telemetry, parse_reading

VALID: dict[str, Any] = {
    "v": 2,
    "eventId": "0b6f9a52-5a4e-4b8e-9a3f-2f1e1c9d0a11",
    "raceId": "race-2026_11",
    "riderId": "rider-0042",
    "second": 17,
    "cadence": 92,
    "resistance": 48,
    "deviceTimestamp": 1763800017000,
    "event": "update",
}


def parse(**changes: Any) -> Telemetry:
    return parse_reading(json.dumps({**VALID, **changes}))


def test_a_valid_reading_round_trips_in_camel_case() -> None:
    reading = parse()

    assert (reading.race_id, reading.rider_id, reading.second, reading.device_id) == (
        "race-2026_11",
        "rider-0042",
        17,
        None,
    )
    assert json.loads(reading.to_json()) == VALID  # no deviceId when there is none
    assert not reading.is_final
    assert parse(event="final").is_final


def test_a_device_id_set_by_the_ingest_path_round_trips() -> None:
    reading = parse(deviceId="bike-07")

    assert reading.device_id == "bike-07"
    assert json.loads(reading.to_json()) == {**VALID, "deviceId": "bike-07"}


def test_a_v1_reading_is_refused_with_a_reason_that_says_so() -> None:
    v1 = {**VALID, "v": 1, "name": "Ann Rider", "classId": 3}

    with pytest.raises(ContractError) as caught:
        parse_reading(json.dumps(v1))

    assert str(caught.value) == (
        "v: contract v1 is no longer accepted: a rider's name and class come from the race's "
        "entries, send v2 readings without them"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"v": 3}, "v: Input should be 2 (got 3)"),
        ({"v": "1"}, "v: Input should be 2 (got '1')"),
        ({"v": True}, "v: Input should be 2 (got True)"),
        ({"second": "3"}, "second: Input should be a valid integer (got '3')"),
        ({"cadence": True}, "cadence: Input should be a valid integer (got True)"),
        ({"second": 1.0}, "second: Input should be a valid integer (got 1.0)"),
        ({"second": -1}, "second: Input should be greater than or equal to 0 (got -1)"),
        ({"second": 86400}, "second: Input should be less than 86400 (got 86400)"),
        ({"cadence": 201}, "cadence: Input should be less than or equal to 200 (got 201)"),
        ({"resistance": 101}, "resistance: Input should be less than or equal to 100 (got 101)"),
        (
            {"deviceTimestamp": -5},
            "deviceTimestamp: Input should be greater than or equal to 0 (got -5)",
        ),
        (
            {"riderId": "a b"},
            "riderId: String should match pattern '^[A-Za-z0-9_-]{1,64}$' (got 'a b')",
        ),
        ({"raceId": ""}, "raceId: String should match pattern '^[A-Za-z0-9_-]{1,64}$' (got '')"),
        (
            {"riderId": "r" * 65},
            "riderId: String should match pattern '^[A-Za-z0-9_-]{1,64}$' (got '"
            + "r" * 36
            + "...)",
        ),
        (
            {"deviceId": "bike 7"},
            "deviceId: String should match pattern '^[A-Za-z0-9_-]{1,64}$' (got 'bike 7')",
        ),
        ({"name": "Ann Rider"}, "name: Extra inputs are not permitted (got 'Ann Rider')"),
        ({"classId": 3}, "classId: Extra inputs are not permitted (got 3)"),
        (
            {"event": "start"},
            "event: Input should be 'update' or 'final' (got 'start')",
        ),
        ({"speed": 30}, "speed: Extra inputs are not permitted (got 30)"),
    ],
)
def test_each_rule_is_enforced_with_a_message_naming_the_field(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ContractError) as caught:
        parse(**changes)

    assert str(caught.value) == message


def test_a_missing_field_is_named() -> None:
    payload = {k: v for k, v in VALID.items() if k != "cadence"}

    with pytest.raises(ContractError, match=r"^cadence: Field required$"):
        parse_reading(json.dumps(payload))


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ContractError) as caught:
        parse(cadence=300, second=-2)

    assert str(caught.value) == (
        "second: Input should be greater than or equal to 0 (got -2); "
        "cadence: Input should be less than or equal to 200 (got 300)"
    )


def test_oversized_and_malformed_payloads_are_refused() -> None:
    with pytest.raises(ContractError, match=r"^reading: payload is 1025 bytes, the limit is 1024$"):
        parse_reading(b" " * 1025)
    with pytest.raises(ContractError, match=r"^reading: Invalid JSON"):
        parse_reading(b"{")
    with pytest.raises(ContractError, match=r"^reading: Input should be an object"):
        parse_reading(b"[1]")


def test_a_printable_unicode_name_is_accepted() -> None:
    from pydantic import TypeAdapter

    from shared.contract import Name

    assert TypeAdapter(Name).validate_python("Zoë Ødegård 🚴") == "Zoë Ødegård 🚴"


def test_the_printable_pattern_is_str_isprintable_for_every_assigned_character() -> None:
    """The name's pattern is checked in pydantic-core (Rust): it must refuse exactly what
    ``str.isprintable`` refuses. Only characters unassigned in Python's Unicode database may
    differ (the regex engine may know a newer Unicode version)."""
    import sys
    import unicodedata

    from pydantic import TypeAdapter, ValidationError

    from shared.contract import Name

    adapter = TypeAdapter(Name)
    differ = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.category(char) in {"Cn", "Cs"}:
            continue  # unassigned here (or a lone surrogate, which JSON text cannot carry)
        try:
            adapter.validate_python(char)
            accepted = True
        except ValidationError:
            accepted = False
        if accepted != char.isprintable():
            differ.append(hex(code))
    assert differ == []
