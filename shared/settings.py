"""Functions' settings from the environment: validated at cold start, errors named by variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final, TypeVar

from pydantic import BaseModel, ValidationError

from shared.contract import describe

M = TypeVar("M", bound=BaseModel)

DEFAULT_LIVE_TTL_SECONDS: Final = 7 * 24 * 3600
"""How long a race's live data (standings, results) is kept unless the stack says otherwise."""


class ConfigError(RuntimeError):
    """The environment does not describe a working function; the message says what to set."""


def settings_from_env(
    model: type[M], variables: Mapping[str, str], what: str, env: Mapping[str, str] | None = None
) -> M:
    """``model`` from the environment variables named per field (``variables``: field ->
    variable). An unset or empty variable leaves the field's default; a bad one raises
    :class:`ConfigError` naming the variable, e.g. ``race closer configuration:
    NOTIFY_TARGET: Input should be 'iot', 'log' or 'none'``."""
    env = os.environ if env is None else env
    raw = {field: env[var] for field, var in variables.items() if env.get(var)}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        message = describe(exc)
        for field, var in variables.items():
            message = message.replace(f"{field}:", f"{var}:")
        raise ConfigError(f"{what} configuration: {message}") from exc
