"""`claimflow-intake` (or `python -m claimflow_intake.cli`): the intake service's processes.

claimflow-intake api | worker | migrate
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from claimflow_intake.settings import IntakeSettings
from claimflow_shared.migrate import upgrade
from claimflow_shared.serve import serve

MIGRATIONS = "claimflow_intake:migrations"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claimflow-intake", description="claimflow's claim intake service"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("api", help="serve the /v1/claims HTTP API")
    commands.add_parser("worker", help="relay the outbox and apply claim status events")
    commands.add_parser("migrate", help="migrate the database schema")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = IntakeSettings()
    command: str = args.command
    if command == "api":
        serve("claimflow_intake.main:create_app", settings.http_host, settings.http_port)
    elif command == "worker":
        serve(
            "claimflow_intake.worker:create_worker_app",
            settings.http_host,
            settings.worker_http_port,
        )
    else:
        upgrade(MIGRATIONS, settings.database_url.get_secret_value())


if __name__ == "__main__":
    main()
