"""Entry points: `python -m claimflow_intake.cli api|worker|migrate`."""

from __future__ import annotations

import sys

from claimflow_intake.settings import IntakeSettings
from claimflow_shared.migrate import upgrade
from claimflow_shared.serve import serve

MIGRATIONS = "claimflow_intake:migrations"


def api() -> None:
    settings = IntakeSettings()
    serve("claimflow_intake.main:create_app", settings.http_host, settings.http_port)


def worker() -> None:
    settings = IntakeSettings()
    serve(
        "claimflow_intake.worker:create_worker_app", settings.http_host, settings.worker_http_port
    )


def migrate() -> None:
    settings = IntakeSettings()
    upgrade(MIGRATIONS, settings.database_url.get_secret_value())


COMMANDS = {"api": api, "worker": worker, "migrate": migrate}


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python -m claimflow_intake.cli {{{'|'.join(COMMANDS)}}}")
    COMMANDS[sys.argv[1]]()


if __name__ == "__main__":
    main()
