"""MQTT 3.1.1 on a raw socket, for tests that must see exactly what a broker sends (or that it
closes the connection), which a client library would hide or retry."""

from __future__ import annotations

import socket


def packet(kind: int, body: bytes) -> bytes:
    """An MQTT control packet: fixed header (type and flags, remaining length) and body."""
    length, encoded = len(body), b""
    while True:
        length, digit = divmod(length, 128)
        encoded += bytes([digit | (0x80 if length else 0)])
        if not length:
            return bytes([kind]) + encoded + body


def text(value: str) -> bytes:
    return len(value.encode()).to_bytes(2, "big") + value.encode()


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "the broker closed the connection"
            data += chunk
        return data

    kind = exactly(1)[0]
    length, shift = 0, 0
    while True:
        digit = exactly(1)[0]
        length += (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            return kind, exactly(length)


def connect(port: int, client_id: str) -> tuple[socket.socket, bool]:
    """A raw MQTT 3.1.1 connection with CleanSession=0; whether the broker had a session."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        packet(0x10, text("MQTT") + bytes([4, 0]) + (60).to_bytes(2, "big") + text(client_id))
    )
    kind, body = read_packet(sock)
    assert (kind, body[1]) == (0x20, 0), "CONNACK, accepted"
    return sock, bool(body[0] & 1)


def publish_qos1(sock: socket.socket, topic: str, payload: bytes, packet_id: int = 7) -> None:
    sock.sendall(packet(0x32, text(topic) + packet_id.to_bytes(2, "big") + payload))


def until_closed(sock: socket.socket) -> list[int]:
    """The packets the broker sends until it closes the connection (their types)."""
    kinds = []
    while True:
        try:
            first = sock.recv(1)
        except ConnectionResetError:
            return kinds
        if not first:
            return kinds
        kinds.append(first[0])
        length, shift = 0, 0
        while True:
            digit = sock.recv(1)[0]
            length += (digit & 0x7F) << shift
            shift += 7
            if not digit & 0x80:
                break
        sock.recv(length)
