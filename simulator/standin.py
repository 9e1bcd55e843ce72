"""A fast stand-in Kinesis endpoint: answers PutRecords and DescribeStreamSummary over HTTP.

For benchmarks (the emulator, moto, is slower than the simulator, so it would measure moto)
and for tests that want botocore's real request shapes with injected per-entry throttling.
It stores nothing but what tests ask for: ``received`` (the data of every accepted entry)
when ``keep=True``. ``throttle_every=n`` refuses every n-th entry it sees with
``ProvisionedThroughputExceededException`` (HTTP 200, per entry, like Kinesis).

``python -m simulator.standin PORT`` serves on 127.0.0.1:PORT until terminated.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STANDIN_STREAM = "standin-stream"
_TARGET = "Kinesis_20131202."
_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/"


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        port: int = 0,
        *,
        stream: str = STANDIN_STREAM,
        throttle_every: int = 0,
        keep: bool = False,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.stream = stream
        self.throttle_every = throttle_every
        self.keep = keep
        self.lock = threading.Lock()
        self.entries_seen = 0
        self.accepted = 0
        self.calls: list[int] = []
        """Entries per PutRecords call, in arrival order."""
        self.received: list[tuple[str, bytes]] = []
        """(partition key, data) of accepted entries, when keep=True."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread

    def put_records(self, body: dict[str, Any]) -> dict[str, Any]:
        out = []
        failed = 0
        with self.lock:
            self.calls.append(len(body["Records"]))
            for rec in body["Records"]:
                self.entries_seen += 1
                if self.throttle_every and self.entries_seen % self.throttle_every == 0:
                    failed += 1
                    out.append(
                        {
                            "ErrorCode": "ProvisionedThroughputExceededException",
                            "ErrorMessage": "Rate exceeded for shard shardId-000000000000",
                        }
                    )
                    continue
                self.accepted += 1
                if self.keep:
                    self.received.append((rec["PartitionKey"], base64.b64decode(rec["Data"])))
                out.append(
                    {"SequenceNumber": f"{self.accepted:056d}", "ShardId": "shardId-000000000000"}
                )
        return {"FailedRecordCount": failed, "Records": out}


class _Handler(BaseHTTPRequestHandler):
    server: StandinServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        action = self.headers.get("X-Amz-Target", "").removeprefix(_TARGET)
        if body.get("StreamName") != self.server.stream:
            self._reply(
                400,
                {
                    "__type": "ResourceNotFoundException",
                    "message": f"Stream {body.get('StreamName')} not found",
                },
            )
        elif action == "PutRecords":
            self._reply(200, self.server.put_records(body))
        elif action == "DescribeStreamSummary":
            self._reply(
                200,
                {
                    "StreamDescriptionSummary": {
                        "StreamName": self.server.stream,
                        "StreamARN": _ARN + self.server.stream,
                        "StreamStatus": "ACTIVE",
                        "RetentionPeriodHours": 24,
                        "StreamCreationTimestamp": 0,
                        "EnhancedMonitoring": [],
                        "OpenShardCount": 1,
                    }
                },
            )
        else:
            self._reply(400, {"__type": "InvalidAction", "message": action})


def main() -> None:
    server = StandinServer(int(sys.argv[1]))
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
