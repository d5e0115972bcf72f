"""The session PostgreSQL is a real server on 127.0.0.1 that keeps data across restarts."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from claimflow_devstack.postgres import PostgresServer


def _plain(dsn: str) -> str:
    return dsn.replace("postgresql+asyncpg://", "postgresql://")


async def _fetch(dsn: str, query: str) -> object:
    conn = await asyncpg.connect(_plain(dsn))
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def test_accepts_tcp_connection_on_loopback(postgres_server: PostgresServer) -> None:
    assert postgres_server.host == "127.0.0.1"
    conn = await asyncpg.connect(postgres_server.dsn())
    try:
        address = await conn.fetchval("SELECT host(inet_server_addr())")
        version = await conn.fetchval("SHOW server_version_num")
    finally:
        await conn.close()
    assert address == "127.0.0.1"
    assert int(version) >= 150000


async def test_fast_mode_settings(postgres_server: PostgresServer) -> None:
    assert await _fetch(postgres_server.dsn(), "SHOW fsync") == "off"
    assert await _fetch(postgres_server.dsn(), "SHOW max_connections") == "300"


def test_dsn_forms(postgres_server: PostgresServer) -> None:
    port = postgres_server.port
    assert postgres_server.dsn("x") == f"postgresql://postgres@127.0.0.1:{port}/x"
    assert postgres_server.dsn("x", driver="asyncpg").startswith("postgresql+asyncpg://")


async def test_create_database_is_idempotent_and_drop_removes_it(
    postgres_server: PostgresServer,
) -> None:
    first = postgres_server.create_database("devstack_selftest")
    assert postgres_server.create_database("devstack_selftest") == first
    assert first.endswith("/devstack_selftest")
    assert await _fetch(first, "SELECT current_database()") == "devstack_selftest"
    postgres_server.drop_database("devstack_selftest")
    assert not postgres_server.sql("SELECT 1 FROM pg_database WHERE datname = 'devstack_selftest'")


def test_database_names_are_checked(postgres_server: PostgresServer) -> None:
    with pytest.raises(ValueError, match="must match"):
        postgres_server.create_database('x"; DROP DATABASE postgres; --')


async def test_database_url_fixture_gives_an_empty_database(database_url: str) -> None:
    assert database_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    tables = await _fetch(
        database_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'"
    )
    assert tables == 0


async def test_restart_keeps_data(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database("devstack_restart")
    conn = await asyncpg.connect(_plain(dsn))
    try:
        await conn.execute("CREATE TABLE kept (v text)")
        await conn.execute("INSERT INTO kept VALUES ('before restart')")
    finally:
        await conn.close()
    old_pid = postgres_server.pid

    # restart() blocks; keep the event loop free while it runs.
    await asyncio.to_thread(postgres_server.restart)

    assert postgres_server.pid != old_pid
    assert await _fetch(dsn, "SELECT v FROM kept") == "before restart"
    postgres_server.drop_database("devstack_restart")


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


async def test_frozen_server_answers_no_open_connection_until_thawed(
    postgres_server: PostgresServer,
) -> None:
    conn = await asyncpg.connect(postgres_server.dsn())
    try:
        with postgres_server.frozen() as stopped:
            # The backend of an open connection is stopped too, not only the postmaster.
            assert len(stopped) > 1
            assert {_state(pid) for pid in stopped} == {"T"}
            query = asyncio.ensure_future(conn.fetchval("SELECT 41 + 1"))
            done, _ = await asyncio.wait([query], timeout=1.5)
            assert not done
        assert await asyncio.wait_for(query, 30) == 42
        assert "T" not in {_state(pid) for pid in stopped}
    finally:
        await conn.close()
