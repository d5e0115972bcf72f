"""`claimflow-audit` (or `python -m claimflow_audit.cli`): run, migrate, verify and archive.

    claimflow-audit api | worker | migrate
    claimflow-audit verify [--from-seq N] [--to-seq M]
    claimflow-audit export --from TIME --to TIME --output FILE.jsonl.gz
    claimflow-audit verify-export FILE [--check-database]

verify, export and verify-export print one JSON document on stdout and exit 0 when the chain
(or file) is intact, 1 when it is not, so they fit a CronJob and its alerting as they are.
TIME is ISO 8601 (`2024-05-01`, `2024-05-01T12:00:00+02:00`); without an offset it is UTC.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from claimflow_audit.adapters.db import create_engine
from claimflow_audit.adapters.roles import RoleSetupError, setup_app_role
from claimflow_audit.api.schemas import VerifyReport
from claimflow_audit.domain.canonical import as_utc
from claimflow_audit.service_layer.archive import (
    ExportError,
    compare_with_chain,
    export_range,
    verify_export,
)
from claimflow_audit.service_layer.verification import verify_chain
from claimflow_audit.settings import AuditSettings
from claimflow_shared.cli import PROCESSES, serve_process, service_parser
from claimflow_shared.migrate import upgrade

MIGRATIONS = "claimflow_audit:migrations"


def migrate(settings: AuditSettings) -> None:
    """Schema migrations as the owner, then the application role and its grants."""
    upgrade(MIGRATIONS, settings.owner_url())
    asyncio.run(
        setup_app_role(
            settings.owner_url(),
            settings.app_role(),
            password=settings.app_role_password(),
            manage=settings.manage_app_role,
            allow_owner=settings.allow_owner_as_app_role,
        )
    )


def _print(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2, default=str))  # noqa: T201 - the command's output


async def _verify(settings: AuditSettings, from_seq: int, to_seq: int | None) -> int:
    engine = create_engine(settings)
    try:
        result = await verify_chain(
            engine, from_seq=from_seq, to_seq=to_seq, chunk_size=settings.verify_chunk_size
        )
    finally:
        await engine.dispose()
    _print(VerifyReport.of(result).model_dump(mode="json"))
    return 0 if result.valid else 1


async def _export(settings: AuditSettings, start: datetime, end: datetime, output: Path) -> int:
    engine = create_engine(settings)
    try:
        summary = await export_range(
            engine, start, end, output, chunk_size=settings.verify_chunk_size
        )
    finally:
        await engine.dispose()
    _print(summary.as_json())
    return 0


async def _verify_export(settings: AuditSettings, path: Path, check_database: bool) -> int:
    check = await asyncio.to_thread(verify_export, path)
    report = check.as_json()
    ok = check.valid
    if check.valid and check_database:
        engine = create_engine(settings)
        try:
            report["database"] = await compare_with_chain(engine, check.header)
        finally:
            await engine.dispose()
        ok = all(v is not False for v in report["database"].values())
    _print(report)
    return 0 if ok else 1


def _time(value: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 date or time") from None


def _parser() -> argparse.ArgumentParser:
    parser, commands = service_parser(
        "claimflow-audit",
        "claimflow's tamper-evident audit log",
        api="serve the /v1/audit HTTP API",
        worker="consume every topic into the chain, and checkpoint",
        migrate="migrate the schema and grant the application role",
    )
    verify = commands.add_parser("verify", help="re-walk the chain in the database")
    verify.add_argument("--from-seq", type=int, default=1)
    verify.add_argument("--to-seq", type=int, default=None)
    export = commands.add_parser("export", help="write a time range as gzip JSON Lines")
    export.add_argument("--from", dest="start", type=_time, required=True, help="inclusive")
    export.add_argument("--to", dest="end", type=_time, required=True, help="exclusive")
    export.add_argument("--output", type=Path, required=True, help="e.g. audit.jsonl.gz")
    check = commands.add_parser("verify-export", help="verify an export file offline")
    check.add_argument("file", type=Path)
    check.add_argument(
        "--check-database",
        action="store_true",
        help="also compare the file's anchors with the live chain",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = AuditSettings()
    command: str = args.command
    if command in PROCESSES:
        serve_process("claimflow_audit", command, settings)
    elif command == "migrate":
        try:
            migrate(settings)
        except RoleSetupError as exc:
            sys.exit(f"claimflow-audit migrate: {exc}")
    elif command == "verify":
        sys.exit(asyncio.run(_verify(settings, args.from_seq, args.to_seq)))
    elif command == "export":
        try:
            sys.exit(asyncio.run(_export(settings, args.start, args.end, args.output)))
        except ExportError as exc:
            sys.exit(f"claimflow-audit export: {exc}")
    else:
        sys.exit(asyncio.run(_verify_export(settings, args.file, args.check_database)))


if __name__ == "__main__":
    main()
