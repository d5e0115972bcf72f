"""`claimflow-intake` (or `python -m claimflow_intake.cli`): the intake service's processes.

claimflow-intake api | worker | migrate
"""

from __future__ import annotations

from collections.abc import Sequence

from claimflow_intake.settings import IntakeSettings
from claimflow_shared.cli import PROCESSES, serve_process, service_parser
from claimflow_shared.migrate import upgrade

MIGRATIONS = "claimflow_intake:migrations"


def main(argv: Sequence[str] | None = None) -> None:
    parser, _ = service_parser(
        "claimflow-intake",
        "claimflow's claim intake service",
        api="serve the /v1/claims HTTP API",
        worker="relay the outbox and apply claim status events",
    )
    args = parser.parse_args(argv)
    settings = IntakeSettings()
    if args.command in PROCESSES:
        serve_process("claimflow_intake", args.command, settings)
    else:
        upgrade(MIGRATIONS, settings.database_url.get_secret_value())


if __name__ == "__main__":
    main()
