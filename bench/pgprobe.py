"""What a benchmark asks PostgreSQL directly: the machine's commit rate (pgbench), the
sessions a pool opened, and how fast a service's outbox drains."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from claimflow_devstack.errors import DevstackError
from claimflow_devstack.postgres import SUPERUSER, PostgresServer

# --- PostgreSQL's own commit rate ----------------------------------------------


@dataclass(frozen=True)
class CommitRate:
    tps: float
    latency_ms: float | None
    clients: int
    threads: int
    seconds: int
    notify: bool = False

    @property
    def label(self) -> str:
        what = "INSERT + pg_notify" if self.notify else "1-row INSERT"
        return f"pgbench -c{self.clients} -j{self.threads} -T{self.seconds}, {what}"


_SINGLE_INSERT = "INSERT INTO bench_kv (v) VALUES ('x');\n"
# What a transactional outbox with a NOTIFY trigger adds to each commit: PostgreSQL
# serialises the commits of notifying transactions on one lock, WAL flush included.
_INSERT_NOTIFY = (
    "BEGIN;\nINSERT INTO bench_kv (v) VALUES ('x');\n"
    "SELECT pg_notify('bench_commit_rate', '');\nCOMMIT;\n"
)


# Names are interpolated into SQL; a strict pattern keeps that safe.
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_TPS = re.compile(r"^tps = ([0-9.]+)", re.MULTILINE)
_LATENCY = re.compile(r"^latency average = ([0-9.]+) ms", re.MULTILINE)


def measure_commit_rate(
    pg: PostgresServer,
    scratch: Path,
    *,
    seconds: int,
    clients: int = 8,
    threads: int = 2,
    notify: bool = False,
) -> CommitRate:
    """pgbench single-row INSERT commits: the ceiling any one-transaction-per-request
    service on this machine's disk can approach, measured on the very server it uses."""
    database = "bench_commit_rate"
    pg.create_database(database)
    pg.sql("CREATE TABLE IF NOT EXISTS bench_kv (id bigserial PRIMARY KEY, v text)", database)
    script = scratch / "commit-rate.sql"
    script.write_text(_INSERT_NOTIFY if notify else _SINGLE_INSERT)
    out = pgbench(pg, database, script, [f"-c{clients}", f"-j{threads}", f"-T{seconds}"], seconds)
    match = _TPS.search(out.stdout)
    if match is None:
        raise DevstackError(f"pgbench printed no tps: {out.stdout[-2000:]}")
    latency = _LATENCY.search(out.stdout)
    pg.drop_database(database)
    return CommitRate(
        tps=float(match.group(1)),
        latency_ms=float(latency.group(1)) if latency else None,
        clients=clients,
        threads=threads,
        seconds=seconds,
        notify=notify,
    )


def pgbench(
    pg: PostgresServer, database: str, script: Path, options: Sequence[str], seconds: float
) -> subprocess.CompletedProcess[str]:
    """pgbench (no vacuum) running `script` on `database` as the superuser for about `seconds`;
    raises if it fails."""
    argv = [
        str(pg.bin_dir / "pgbench"),
        "-n",
        *options,
        "-f",
        str(script),
        "-h",
        pg.host,
        "-p",
        str(pg.port),
        "-U",
        SUPERUSER,
        database,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if out.returncode != 0:
        raise DevstackError(f"pgbench failed ({out.returncode}): {out.stderr[-2000:]}")
    return out


def sessions_opened(pg: PostgresServer, database: str) -> int:
    """Connections ever opened to `database`: a pool that keeps opening new ones during
    steady load is paying a fork and a handshake per request."""
    if not _DB_NAME.fullmatch(database):
        raise ValueError(f"database name {database!r} must match {_DB_NAME.pattern}")
    out = pg.sql(f"SELECT sessions FROM pg_stat_database WHERE datname = '{database}'")
    return int(out or 0)


# --- the transactional outbox ------------------------------------------------------

_UNPUBLISHED = "SELECT count(*) FROM outbox WHERE published_at IS NULL"


async def _drain(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        began = time.monotonic()
        backlog: int = await conn.fetchval(_UNPUBLISHED)
        remaining = backlog
        while remaining:
            await asyncio.sleep(0.05)
            remaining = await conn.fetchval(_UNPUBLISHED)
        seconds = time.monotonic() - began
    finally:
        await conn.close()
    return {
        "backlog_rows": backlog,
        "drain_s": round(seconds, 2),
        "rows_per_s": round(backlog / seconds, 1) if backlog else None,
    }


def drain_outbox(dsn: str, timeout: float = 300.0) -> dict[str, Any]:
    """Wait until a service's relay has published every outbox row; how many and how long."""

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return await _drain(dsn)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        raise TimeoutError(f"the outbox was not drained within {timeout:.0f}s") from None
