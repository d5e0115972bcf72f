"""Helpers the services' tests share: API keys, in-process apps, Kafka reads and writes,
and waiting for something that happens asynchronously."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from kafka import KafkaConsumer

from claimflow_shared.events import (
    ClaimLineV1,
    ClaimSubmittedV1,
    ClaimTotalsV1,
    CloudEvent,
    new_event,
)
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.settings import ApiKey, ServiceSettings


def api_key(
    secret: str, principal: str, roles: set[str], organisation: str | None = None
) -> ApiKey:
    """A configured key as a service holds it: the SHA-256 of the secret."""
    return ApiKey(
        principal=principal,
        organisation=organisation,
        sha256=hashlib.sha256(secret.encode()).hexdigest(),
        roles=frozenset(roles),
    )


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@asynccontextmanager
async def in_process(app: FastAPI, name: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client that calls it without a socket."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}") as c,
    ):
        yield c


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running, as its process has it before serving: for a worker,
    its relay and consumers are up."""
    async with app.router.lifespan_context(app):
        yield app


def assert_rate_limited(response: httpx.Response, window: int = 60) -> None:
    """A 429 `rate-limited` problem whose Retry-After (within the window) is its
    RateLimit-Reset, with no budget left."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://claimflow.dev/problems/rate-limited"
    assert 1 <= int(response.headers["Retry-After"]) <= window
    assert response.headers["RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit-Reset"] == response.headers["Retry-After"]


def session_wiring(
    database_url: str, bootstrap_servers: str, topic_prefix: str, group: str
) -> dict[str, Any]:
    """The settings every service's tests share: the session's one database server and broker,
    the test's own topics and consumer group, and an outbox relay that polls quickly."""
    return {
        "database_url": database_url,
        "kafka_bootstrap_servers": bootstrap_servers,
        "kafka_topic_prefix": topic_prefix,
        "outbox_poll_interval_seconds": 0.2,
        "consumer_group": f"{group}-{topic_prefix}",
    }


def run_cli(
    package: str, args: Sequence[str], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """`python -m <package>.cli ARGS` run to completion in `env`, as an operator runs it; its
    output captured, its exit status returned rather than raised."""
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", f"{package}.cli", *args],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=120,
        check=False,
    )


async def eventually(
    probe: Callable[[], Awaitable[bool]], within: float = 60.0, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {within}s")


def publish(settings: ServiceSettings, messages: Sequence[OutgoingMessage]) -> None:
    """Produce messages and wait for the broker's acknowledgement (blocking: use a thread)."""
    publisher = Publisher(settings)
    try:
        publisher.publish(messages)
    finally:
        publisher.close()


def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    """Read the topic from the beginning until count messages arrived or timeout passed."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < count and time.monotonic() < deadline:
            messages.extend(consumer)
    finally:
        consumer.close()
    return messages


def claim_line(line_no: int = 1, **overrides: Any) -> dict[str, Any]:
    """One line of a claim as intake stores it; net fee derived as intake derives it."""
    values: dict[str, Any] = {
        "line_no": line_no,
        "service_date": date(2018, 3, 28),
        "submitted_procedure": "D2391",
        "quadrant": None,
        "plan_group": "GRP-1000",
        "subscriber_number": "3730189502",
        "provider_npi": "1497775530",
        "provider_fees": Decimal("100.00"),
        "allowed_fees": Decimal("100.00"),
        "member_coinsurance": Decimal("0.00"),
        "member_copay": Decimal("0.00"),
    }
    values.update(overrides)
    values["net_fee"] = (
        values["provider_fees"]
        + values["member_coinsurance"]
        + values["member_copay"]
        - values["allowed_fees"]
    )
    return values


def submitted(*lines: dict[str, Any], claim_id: uuid.UUID | None = None) -> CloudEvent[Any]:
    """The claims.submitted event intake would publish for these lines."""
    models = [ClaimLineV1(**ln) for ln in lines]
    data = ClaimSubmittedV1(
        claim_id=claim_id or uuid.uuid4(),
        submitted_at=datetime.now(UTC),
        submitted_by="clearinghouse",
        lines=models,
        totals=ClaimTotalsV1(net_fee=sum((m.net_fee for m in models), start=Decimal("0.00"))),
    )
    return new_event("/claimflow/intake", data, subject=str(data.claim_id))


# A valid line of a POST /v1/claims body (one periodontal scaling: net fee 81.25).
VALID_LINE = {
    "service_date": "2018-03-28",
    "submitted_procedure": "D4346",
    "plan_group": "GRP-1000",
    "subscriber_number": "3730189502",
    "provider_npi": "1497775530",
    "provider_fees": "130.00",
    "allowed_fees": "65.00",
    "member_coinsurance": "16.25",
    "member_copay": "0.00",
}


def claim_body(lines: int = 1, **overrides: Any) -> dict[str, Any]:
    """A POST /v1/claims body of `lines` copies of VALID_LINE, with `overrides` applied."""
    return {"lines": [VALID_LINE | overrides for _ in range(lines)]}
