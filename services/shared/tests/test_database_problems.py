"""The shared problem handlers answer a database outage, or a transaction lost to a
concurrent one, with 503 + Retry-After however the error reaches them (bare, wrapped by
SQLAlchemy, re-raised as another error, in an exception group, from a middleware), leave real
bugs 500, and an error in a background task after the response cannot change the answer.
Every app, the workers' HTTP apps too, is built by build_app, so this holds for each of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.background import BackgroundTask
from starlette.types import ASGIApp, Receive, Scope, Send

from claimflow_devstack import db_faults
from claimflow_devstack.postgres import PostgresServer
from claimflow_shared.settings import ServiceSettings
from claimflow_shared.web.app import build_app


class _ConnectsInMiddleware:
    """A middleware that touches the database itself, outside the routes' handlers."""

    def __init__(self, app: ASGIApp, dsn: str) -> None:
        self.app = app
        self.dsn = dsn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/middleware":
            await asyncpg.connect(self.dsn)
        await self.app(scope, receive, send)


def _app(database_url: str) -> FastAPI:
    closed = db_faults.closed_port_url(database_url)
    closed_dsn = closed.replace("postgresql+asyncpg://", "postgresql://")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    app = build_app(
        ServiceSettings(service_name="problems-test"),
        title="t",
        description="t",
        version="1",
        lifespan=lifespan,
        checks={},
    )
    app.add_middleware(_ConnectsInMiddleware, dsn=closed_dsn)

    @app.get("/wrapped")
    async def wrapped() -> None:
        engine = create_async_engine(closed)
        try:
            async with engine.connect():
                pass
        finally:
            await engine.dispose()

    @app.get("/grouped")
    async def grouped() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(asyncpg.connect(closed_dsn))

    @app.get("/rewrapped")
    async def rewrapped() -> None:
        try:
            await asyncpg.connect(closed_dsn)
        except OSError as exc:
            raise RuntimeError("the store is gone") from exc

    @app.get("/middleware")
    async def middleware() -> None:
        raise AssertionError("the middleware answers first")

    @app.get("/conflict/{sqlstate}")
    async def conflict(sqlstate: str) -> None:
        # The server's own error with that SQLSTATE, as PostgreSQL raises it when a
        # transaction loses a serialization conflict or a deadlock.
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql(
                    f"DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = '{sqlstate}'; END $$"
                )
        finally:
            await engine.dispose()

    @app.get("/sql-bug")
    async def sql_bug() -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT * FROM no_such_table")
        finally:
            await engine.dispose()

    @app.get("/bug")
    async def bug() -> None:
        raise ValueError("a bug")

    @app.post("/background")
    async def background() -> JSONResponse:
        # Runs after the response is sent: its failure is logged, the 202 stands.
        return JSONResponse(
            {"status": "queued"},
            status_code=202,
            background=BackgroundTask(asyncpg.connect, closed_dsn),
        )

    return app


async def _client(app: FastAPI) -> httpx.AsyncClient:
    # As a server does: the app's exception after its answer is not the client's.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_database_errors_answer_503_however_they_arrive(
    postgres_server: PostgresServer, database_url: str
) -> None:
    async with await _client(_app(database_url)) as client:
        paths = ("/wrapped", "/grouped", "/rewrapped", "/middleware")
        # A transaction rolled back by a serialization failure or a deadlock: retry it.
        for path in (*paths, "/conflict/40001", "/conflict/40P01"):
            db_faults.assert_unavailable(await client.get(path))
        for path in ("/sql-bug", "/bug"):
            response = await client.get(path)
            assert response.status_code == 500, (path, response.text)
            body: dict[str, Any] = response.json()
            assert body["type"].endswith("/internal-error")
            assert "no_such_table" not in response.text
        accepted = await client.post("/background")
        assert accepted.status_code == 202
        assert accepted.json() == {"status": "queued"}
