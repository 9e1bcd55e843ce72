"""The processor's configuration: read from the environment and validated at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared import names
from shared.dynamodb import WriteMode
from shared.races import DEFAULT_FUTURE_SLACK_S
from shared.settings import DEFAULT_LIVE_TTL_SECONDS, ConfigError, settings_from_env

__all__ = ["DEFAULT_LIVE_TTL_SECONDS", "ConfigError", "ProcessorSettings"]

MAX_FUTURE_SLACK_S: Final = 300
"""Five minutes: past that, a device's clock running ahead would no longer be refused at all
in a short race."""


class ProcessorSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    standings_table: Annotated[str, Field(min_length=3, max_length=255)]
    dead_letter_target: str
    """``sqs:<queue url>`` or ``s3:<bucket>[/<prefix>]``."""
    future_slack_s: Annotated[int, Field(ge=0, le=MAX_FUTURE_SLACK_S)] = DEFAULT_FUTURE_SLACK_S
    """How far a reading's second may run ahead of the race clock (the processor's)."""
    live_ttl_seconds: Annotated[int, Field(ge=60)] = DEFAULT_LIVE_TTL_SECONDS
    standings_writes: WriteMode = "item"
    """How standings are sent: see :mod:`shared.dynamodb`."""

    @field_validator("dead_letter_target")
    @classmethod
    def _target(cls, value: str) -> str:
        kind, _, where = value.partition(":")
        if kind not in ("sqs", "s3") or not where.strip("/"):
            raise ValueError("must be 'sqs:<queue url>' or 's3:<bucket>[/<prefix>]'")
        return value

    @property
    def dead_letter_kind(self) -> str:
        return self.dead_letter_target.partition(":")[0]

    @property
    def dead_letter_location(self) -> str:
        return self.dead_letter_target.partition(":")[2]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProcessorSettings:
        variables = {
            "standings_table": names.ENV_STANDINGS_TABLE,
            "dead_letter_target": names.ENV_DEAD_LETTER_TARGET,
            "future_slack_s": names.ENV_FUTURE_SLACK_S,
            "live_ttl_seconds": names.ENV_LIVE_TTL_SECONDS,
            "standings_writes": names.ENV_STANDINGS_WRITES,
        }
        return settings_from_env(cls, variables, "stream processor", env)
