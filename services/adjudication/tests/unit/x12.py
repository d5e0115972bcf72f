"""Reading generated 835s in tests: pyx12's verdict with its stock X221A1 map, and the
segments as lists of elements."""

from __future__ import annotations

import io
import json
from typing import Any

import pyx12.params
import pyx12.x12n_document


def _errors(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "errors":
                found += [e.get("err_str", str(e)) for e in value]
            else:
                found += _errors(value)
    elif isinstance(node, list):
        for item in node:
            found += _errors(item)
    return found


def pyx12_errors(text: str) -> list[str]:
    """Every error pyx12 finds in the interchange (maps 835 005010X221A1 to its stock
    835.5010.X221.A1.xml); empty when it is valid."""
    report = io.StringIO()
    valid = pyx12.x12n_document.x12n_document(
        pyx12.params.params(), io.StringIO(text), io.StringIO(), None, fd_json=report
    )
    errors = _errors(json.loads(report.getvalue()))
    if not valid and not errors:
        errors.append("pyx12 rejected the interchange")
    return errors


def segments(text: str, segment_id: str | None = None) -> list[list[str]]:
    found = [s.strip().split("*") for s in text.split("~") if s.strip()]
    return [s for s in found if segment_id is None or s[0] == segment_id]
