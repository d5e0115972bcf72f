"""Entry points: `python -m claimflow_adjudication.cli COMMAND`.

Commands: api, worker, migrate, publish-plans [DIR], withdraw-plan [NAMESPACE/]NAME.

publish-plans puts BenefitPlan YAML files on the compacted plans topic, as the operator does
for BenefitPlan custom resources; withdraw-plan writes a plan's tombstone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from claimflow_adjudication.adapters.plan_feed import write_tombstone
from claimflow_adjudication.service_layer.messages import SOURCE
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_shared.migrate import upgrade
from claimflow_shared.plans import (
    PlanFileError,
    ensure_plans_topic,
    plan_key,
    plans_topic,
    publish_plan_files,
    split_key,
)
from claimflow_shared.serve import serve

MIGRATIONS = "claimflow_adjudication:migrations"


def api() -> None:
    settings = AdjudicationSettings()
    serve("claimflow_adjudication.main:create_app", settings.http_host, settings.http_port)


def worker() -> None:
    settings = AdjudicationSettings()
    serve(
        "claimflow_adjudication.worker:create_worker_app",
        settings.http_host,
        settings.worker_http_port,
    )


def migrate() -> None:
    settings = AdjudicationSettings()
    upgrade(MIGRATIONS, settings.database_url.get_secret_value())


def publish_plans(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="publish-plans")
    parser.add_argument("directory", type=Path, nargs="?", help="defaults to CLAIMFLOW_PLANS_DIR")
    args = parser.parse_args(argv)
    settings = AdjudicationSettings()
    directory = args.directory or settings.plans_dir
    if directory is None:
        parser.error("name a directory or set CLAIMFLOW_PLANS_DIR")
    try:
        keys = publish_plan_files(settings, directory, SOURCE)
    except PlanFileError as exc:
        print(f"publish-plans: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    for key in keys:
        print(f"published plan {key} to {plans_topic(settings)}")  # noqa: T201
    return 0


def withdraw_plan(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="withdraw-plan")
    parser.add_argument("plan", help="NAMESPACE/NAME, or NAME in the default namespace")
    args = parser.parse_args(argv)
    settings = AdjudicationSettings()
    key = plan_key(*split_key(args.plan))
    ensure_plans_topic(settings)
    write_tombstone(settings, key)
    print(f"withdrew plan {key}")  # noqa: T201
    return 0


COMMANDS = {"api": api, "worker": worker, "migrate": migrate}
TOOLS = {"publish-plans": publish_plans, "withdraw-plan": withdraw_plan}


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command in COMMANDS and len(sys.argv) == 2:
        COMMANDS[command]()
        return
    if command in TOOLS:
        sys.exit(TOOLS[command](sys.argv[2:]))
    sys.exit(
        "usage: python -m claimflow_adjudication.cli "
        f"{{{'|'.join(COMMANDS)}}} | publish-plans [DIR] | withdraw-plan [NAMESPACE/]NAME"
    )


if __name__ == "__main__":
    main()
