"""The processor's configuration: read from the environment and validated at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared import names
from shared.contract import describe
from shared.dynamodb import WriteMode

DEFAULT_LIVE_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 2 * 24 * 3600
"""Longer than the stream's longest retention we deploy (24 h) plus replays' margin."""


class ConfigError(RuntimeError):
    """The environment does not describe a working processor; the message says what to set."""


class ProcessorSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    standings_table: Annotated[str, Field(min_length=3, max_length=255)]
    idempotency_table: Annotated[str, Field(min_length=3, max_length=255)]
    dead_letter_target: str
    """``sqs:<queue url>`` or ``s3:<bucket>[/<prefix>]``."""
    notify_target: Literal["iot", "log", "none"] = "log"
    iot_data_endpoint: str | None = None
    live_ttl_seconds: Annotated[int, Field(ge=60)] = DEFAULT_LIVE_TTL_SECONDS
    idempotency_ttl_seconds: Annotated[int, Field(ge=60)] = DEFAULT_IDEMPOTENCY_TTL_SECONDS
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
        env = os.environ if env is None else env
        raw = {
            "standings_table": env.get(names.ENV_STANDINGS_TABLE),
            "idempotency_table": env.get(names.ENV_IDEMPOTENCY_TABLE),
            "dead_letter_target": env.get(names.ENV_DEAD_LETTER_TARGET),
            "notify_target": env.get(names.ENV_NOTIFY_TARGET, "log"),
            "iot_data_endpoint": env.get(names.ENV_IOT_DATA_ENDPOINT) or None,
            "live_ttl_seconds": env.get(names.ENV_LIVE_TTL_SECONDS, DEFAULT_LIVE_TTL_SECONDS),
            "standings_writes": env.get(names.ENV_STANDINGS_WRITES),
        }
        env_names = {
            "standings_table": names.ENV_STANDINGS_TABLE,
            "idempotency_table": names.ENV_IDEMPOTENCY_TABLE,
            "dead_letter_target": names.ENV_DEAD_LETTER_TARGET,
            "notify_target": names.ENV_NOTIFY_TARGET,
            "live_ttl_seconds": names.ENV_LIVE_TTL_SECONDS,
            "standings_writes": names.ENV_STANDINGS_WRITES,
        }
        try:
            return cls.model_validate({k: v for k, v in raw.items() if v is not None})
        except ValidationError as exc:
            message = describe(exc)
            for field, var in env_names.items():
                message = message.replace(f"{field}:", f"{var}:")
            raise ConfigError(f"stream processor configuration: {message}") from exc
