"""JSON Schemas of every event type, generated from the pydantic models into the repo.

`python -m claimflow_shared.events.schemas write DIR` regenerates them; `check DIR` fails
when the committed files differ from the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .catalog import EVENT_TYPES
from .envelope import CloudEvent


def schema_documents() -> dict[str, dict[str, Any]]:
    documents = {}
    for type_name, model in EVENT_TYPES.items():
        schema = CloudEvent[model].model_json_schema(mode="serialization")  # type: ignore[valid-type]
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://claimflow.dev/schemas/events/{type_name}.json"
        schema["title"] = type_name
        schema["properties"]["type"] = {"const": type_name, "title": "Type", "type": "string"}
        documents[f"{type_name}.json"] = schema
    return documents


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in schema_documents().items():
        (directory / name).write_text(render(schema))


def stale(directory: Path) -> list[str]:
    """Names of schema files that are missing, differ from the models, or are left over."""
    documents = schema_documents()
    wrong = [
        name
        for name, schema in documents.items()
        if not (directory / name).is_file() or (directory / name).read_text() != render(schema)
    ]
    extra = [p.name for p in directory.glob("*.json") if p.name not in documents]
    return sorted(wrong + extra)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("write", "check"):
        print("usage: python -m claimflow_shared.events.schemas write|check DIR", file=sys.stderr)  # noqa: T201
        return 2
    directory = Path(argv[1])
    if argv[0] == "write":
        write(directory)
        return 0
    problems = stale(directory)
    for name in problems:
        print(f"stale schema: {name}", file=sys.stderr)  # noqa: T201
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
