"""`claimflow-adjudication` (or `python -m claimflow_adjudication.cli`): the adjudication
service's processes and its plans tools.

    claimflow-adjudication api | worker | migrate
    claimflow-adjudication publish-plans [DIR]
    claimflow-adjudication withdraw-plan [NAMESPACE/]NAME
    claimflow-adjudication remittance --from DATE --to DATE

publish-plans puts BenefitPlan YAML files on the compacted plans topic, as the operator does
for BenefitPlan custom resources; withdraw-plan writes a plan's tombstone. remittance is the
batch (a CronJob's) remittance run: one 835 per payee for the payments and reversals settled
in the period (UTC days, both included) that no earlier run remitted.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from claimflow_adjudication.adapters.plan_feed import write_tombstone
from claimflow_adjudication.domain.errors import BadPeriodError
from claimflow_adjudication.service_layer.messages import SOURCE
from claimflow_adjudication.service_layer.remittances import run_remittances
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_shared.cli import PROCESSES, serve_process, service_parser
from claimflow_shared.db import create_engine
from claimflow_shared.migrate import upgrade
from claimflow_shared.plans import (
    PlanFileError,
    ensure_plans_topic,
    plan_key,
    plans_topic,
    publish_plan_files,
    split_key,
)

MIGRATIONS = "claimflow_adjudication:migrations"


def publish_plans(settings: AdjudicationSettings, directory: Path) -> int:
    try:
        keys = publish_plan_files(settings, directory, SOURCE)
    except PlanFileError as exc:
        print(f"publish-plans: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    for key in keys:
        print(f"published plan {key} to {plans_topic(settings)}")  # noqa: T201
    return 0


def withdraw_plan(settings: AdjudicationSettings, plan: str) -> int:
    key = plan_key(*split_key(plan))
    ensure_plans_topic(settings)
    write_tombstone(settings, key)
    print(f"withdrew plan {key}")  # noqa: T201
    return 0


async def _remit(settings: AdjudicationSettings, period_from: date, period_to: date) -> int:
    engine = create_engine(settings)
    try:
        created = await run_remittances(engine, settings, period_from, period_to)
    except BadPeriodError as exc:
        print(f"remittance: {exc.detail}", file=sys.stderr)  # noqa: T201
        return 2
    finally:
        await engine.dispose()
    for r in created:
        print(  # noqa: T201
            f"remittance {r.remittance_id} payee {r.payee_npi}: {r.claim_count} claims,"
            f" paid {r.total_paid}, control number {r.control_number}"
        )
    if not created:
        print("remittance: nothing settled in the period is left to remit")  # noqa: T201
    return 0


def remittance(settings: AdjudicationSettings, period_from: date, period_to: date) -> int:
    return asyncio.run(_remit(settings, period_from, period_to))


def main(argv: Sequence[str] | None = None) -> None:
    parser, commands = service_parser(
        "claimflow-adjudication",
        "claimflow's claim adjudication service",
        api="serve the /v1/providers and /v1/plans HTTP API",
        worker="adjudicate claims, run the payments saga, relay",
    )
    publish = commands.add_parser(
        "publish-plans", help="put BenefitPlan YAML files on the plans topic"
    )
    publish.add_argument("directory", type=Path, nargs="?", help="defaults to CLAIMFLOW_PLANS_DIR")
    withdraw = commands.add_parser("withdraw-plan", help="write a plan's tombstone")
    withdraw.add_argument("plan", help="NAMESPACE/NAME, or NAME in the default namespace")
    remit = commands.add_parser(
        "remittance", help="make the 835s of the payments settled in a period"
    )
    remit.add_argument("--from", dest="period_from", type=date.fromisoformat, required=True)
    remit.add_argument("--to", dest="period_to", type=date.fromisoformat, required=True)
    args = parser.parse_args(argv)
    settings = AdjudicationSettings()
    command: str = args.command
    if command in PROCESSES:
        serve_process("claimflow_adjudication", command, settings)
    elif command == "migrate":
        upgrade(MIGRATIONS, settings.database_url.get_secret_value())
    elif command == "publish-plans":
        directory = args.directory or settings.plans_dir
        if directory is None:
            parser.error("name a directory or set CLAIMFLOW_PLANS_DIR")
        sys.exit(publish_plans(settings, directory))
    elif command == "remittance":
        sys.exit(remittance(settings, args.period_from, args.period_to))
    else:
        sys.exit(withdraw_plan(settings, args.plan))


if __name__ == "__main__":
    main()
