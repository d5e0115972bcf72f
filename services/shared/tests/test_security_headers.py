"""Every service's app (built by build_app) keeps caches away from /v1/ answers and tells
browsers that reached it over HTTPS to stay on HTTPS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response

from claimflow_shared.settings import ServiceSettings
from claimflow_shared.web.app import build_app


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield


def _app(**settings: Any) -> FastAPI:
    app = build_app(
        ServiceSettings(service_name="headers-test", **settings),
        title="Headers test",
        description="t",
        version="1",
        lifespan=_lifespan,
        checks={},
    )

    @app.get("/v1/things")
    async def things() -> list[str]:
        return []

    @app.get("/v1/cacheable")
    async def cacheable(response: Response) -> list[str]:
        response.headers["Cache-Control"] = "max-age=60"
        return []

    return app


async def _get(app: FastAPI, url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        return await client.get(url)


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_api_answers_and_errors_are_never_stored(scheme: str) -> None:
    app = _app()
    for path in ("/v1/things", "/v1/missing"):
        answer = await _get(app, f"{scheme}://service{path}")
        assert answer.headers["cache-control"] == "no-store", path
    # An answer that says how it may be cached keeps its own word; outside /v1/ nothing is added.
    assert (await _get(app, "http://service/v1/cacheable")).headers["cache-control"] == (
        "max-age=60"
    )
    assert "cache-control" not in (await _get(app, "http://service/healthz")).headers


async def test_hsts_is_sent_over_https_only() -> None:
    app = _app()
    secure = await _get(app, "https://service/v1/things")
    assert secure.headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" in (await _get(app, "https://service/healthz")).headers
    # Over plain HTTP a browser must ignore it (RFC 6797), so it is not sent.
    plain = await _get(app, "http://service/v1/things")
    assert "strict-transport-security" not in plain.headers


async def test_hsts_can_be_turned_off() -> None:
    answer = await _get(_app(hsts_max_age_seconds=0), "https://service/v1/things")
    assert "strict-transport-security" not in answer.headers
    assert answer.headers["cache-control"] == "no-store"
