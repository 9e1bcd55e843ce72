"""Fault injection at the SDK boundary: chosen AWS calls fail with a real error response.

Two kinds of fault, registered first on a boto3 session's events so they run before moto:

* ``fail``: the call fails and the request is never sent (``before-call``), as when the SDK
  gives up after its own retries on a throttle: nothing was written.
* ``cancel``: a ``TransactWriteItems`` is cancelled as DynamoDB cancels it, with one
  cancellation reason per action: ``code`` (``ThrottlingError``...) for the actions that
  contain ``contains``, ``None`` for the rest. Nothing was written.
* ``lose_response``: the request reaches the service and takes effect, but the client sees an
  error instead of the answer (``before-send``; every attempt botocore makes is affected), as
  with a timeout after the write committed. Only a truly idempotent writer survives this.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class Rule:
    operation: str
    contains: str
    remaining: int
    code: str
    lost_response: bool
    cancel: bool = False


class FaultInjector:
    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.injected = 0
        self.calls: Counter[str] = Counter()
        """Every API call made through the session, by operation (``Query``, ``PutItem``...)."""

    def attach(self, events: Any) -> None:
        events.register_first("before-call", self._before_call)
        events.register_first("before-send", self._before_send)

    def fail(
        self,
        operation: str,
        contains: str = "",
        times: int = 1,
        code: str = "ProvisionedThroughputExceededException",
    ) -> None:
        """The next ``times`` calls of ``operation`` whose parameters contain ``contains``
        fail with ``code`` and are not sent."""
        self.rules.append(Rule(operation, contains, times, code, lost_response=False))

    def cancel(self, contains: str, times: int = 1, code: str = "ThrottlingError") -> None:
        """The next ``times`` transactions with an action containing ``contains`` are
        cancelled with ``code`` as that action's reason (and ``None`` for the others)."""
        self.rules.append(
            Rule("TransactWriteItems", contains, times, code, lost_response=False, cancel=True)
        )

    def lose_response(
        self, operation: str, contains: str = "", times: int = 1, code: str = "InternalServerError"
    ) -> None:
        """The next ``times`` HTTP attempts of ``operation`` take effect but answer ``code``."""
        self.rules.append(Rule(operation, contains, times, code, lost_response=True))

    def _match(self, operation: str, text: str, lost: bool) -> Rule | None:
        for rule in self.rules:
            if (
                rule.remaining
                and rule.lost_response == lost
                and rule.operation == operation
                and rule.contains in text
            ):
                rule.remaining -= 1
                self.injected += 1
                return rule
        return None

    def _before_call(self, model: Any, params: Any, **_: Any) -> tuple[Any, Any] | None:
        self.calls[model.name] += 1
        rule = self._match(model.name, json.dumps(params, default=str), lost=False)
        if rule is None:
            return None
        http = AWSResponse("https://injected.invalid", 400, {}, _Raw(b""))
        parsed: dict[str, Any] = {
            "Error": {"Code": rule.code, "Message": "injected fault"},
            "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "injected"},
        }
        if rule.cancel:
            reasons = [
                {"Code": rule.code, "Message": "injected fault"}
                if rule.contains in json.dumps(action, default=str)
                else {"Code": "None"}
                for action in json.loads(params["body"])["TransactItems"]
            ]
            parsed["Error"]["Code"] = "TransactionCanceledException"
            parsed["CancellationReasons"] = reasons
        return http, parsed

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        operation = target.rpartition(".")[2]
        body = request.body or b""
        text = body.decode() if isinstance(body, bytes) else str(body)
        rule = self._match(operation, text, lost=True)
        if rule is None:
            return None
        payload = json.dumps({"__type": rule.code, "message": "injected fault"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected"}
        return AWSResponse(request.url, 500, headers, _Raw(payload))
