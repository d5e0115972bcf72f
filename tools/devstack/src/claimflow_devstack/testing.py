"""Helpers the services' tests share: API keys, in-process apps, Kafka reads and writes,
and waiting for something that happens asynchronously."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from kafka import KafkaConsumer

from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.settings import ApiKey, ServiceSettings


def api_key(secret: str, principal: str, roles: set[str]) -> ApiKey:
    """A configured key as a service holds it: the SHA-256 of the secret."""
    return ApiKey(
        principal=principal,
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
