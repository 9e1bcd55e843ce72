"""What every `breakaway` subcommand shares: the user-error type and argument types.

It sits in ``shared`` so that each capability (simulator, local stack, capacity model) can
register its commands without importing the CLI root, which lives at the top of the tool layers
(:mod:`local.cli`) and loads them. Argument types are pydantic ``TypeAdapter`` s rather than
hand-written range checks: the same constraint language as the telemetry contract, and
pydantic's own messages.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from shared.contract import ID_PATTERN
from shared.names import valid_env_name

T = TypeVar("T")


class CliError(Exception):
    """A problem the user can fix: printed as one line, exit status 2, no traceback."""


def arg_type(annotation: Any) -> Callable[[str], Any]:
    """An argparse ``type=`` that validates the text as ``annotation`` (pydantic, lax from text).

    A refusal reads ``<text>: <pydantic's message>``, which argparse prefixes with the option.
    """
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)

    def parse(text: str) -> Any:
        try:
            return adapter.validate_strings(text)
        except ValidationError as exc:
            message = exc.errors(include_url=False)[0]["msg"]
            raise argparse.ArgumentTypeError(f"{text}: {message[0].lower()}{message[1:]}") from None

    return parse


POSITIVE_INT = arg_type(Annotated[int, Field(ge=1)])
NON_NEGATIVE_INT = arg_type(Annotated[int, Field(ge=0)])
PORT = arg_type(Annotated[int, Field(ge=0, le=65_535)])
FRACTION = arg_type(Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)])
NON_NEGATIVE_FLOAT = arg_type(Annotated[float, Field(ge=0.0, allow_inf_nan=False)])


def id_argument(text: str) -> str:
    """A race, rider or thing id: what the contract's ids allow."""
    if not re.fullmatch(ID_PATTERN, text):
        raise argparse.ArgumentTypeError(f"{text!r} must be 1-64 of A-Z a-z 0-9 _ -")
    return text


def env_argument(text: str) -> str:
    """An environment's name (``--env``): what ``shared.names`` allows in resource names."""
    if not valid_env_name(text):
        raise argparse.ArgumentTypeError(f"{text!r} must be lowercase letters and digits")
    return text
