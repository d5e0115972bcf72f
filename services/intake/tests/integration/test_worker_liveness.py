"""A worker whose consumer can no longer work fails its liveness probe, so it is restarted."""

from __future__ import annotations

import asyncio
import ctypes
from typing import Any

import httpx
from prometheus_client import REGISTRY

from claimflow_devstack.testing import eventually
from claimflow_intake.settings import IntakeSettings


def _kill_thread(ident: int) -> None:
    """Raise SystemExit inside the thread, as an uncaught error in its own code would end it."""
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(SystemExit)
    )
    assert done == 1, f"no thread {ident}"


async def _get(worker: Any, path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=worker), base_url="http://worker"
    ) as client:
        return await client.get(path)


async def test_liveness_fails_when_the_consumer_thread_dies(
    worker: Any, settings: IntakeSettings
) -> None:
    assert (await _get(worker, "/healthz")).status_code == 200
    (consumer,) = worker.state.runtime.consumers
    # Connected and polling, as a consumer in service is when its thread dies.
    await eventually(lambda: _true(bool(consumer.assigned())), within=60)
    thread = consumer._thread  # the polling thread itself, as a crash would take it

    _kill_thread(thread.ident)
    await asyncio.to_thread(thread.join, 30)
    assert not thread.is_alive()

    live = await _get(worker, "/healthz")
    assert live.status_code == 503
    assert live.json()["checks"]["kafka_consumer"] == (
        f"error: {settings.consumer_group}: consumer thread ended (SystemExit)"
    )
    ready = await _get(worker, "/readyz")
    assert ready.status_code == 503
    assert "consumer thread ended" in ready.json()["checks"]["kafka_consumer"]
    labels = {"service": settings.service_name, "group": settings.consumer_group}
    assert REGISTRY.get_sample_value("claimflow_consumer_state", {**labels, "state": "dead"}) == 1
    assert (
        REGISTRY.get_sample_value("claimflow_consumer_state", {**labels, "state": "running"}) == 0
    )


async def test_liveness_fails_when_lag_makes_no_progress(
    worker: Any, settings: IntakeSettings
) -> None:
    """Lag that is not worked off for the stall time: the consumer is stalled."""
    (consumer,) = worker.state.runtime.consumers
    tracker = consumer._progress
    # A partition of its own, so the consumer's lag measurements do not overwrite it.
    tracker.set_lag(settings.topic("claims.adjudicated"), 99, 7)
    # As if the last committed batch were longer ago than the stall time.
    tracker._last_progress -= settings.kafka_consumer_stall_seconds + 1

    await eventually(lambda: _status(worker, 503), within=10)
    body = (await _get(worker, "/healthz")).json()
    assert "no progress" in body["checks"]["kafka_consumer"]
    assert "lag 7" in body["checks"]["kafka_consumer"]


async def _status(worker: Any, code: int) -> bool:
    return (await _get(worker, "/healthz")).status_code == code


async def _true(value: bool) -> bool:
    return value
