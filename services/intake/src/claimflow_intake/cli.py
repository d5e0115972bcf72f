"""Entry points: `python -m claimflow_intake.cli api|worker|migrate`."""

from __future__ import annotations

import sys

import uvicorn

from claimflow_intake.settings import IntakeSettings
from claimflow_shared.migrate import upgrade

MIGRATIONS = "claimflow_intake:migrations"


def api() -> None:
    settings = IntakeSettings()
    uvicorn.run(
        "claimflow_intake.main:create_app",
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


def worker() -> None:
    settings = IntakeSettings()
    uvicorn.run(
        "claimflow_intake.worker:create_worker_app",
        factory=True,
        host=settings.http_host,
        port=settings.worker_http_port,
        log_config=None,
        access_log=False,
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
