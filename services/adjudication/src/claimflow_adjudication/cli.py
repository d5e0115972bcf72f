"""Entry points: `python -m claimflow_adjudication.cli COMMAND`.

Commands: api, worker, migrate, publish-plans [DIR], withdraw-plan PLAN_ID.

publish-plans puts BenefitPlan YAML files on the compacted plans topic, as the operator does
for BenefitPlan custom resources; withdraw-plan writes a plan's tombstone.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from claimflow_adjudication.adapters.plans import PlanFileError, load_plan_documents
from claimflow_adjudication.messages import SOURCE
from claimflow_adjudication.plan_feed import ensure_plans_topic, plans_topic, write_tombstone
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_shared.events import PlanPublishedV1, new_event
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.migrate import upgrade
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


def plan_messages(settings: AdjudicationSettings, directory: Path) -> list[OutgoingMessage]:
    topic = plans_topic(settings)
    now = datetime.now(UTC)
    messages = []
    for document in load_plan_documents(directory):
        data = PlanPublishedV1(
            plan_id=document.metadata.name,
            generation=document.metadata.generation,
            spec=document.spec,
            published_at=now,
        )
        event = new_event(SOURCE, data, subject=data.plan_id)
        messages.append(OutgoingMessage(topic, data.plan_id, event.to_json()))
    return messages


def _publish(settings: AdjudicationSettings, messages: list[OutgoingMessage]) -> None:
    import asyncio  # noqa: PLC0415 - only these commands need an event loop

    asyncio.run(ensure_plans_topic(settings))
    publisher = Publisher(settings)
    try:
        publisher.publish(messages)
    finally:
        publisher.close()


def publish_plans(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="publish-plans")
    parser.add_argument("directory", type=Path, nargs="?", help="defaults to CLAIMFLOW_PLANS_DIR")
    args = parser.parse_args(argv)
    settings = AdjudicationSettings()
    directory = args.directory or settings.plans_dir
    if directory is None:
        parser.error("name a directory or set CLAIMFLOW_PLANS_DIR")
    try:
        messages = plan_messages(settings, directory)
    except PlanFileError as exc:
        print(f"publish-plans: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    _publish(settings, messages)
    for message in messages:
        print(f"published plan {message.key} to {message.topic}")  # noqa: T201
    return 0


def withdraw_plan(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="withdraw-plan")
    parser.add_argument("plan_id")
    args = parser.parse_args(argv)
    settings = AdjudicationSettings()
    # A null value is the tombstone: compaction then drops the key for good.
    import asyncio  # noqa: PLC0415

    asyncio.run(ensure_plans_topic(settings))
    write_tombstone(settings, plans_topic(settings), args.plan_id)
    print(f"withdrew plan {args.plan_id}")  # noqa: T201
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
        f"{{{'|'.join(COMMANDS)}}} | publish-plans [DIR] | withdraw-plan PLAN_ID"
    )


if __name__ == "__main__":
    main()
