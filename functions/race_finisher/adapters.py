"""Adapters of the finisher's side port: how a finished rider is announced."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from shared import names
from shared.ports import TransientError
from shared.standings import FinalResult


def result_payload(result: FinalResult) -> bytes:
    return json.dumps(
        {
            "raceId": result.race_id,
            "riderId": result.rider_id,
            "name": result.name,
            "classId": result.class_id,
            "points": result.points,
            "seconds": result.seconds,
            "lastSecond": result.last_second,
            "rankOverall": result.rank_overall,
            "rankClass": result.rank_class,
            "finishedAt": result.finished_at,
        },
        separators=(",", ":"),
    ).encode()


class IotNotifier:
    """Publishes the result on ``breakaway/races/{raceId}/riders/{riderId}/result`` (QoS 1)."""

    def __init__(self, client: Any) -> None:
        self._iot = client

    def publish(self, result: FinalResult) -> None:
        try:
            self._iot.publish(
                topic=names.result_topic(result.race_id, result.rider_id),
                qos=1,
                payload=result_payload(result),
            )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"IoT publish: {exc}") from exc


class LogNotifier:
    def __init__(self, logger: Logger) -> None:
        self._logger = logger

    def publish(self, result: FinalResult) -> None:
        self._logger.info("rider finished", extra={"result": asdict(result)})


class NoNotifier:
    def publish(self, result: FinalResult) -> None:
        return None
