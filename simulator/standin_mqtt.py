"""A fast stand-in MQTT 3.1.1 endpoint: acknowledges everything, forwards nothing.

For the benchmark only: amqtt (the test broker) is slower than the simulator, so it would
measure amqtt (docs/benchmarks.md has its rate). This server answers CONNECT, PUBLISH (PUBACK
for QoS 1), SUBSCRIBE, PINGREQ and DISCONNECT, and counts publishes; it is not a broker.

``python -m simulator.standin_mqtt PORT`` serves on 127.0.0.1:PORT until terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

CONNECT, PUBLISH, SUBSCRIBE, PINGREQ, DISCONNECT = 1, 3, 8, 12, 14


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    body = await reader.readexactly(length) if length else b""
    return first >> 4, first & 0x0F, body


async def _serve_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            kind, flags, body = await _read_packet(reader)
            if kind == CONNECT:
                writer.write(b"\x20\x02\x00\x00")
            elif kind == PUBLISH:
                if (flags >> 1) & 3:
                    topic_len = int.from_bytes(body[:2], "big")
                    packet_id = body[2 + topic_len : 4 + topic_len]
                    writer.write(b"\x40\x02" + packet_id)
            elif kind == SUBSCRIBE:
                writer.write(b"\x90\x03" + body[:2] + b"\x01")
            elif kind == PINGREQ:
                writer.write(b"\xd0\x00")
            elif kind == DISCONNECT:
                break
            if writer.transport.get_write_buffer_size() > 65536:
                await writer.drain()
    writer.close()


async def _main(port: int) -> None:
    server = await asyncio.start_server(_serve_client, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(int(sys.argv[1])))


if __name__ == "__main__":
    main()
