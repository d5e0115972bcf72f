"""Reading request bodies the routes parse themselves (exact decimals, their own media
types), and describing those bodies in the OpenAPI document."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi import Request

from claimflow_shared.web.problems import ProblemError

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def require_media_type(request: Request, accepted: tuple[str, ...]) -> None:
    media = media_type(request)
    if media not in accepted and not (accepted == JSON_TYPES and media.endswith("+json")):
        raise ProblemError(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"Send the body as {' or '.join(accepted)}.",
        )


def parse_json(raw: bytes) -> Any:
    try:
        # parse_float keeps JSON numbers exact: money never passes through a binary float.
        return json.loads(raw, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ProblemError(
            400, "malformed-json", "Malformed JSON", "The request body is not valid JSON."
        ) from exc


def request_body(media_type: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """OpenAPI for a body the route reads itself (so that money stays exact): required, of
    this media type and schema."""
    return {
        "requestBody": {
            "required": True,
            "content": {media_type: {"schema": schema, **extra}},
        }
    }
