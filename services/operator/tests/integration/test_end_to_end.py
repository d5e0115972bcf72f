"""End to end: a coinsurance change made on the BenefitPlan resource decides the next claim of
that group; the claim before it keeps the result it had."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from kopf.testing import KopfRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.cli import MIGRATIONS
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_adjudication.worker import create_worker_app
from claimflow_devstack.testing import claim_line, eventually, publish, submitted
from claimflow_operator.settings import OperatorSettings
from claimflow_shared.db import create_engine
from claimflow_shared.events import Topics
from claimflow_shared.kafka.producer import OutgoingMessage
from claimflow_shared.migrate import upgrade

from .conftest import Plans

D = Decimal


@pytest.fixture
async def adjudication(
    database_url: str, op_settings: OperatorSettings
) -> AsyncIterator[tuple[AdjudicationSettings, Any, AsyncEngine]]:
    """adjudication's worker in-process, with no plan files: plans come from the topic only."""
    await asyncio.to_thread(upgrade, MIGRATIONS, database_url)
    settings = AdjudicationSettings(
        database_url=database_url,
        kafka_bootstrap_servers=op_settings.kafka_bootstrap_servers,
        kafka_topic_prefix=op_settings.kafka_topic_prefix,
        consumer_group=f"adjudication-{op_settings.kafka_topic_prefix}",
        outbox_poll_interval_seconds=0.2,
    )
    engine = create_engine(settings)
    app = create_worker_app(settings)
    async with app.router.lifespan_context(app):
        yield settings, app, engine
    await engine.dispose()


def claim(plan_group: str, quadrant: str) -> tuple[uuid.UUID, bytes]:
    """A basic restoration (D2391) of 100.00 for one subscriber, as intake publishes it."""
    event = submitted(claim_line(plan_group=plan_group, quadrant=quadrant))
    return uuid.UUID(event.subject), event.to_json()


async def submit(settings: AdjudicationSettings, plan_group: str, quadrant: str) -> uuid.UUID:
    claim_id, value = claim(plan_group, quadrant)
    message = OutgoingMessage(settings.topic(Topics.CLAIMS_SUBMITTED), str(claim_id), value)
    await asyncio.to_thread(publish, settings, [message])
    return claim_id


async def result(engine: AsyncEngine, claim_id: uuid.UUID) -> tuple[str, int, Decimal] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT plan_id, plan_version, benefit FROM claims "
                    "WHERE claim_id = :c AND status = 'adjudicated'"
                ),
                {"c": claim_id},
            )
        ).one_or_none()
    return None if row is None else (row.plan_id, row.plan_version, row.benefit)


async def decided(engine: AsyncEngine, claim_id: uuid.UUID) -> tuple[str, int, Decimal]:
    async def done() -> bool:
        return await result(engine, claim_id) is not None

    await eventually(done)
    got = await result(engine, claim_id)
    assert got is not None
    return got


async def test_a_coinsurance_change_on_the_resource_decides_the_next_claim(
    plans: Plans, operator: KopfRunner, adjudication: tuple[AdjudicationSettings, Any, AsyncEngine]
) -> None:
    settings, worker, engine = adjudication
    registry = worker.state.plan_feed.registry

    async def applies(generation: int) -> bool:
        plan = registry.book().get("grp-1000")
        return plan is not None and plan.version == generation

    for example in ("standard.yaml", "grp-1000.yaml"):
        await asyncio.to_thread(plans.apply_example, example)
    await eventually(lambda: applies(1))
    [entry] = [e for e in registry.entries() if e.plan.plan_id == "grp-1000"]
    assert (entry.namespace, entry.source) == (plans.namespace, "topic")

    # Generation 1: basic care at 80% after the 25.00 deductible.
    before = await submit(settings, "GRP-1000", "UR")
    assert await decided(engine, before) == ("grp-1000", 1, D("60.00"))

    patched = await asyncio.to_thread(plans.patch_spec, "grp-1000", {"coinsurance": {"basic": 50}})
    assert patched["metadata"]["generation"] == 2
    await asyncio.to_thread(plans.wait_condition, "grp-1000", "Published", "True", 2)
    await eventually(lambda: applies(2))

    # Generation 2: 50%, the deductible already met by the first claim.
    after = await submit(settings, "GRP-1000", "UL")
    assert await decided(engine, after) == ("grp-1000", 2, D("50.00"))
    assert await result(engine, before) == ("grp-1000", 1, D("60.00"))
