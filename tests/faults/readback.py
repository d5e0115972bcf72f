"""Reading back what the pipeline did: the services' databases and whole Kafka topics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import asyncpg
from kafka import KafkaConsumer, TopicPartition

from claimflow_shared.dburl import libpq_dsn


def query(database_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(libpq_dsn(database_url))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def scalar(database_url: str, sql: str, *args: object) -> Any:
    return query(database_url, sql, *args)[0][0]


def read_topics(bootstrap: str, topics: Iterable[str], timeout: float = 120.0) -> list[Any]:
    """Every record of the topics, from the first offset to the end as it is now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {list(topics)} to the end in {timeout}s")
            for batch in consumer.poll(timeout_ms=1000, max_records=5000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()
