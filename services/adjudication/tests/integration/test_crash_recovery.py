"""A worker killed after its DB commit and before its offset commit: the restarted worker gets
the batch again and counts nothing twice."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from kafka import KafkaAdminClient
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_adjudication.worker import create_worker_app
from claimflow_devstack.processes import free_port
from claimflow_devstack.testing import eventually
from claimflow_shared.events import Topics

from .conftest import PLANS_DIR, D, claim_1234, publish_events, read_events, rows, scalar

# The real worker, in its own process, with a hook that SIGKILLs the process right after the
# batch's transaction committed: the offset commit that would follow never happens.
KILLED_WORKER = """
import os, signal, sys
import uvicorn
from claimflow_adjudication.worker import create_worker_app

async def die(batch):
    os.kill(os.getpid(), signal.SIGKILL)

uvicorn.run(create_worker_app(after_commit=die), host="127.0.0.1", port=int(sys.argv[1]),
            log_config=None)
"""


def _committed_offsets(settings: AdjudicationSettings) -> dict[int, int]:
    group = settings.consumer_group
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    topic = settings.topic(Topics.CLAIMS_SUBMITTED)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def test_killed_between_db_commit_and_offset_commit_counts_once(
    settings: AdjudicationSettings, engine: AsyncEngine
) -> None:
    env = {
        **os.environ,
        "CLAIMFLOW_DATABASE_URL": settings.database_url.get_secret_value(),
        "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "CLAIMFLOW_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "CLAIMFLOW_PLANS_DIR": str(PLANS_DIR),
        "CLAIMFLOW_CONSUMER_GROUP": settings.consumer_group,
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - a child we wait for below, off the loop
        [sys.executable, "-c", KILLED_WORKER, str(free_port())],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        event = claim_1234()
        await publish_events(settings, event)
        code = await asyncio.to_thread(proc.wait, 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == -9, proc.stderr.read().decode()[-2000:] if proc.stderr else code
    if proc.stderr:
        proc.stderr.close()

    # The transaction committed: results, totals and the outbox rows are there ...
    assert await scalar(engine, "SELECT count(*) FROM claims") == 1
    assert await scalar(engine, "SELECT net_fee_total FROM provider_totals") == D("116.85")
    # ... but the offset was not: Kafka will hand the event to the next worker.
    assert all(offset <= 0 for offset in _committed_offsets(settings).values())

    # The killed member keeps its partitions until its session times out (45 s), so the
    # replacement joins as a new group: it starts from the earliest offset, exactly the
    # redelivery that the uncommitted offset causes, without the wait.
    settings = settings.model_copy(update={"consumer_group": settings.consumer_group + "-next"})
    app = create_worker_app(settings)
    async with app.router.lifespan_context(app):

        async def offset_committed() -> bool:
            return sum(max(o, 0) for o in _committed_offsets(settings).values()) == 1

        await eventually(offset_committed)
        adjudicated = await read_events(settings, Topics.CLAIMS_ADJUDICATED, 2, within=5)

    assert await scalar(engine, "SELECT count(*) FROM claims") == 1
    totals = await rows(engine, "SELECT net_fee_total, claim_count FROM provider_totals")
    assert [tuple(r) for r in totals] == [(D("116.85"), 1)]
    assert await scalar(engine, "SELECT benefits_paid FROM benefit_accumulators") == D("363.00")
    assert await scalar(engine, "SELECT count(*) FROM processed_events") == 1
    # Whatever the relay re-sent after the kill carries the one event id: consumers dedupe it.
    assert len({e["id"] for e in adjudicated}) == 1
    assert adjudicated[0]["data"]["claim_id"] == str(event.data.claim_id)
