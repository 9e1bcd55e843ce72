"""IoT Core substitution templates (``${...}``), as used by a topic rule's Kinesis action.

The rule's partition key is ``shared.names.RULE_PARTITION_KEY`` (``${topic(5)}``). This module
evaluates such templates for the local rule bridge the way IoT Core does:

- ``${topic()}`` is the whole topic, ``${topic(n)}`` its n-th level, 1-based;
- ``${clientid()}``, ``${timestamp()}`` (epoch ms), ``${newuuid()}``;
- ``${field}`` / ``${a.b}`` an attribute of the JSON payload;
- text outside ``${...}`` is copied as is.

A reference that yields nothing (a missing level or attribute) makes IoT Core's action fail
with an error, because Kinesis refuses an empty partition key; here it raises
:class:`TemplateError` so that the bridge counts it as a failed action.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")
_FUNCTION = re.compile(r"^\s*([a-z_]+)\(\s*([0-9]*)\s*\)\s*$")
_ATTRIBUTE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*$")


class TemplateError(ValueError):
    """The template cannot be evaluated for this message (the message says why)."""


@dataclass(frozen=True)
class MessageContext:
    """What a substitution template may refer to: the message and where it came from."""

    topic: str
    payload: bytes
    client_id: str = ""
    timestamp_ms: int = field(default_factory=lambda: int(time.time() * 1000))


def _topic_level(topic: str, arg: str) -> str:
    if arg == "":
        return topic
    n = int(arg)
    levels = topic.split("/")
    if n < 1 or n > len(levels) or levels[n - 1] == "":
        raise TemplateError(f"topic({n}): topic {topic!r} has no level {n}")
    return levels[n - 1]


def _attribute(payload: bytes, path: str) -> str:
    try:
        value: Any = json.loads(payload)
    except ValueError:
        raise TemplateError(f"{path}: the payload is not JSON") from None
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise TemplateError(f"{path}: the payload has no such attribute")
        value = value[part]
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _evaluate(expression: str, message: MessageContext) -> str:
    call = _FUNCTION.match(expression)
    if call:
        name, arg = call.groups()
        if name == "topic":
            return _topic_level(message.topic, arg)
        if arg:
            raise TemplateError(f"{name}() takes no argument")
        if name == "clientid":
            return message.client_id
        if name == "timestamp":
            return str(message.timestamp_ms)
        if name == "newuuid":
            return str(uuid.uuid4())
        raise TemplateError(f"unsupported function {name}()")
    attribute = _ATTRIBUTE.match(expression)
    if attribute:
        return _attribute(message.payload, attribute.group(1))
    raise TemplateError(f"unsupported expression ${{{expression}}}")


def render(template: str, message: MessageContext) -> str:
    """The template with every ``${...}`` replaced; raises :class:`TemplateError`."""
    out = _PLACEHOLDER.sub(lambda m: _evaluate(m.group(1), message), template)
    if "${" in out and _PLACEHOLDER.search(template) is None:
        raise TemplateError(f"malformed template {template!r}")
    return out
