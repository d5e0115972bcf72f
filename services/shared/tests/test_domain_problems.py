"""A use case's domain error reaches the client as the problem its service's table names: the
type from the error's code, status and title from the table, detail and per-field failures
from the error; a subclass answers as its mapped base; an error no table maps is a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from claimflow_shared.errors import DomainError, RuleFailure
from claimflow_shared.settings import ServiceSettings
from claimflow_shared.web.app import build_app
from claimflow_shared.web.problems import DomainProblem, install_domain_problems


class RefusedError(DomainError):
    code = "refused"


class RefusedLaterError(RefusedError):
    code = "refused-later"


class UnmappedError(DomainError):
    code = "unmapped"


def _app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    app = build_app(
        ServiceSettings(service_name="domain-problems-test"),
        title="t",
        description="t",
        version="1",
        lifespan=lifespan,
        checks={},
    )
    install_domain_problems(
        app, {RefusedError: DomainProblem(422, "Refused", headers={"Retry-After": "7"})}
    )

    @app.get("/refused")
    async def refused() -> None:
        raise RefusedError(
            "2 rule(s) failed",
            failures=[
                RuleFailure(rule="npi-luhn", message="bad check digit", line=0, field="npi"),
                RuleFailure(rule="type", message="not an object"),
            ],
        )

    @app.get("/later")
    async def later() -> None:
        raise RefusedLaterError

    @app.get("/unmapped")
    async def unmapped() -> None:
        raise UnmappedError("nobody mapped this")

    return app


async def _get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


async def test_a_mapped_error_is_its_problem_with_every_failure() -> None:
    response = await _get("/refused")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "7"
    assert response.json() == {
        "type": "https://claimflow.dev/problems/refused",
        "title": "Refused",
        "status": 422,
        "detail": "2 rule(s) failed",
        "instance": "/refused",
        "errors": [
            {"line": 0, "field": "npi", "rule": "npi-luhn", "message": "bad check digit"},
            {"rule": "type", "message": "not an object"},
        ],
    }


async def test_a_subclass_answers_as_its_base_with_its_own_code() -> None:
    response = await _get("/later")
    assert response.status_code == 422
    assert response.json() == {
        "type": "https://claimflow.dev/problems/refused-later",
        "title": "Refused",
        "status": 422,
        "instance": "/later",
    }


async def test_an_unmapped_error_is_an_internal_error() -> None:
    response = await _get("/unmapped")
    assert response.status_code == 500
    assert response.json()["type"] == "https://claimflow.dev/problems/internal-error"
    assert "nobody mapped" not in response.text
