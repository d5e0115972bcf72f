"""Drive schemathesis over every operation of a live API, positive and negative, and count.

Each operation gets its own Hypothesis run per generation mode, so the number of cases per
service is known exactly and every failing operation is reported, not only the first.
Settings are derandomized: a CI run generates the same cases as the last one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
]

# X12 interchanges are text: sent as generated, like text/plain.
schemathesis.serializer.alias("application/edi-x12", "text/plain")

# Bulk routes answer a well-formed request 207 and judge each claim in it apart: a claim that
# breaks the schema is refused in its result, not by the status of the whole request.
PER_CLAIM_RESULTS = frozenset({"POST /v1/claims/batch", "POST /v1/claims/x12"})


def refused_in_its_results(ctx: Any, response: Any, case: Case[Any]) -> bool | None:
    """A schema-violating bulk request answered 207 refuses at least one of its claims."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative or response.status_code != 207:
        return None
    body = response.json()
    if not (isinstance(body, dict) and body.get("rejected", 0) > 0):
        raise AssertionError(f"a schema-violating bulk request was accepted whole: {body}")
    return True


def checks_for(operation: APIOperation[Any, Any, Any, Any]) -> list[Any]:
    if operation.label not in PER_CLAIM_RESULTS:
        return CHECKS
    return [c for c in CHECKS if c is not negative_data_rejection] + [refused_in_its_results]


@dataclass
class FuzzReport:
    cases: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.cases.values())


def _auth(case: Case[Any], api_key: str) -> dict[str, str]:
    """The API key, unless the case is a negative one about the Authorization header itself
    (left out or mangled): then it must go as generated, and be refused."""
    meta = case.meta
    if meta is not None and meta.generation.mode.is_negative:
        data = meta.phase.data
        touched = {getattr(data, "parameter", None)}
        touched |= {m.parameter for m in getattr(data, "mutations", ())}
        if any(name and name.lower() == "authorization" for name in touched):
            return {}
    # Otherwise the valid key, over any bearer token the generator made up.
    return {"Authorization": f"Bearer {api_key}"}


def fuzz_api(base_url: str, api_key: str, examples: int) -> FuzzReport:
    """Up to `examples` cases per operation and mode; operations whose inputs have fewer
    distinct values (none at all: /healthz) stop when Hypothesis has exhausted them."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    report = FuzzReport()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                report.failures.append(f"unusable operation in the schema: {result.err()}")
                continue
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                label = f"{mode.value} {operation.label}"
                try:
                    _fuzz_operation(operation, mode, session, api_key, examples, report, label)
                except Unsatisfiable:
                    # Nothing to negate: the operation takes no input (/healthz).
                    continue
                except (Exception, FailureGroup) as exc:  # every operation's failure is collected
                    report.failures.append(f"{label}: {type(exc).__name__}: {exc}")
    return report


def _fuzz_operation(
    operation: APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    session: requests.Session,
    api_key: str,
    examples: int,
    report: FuzzReport,
    label: str,
) -> None:
    checks = checks_for(operation)

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case[Any]) -> None:
        report.cases[label] += 1
        case.call_and_validate(
            session=session, headers=_auth(case, api_key), checks=checks, timeout=30
        )

    run()
