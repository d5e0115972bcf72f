"""Plans from the compacted topic: a new generation applies to claims adjudicated after it
arrives, never to earlier ones; a tombstone withdraws it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.adapters.plan_feed import plans_topic, write_tombstone
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_devstack.testing import eventually, run_cli
from claimflow_shared.events import BenefitPlanSpecV1, PlanPublishedV1, new_event
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.plans import publish_plan_files

from .conftest import PLANS_DIR, auth, claim_line, claim_status, publish_events, submitted


def _send(settings: AdjudicationSettings, messages: list[OutgoingMessage]) -> None:
    publisher = Publisher(settings)
    try:
        publisher.publish(messages)
    finally:
        publisher.close()


def grp_1000_generation_2(settings: AdjudicationSettings) -> OutgoingMessage:
    spec = BenefitPlanSpecV1.model_validate(
        {
            "groups": ["GRP-1000"],
            "coveredCategories": ["diagnostic", "preventive", "basic"],
            "coinsurance": {"diagnostic": 100, "preventive": 100, "basic": 50},
        }
    )
    data = PlanPublishedV1(
        plan_id="grp-1000", generation=2, spec=spec, published_at=datetime.now(UTC)
    )
    event = new_event("/claimflow/operator", data, subject="default/grp-1000")
    return OutgoingMessage(plans_topic(settings), "default/grp-1000", event.to_json())


async def _adjudicated(engine: AsyncEngine, claim_id: uuid.UUID) -> bool:
    return await claim_status(engine, claim_id) == "adjudicated"


async def _plan_of(engine: AsyncEngine, claim_id: uuid.UUID) -> tuple[str, int, Any]:
    async with engine.connect() as conn:
        from sqlalchemy import text  # noqa: PLC0415

        row = (
            await conn.execute(
                text("SELECT plan_id, plan_version, benefit FROM claims WHERE claim_id = :c"),
                {"c": claim_id},
            )
        ).one()
    return row.plan_id, row.plan_version, row.benefit


async def test_a_new_plan_generation_applies_from_the_next_claim_on(
    settings: AdjudicationSettings, engine: AsyncEngine, worker: Any, client: httpx.AsyncClient
) -> None:
    before = submitted(claim_line(quadrant="UR"))
    await publish_events(settings, before)
    await eventually(lambda: _adjudicated(engine, before.data.claim_id))
    # File plan grp-1000 generation 1: basic at 80% after the 25.00 deductible.
    assert await _plan_of(engine, before.data.claim_id) == ("grp-1000", 1, 60)

    await asyncio.to_thread(_send, settings, [grp_1000_generation_2(settings)])

    async def listed_generation_2() -> bool:
        plans = (await client.get("/v1/plans", headers=auth())).json()["plans"]
        return any(p["plan_id"] == "grp-1000" and p["version"] == 2 for p in plans)

    await eventually(listed_generation_2)
    # The worker's reader follows the same topic; claims after this point use generation 2.
    await eventually(lambda: _worker_has_generation(worker, 2))
    after = submitted(claim_line(quadrant="UL"))
    await publish_events(settings, after)
    await eventually(lambda: _adjudicated(engine, after.data.claim_id))
    assert await _plan_of(engine, after.data.claim_id) == ("grp-1000", 2, 50)
    # The earlier result keeps the generation it was decided under.
    assert await _plan_of(engine, before.data.claim_id) == ("grp-1000", 1, 60)

    await asyncio.to_thread(write_tombstone, settings, "default/grp-1000")
    await eventually(lambda: _worker_has_generation(worker, 1))
    withdrawn = submitted(claim_line(quadrant="LL"))
    await publish_events(settings, withdrawn)
    await eventually(lambda: _adjudicated(engine, withdrawn.data.claim_id))
    assert (await _plan_of(engine, withdrawn.data.claim_id))[:2] == ("grp-1000", 1)


async def _worker_has_generation(worker: Any, generation: int) -> bool:
    plan = worker.state.plan_feed.registry.book().get("grp-1000")
    return plan is not None and plan.version == generation


async def test_publish_plans_puts_the_shipped_files_on_the_topic(
    settings: AdjudicationSettings, client: httpx.AsyncClient
) -> None:
    keys = await asyncio.to_thread(publish_plan_files, settings, PLANS_DIR, "/test")
    assert sorted(keys) == ["default/grp-1000", "default/premium", "default/standard"]

    async def all_from_topic() -> bool:
        plans = (await client.get("/v1/plans", headers=auth())).json()["plans"]
        return {p["source"] for p in plans} == {"topic"}

    await eventually(all_from_topic)
    standard = (await client.get("/v1/plans/standard", headers=auth())).json()
    assert standard["default"] is True
    assert standard["spec"]["annualMaximum"] == "1500.00"
    assert standard["spec"]["frequencyLimits"][0] == {
        "codes": ["D1110", "D1120"],
        "count": 2,
        "period": "benefitYear",
    }
    assert (await client.get("/v1/plans/missing", headers=auth())).status_code == 404


async def test_a_claim_no_plan_covers_waits_for_a_plan_and_is_never_guessed(
    settings: AdjudicationSettings, engine: AsyncEngine, tmp_path: Any
) -> None:
    only_grp_1000 = tmp_path / "plans"
    only_grp_1000.mkdir()
    (only_grp_1000 / "grp-1000.yaml").write_text((PLANS_DIR / "grp-1000.yaml").read_text())
    narrow = settings.model_copy(update={"plans_dir": only_grp_1000})
    from claimflow_adjudication.worker import create_worker_app  # noqa: PLC0415

    app = create_worker_app(narrow)
    async with app.router.lifespan_context(app):
        orphan = submitted(claim_line(plan_group="GRP-7777"))
        await publish_events(narrow, orphan)
        await asyncio.sleep(3)
        assert await claim_status(engine, orphan.data.claim_id) is None
        # The operator publishes a default plan: the waiting claim goes through under it.
        only_standard = tmp_path / "standard"
        only_standard.mkdir()
        (only_standard / "s.yaml").write_text((PLANS_DIR / "standard.yaml").read_text())
        await asyncio.to_thread(publish_plan_files, narrow, only_standard, "/test")
        await eventually(lambda: _adjudicated(engine, orphan.data.claim_id))
        assert (await _plan_of(engine, orphan.data.claim_id))[:2] == ("standard", 1)


def _cli(settings: AdjudicationSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "CLAIMFLOW_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
    }
    env.pop("CLAIMFLOW_PLANS_DIR", None)
    return run_cli("claimflow_adjudication", args, env)


async def _sources(client: httpx.AsyncClient) -> dict[str, str]:
    plans = (await client.get("/v1/plans", headers=auth())).json()["plans"]
    return {p["plan_id"]: p["source"] for p in plans}


async def test_the_cli_publishes_plan_files_and_withdraws_a_plan(
    settings: AdjudicationSettings, client: httpx.AsyncClient
) -> None:
    published = await asyncio.to_thread(_cli, settings, "publish-plans", str(PLANS_DIR))
    assert published.returncode == 0, published.stderr
    topic = plans_topic(settings)
    assert sorted(published.stdout.splitlines()) == [
        f"published plan default/{name} to {topic}" for name in ("grp-1000", "premium", "standard")
    ]

    async def all_from_topic() -> bool:
        return set((await _sources(client)).values()) == {"topic"}

    await eventually(all_from_topic)

    withdrawn = await asyncio.to_thread(_cli, settings, "withdraw-plan", "default/premium")
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert withdrawn.stdout == "withdrew plan default/premium\n"

    async def premium_from_its_file_again() -> bool:
        sources = await _sources(client)
        return sources["premium"] == "file" and sources["standard"] == "topic"

    await eventually(premium_from_its_file_again)

    no_directory = await asyncio.to_thread(_cli, settings, "publish-plans")
    assert no_directory.returncode == 2
    assert "name a directory or set CLAIMFLOW_PLANS_DIR" in no_directory.stderr
