"""Reading a CSV export of claims into submissions that `validate_claim` checks.

This only deals with the shape of the file; the values are judged by the rules,
so a CSV submission and a JSON one get the same findings.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import TypedDict

from claimflow_intake.domain.fields import (
    FIELD_ORDER,
    REQUIRED_FIELDS,
    is_claim_number_name,
    normalise_field_name,
)
from claimflow_intake.domain.rules import EXTERNAL_ID, REQUIRED, Violation

CSV_EMPTY = "csv-empty"
CSV_MISSING_COLUMN = "csv-missing-column"
CSV_DUPLICATE_COLUMN = "csv-duplicate-column"
CSV_ROW_SHAPE = "csv-row-shape"
CSV_FORMAT = "csv-format"
CSV_TOO_MANY_CLAIMS = "csv-too-many-claims"
CSV_RULES: frozenset[str] = frozenset(
    {
        CSV_EMPTY,
        CSV_MISSING_COLUMN,
        CSV_DUPLICATE_COLUMN,
        CSV_ROW_SHAPE,
        CSV_FORMAT,
        CSV_TOO_MANY_CLAIMS,
    }
)
DEFAULT_MAX_CLAIMS = 100
_BOM = "\ufeff"


class Submission(TypedDict):
    external_id: str | None
    lines: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class CsvParseResult:
    """Submissions, or (when the file itself is malformed) violations and no submissions.

    In these violations `line` is the 0-based index of the data row (blank rows not
    counted), and `field` the canonical field of the column concerned.
    """

    submissions: list[Submission] = field(default_factory=list)
    violations: tuple[Violation, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass(frozen=True, slots=True)
class _Header:
    width: int
    columns: dict[int, str]  # cell index -> canonical field
    claim_number: int | None


def parse_claims_csv(text: str, *, max_claims: int = DEFAULT_MAX_CLAIMS) -> CsvParseResult:
    """One claim for the whole file, or one per distinct value of a claim-number column."""
    try:
        rows = [
            row
            for row in csv.reader(io.StringIO(text.removeprefix(_BOM), newline=""))
            if any(cell.strip() for cell in row)
        ]
    except csv.Error:
        return _failed(Violation(None, None, CSV_FORMAT, "the file is not well-formed CSV"))
    if not rows:
        return _failed(Violation(None, None, CSV_EMPTY, "the file has no header and no rows"))
    header, violations = _read_header(rows[0])
    data = rows[1:]
    if not data:
        violations.append(Violation(None, None, CSV_EMPTY, "the file has a header but no rows"))
    if violations:
        return _failed(*violations)
    groups: dict[str | None, list[dict[str, str]]] = {}
    for index, row in enumerate(data):
        violations += _check_row(index, row, header)
        if not violations:
            key = None if header.claim_number is None else row[header.claim_number].strip()
            groups.setdefault(key, []).append(
                {name: row[cell] for cell, name in header.columns.items()}
            )
    if len(groups) > max_claims:
        violations.append(
            Violation(
                None,
                EXTERNAL_ID,
                CSV_TOO_MANY_CLAIMS,
                f"the file holds {len(groups)} claims; at most {max_claims} per import",
            )
        )
    if violations:
        return _failed(*violations)
    return CsvParseResult(
        [{"external_id": key, "lines": lines} for key, lines in groups.items()], ()
    )


def _failed(*violations: Violation) -> CsvParseResult:
    return CsvParseResult([], tuple(violations))


def _read_header(cells: list[str]) -> tuple[_Header, list[Violation]]:
    columns: dict[int, str] = {}
    claim_number: int | None = None
    violations: list[Violation] = []
    seen: set[str] = set()
    for index, cell in enumerate(cells):
        canonical = normalise_field_name(cell)
        if canonical is None and not is_claim_number_name(cell):
            continue  # unknown columns are ignored, as unknown JSON keys are
        name = canonical or EXTERNAL_ID
        if name in seen:
            violations.append(
                Violation(None, name, CSV_DUPLICATE_COLUMN, f"more than one column means {name}")
            )
            continue
        seen.add(name)
        if canonical is None:
            claim_number = index
        else:
            columns[index] = canonical
    violations += [
        Violation(None, name, CSV_MISSING_COLUMN, f"no column for {name}")
        for name in sorted(REQUIRED_FIELDS - seen, key=FIELD_ORDER.__getitem__)
    ]
    # Trailing empty header cells are spreadsheet padding, not columns rows must fill.
    width = max((index + 1 for index, cell in enumerate(cells) if cell.strip()), default=0)
    return _Header(width, columns, claim_number), violations


def _check_row(index: int, row: list[str], header: _Header) -> list[Violation]:
    # Spreadsheets often pad rows with empty trailing cells; only real extra data is wrong.
    width = header.width
    if len(row) < width or any(cell.strip() for cell in row[width:]):
        message = f"row {index} has {len(row)} cells; the header has {width}"
        return [Violation(index, None, CSV_ROW_SHAPE, message)]
    if header.claim_number is not None and not row[header.claim_number].strip():
        return [
            Violation(index, EXTERNAL_ID, REQUIRED, "external_id: the claim number is required")
        ]
    return []
