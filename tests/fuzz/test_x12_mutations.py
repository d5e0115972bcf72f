"""Mutated 837D interchanges: reading never fails, whatever segments are lost, repeated,
moved or garbled; a rejected interchange offers nothing to store, and nothing PHI leaks into
a finding.

Seeded mutations of examples/x12/claim_1234.837 (deleting, duplicating and swapping segments,
replacing elements with empty, too long or wrong values), each read by the same function the
API and the command line use.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from claimflow_intake.domain.x12_claims import read_dental_claims

EXAMPLE = Path(__file__).parents[2] / "examples" / "x12" / "claim_1234.837"
CASES = 300
PHI = ("3730189502", "20180328")
VALUES = ("", "X", "99", "@@", "1" * 40, "D9999", "-5", "20181340")


def mutate(segments: list[str], rnd: random.Random) -> str:
    mutated = list(segments)
    for _ in range(rnd.randint(1, 3)):
        at = rnd.randrange(len(mutated))
        operation = rnd.choice(("delete", "duplicate", "swap", "element"))
        if operation == "delete" and len(mutated) > 1:
            mutated.pop(at)
        elif operation == "duplicate":
            mutated.insert(at, mutated[at])
        elif operation == "swap":
            other = rnd.randrange(len(mutated))
            mutated[at], mutated[other] = mutated[other], mutated[at]
        else:
            elements = mutated[at].split("*")
            if len(elements) > 1:
                elements[rnd.randrange(1, len(elements))] = rnd.choice(VALUES)
                mutated[at] = "*".join(elements)
    return "~".join(mutated) + "~"


@pytest.mark.parametrize("seed", range(3))
def test_no_mutation_of_an_interchange_makes_reading_fail(seed: int) -> None:
    segments = [s for s in EXAMPLE.read_text().split("~") if s.strip()]
    rnd = random.Random(seed)
    statuses = set()
    for _ in range(CASES // 3):
        result = read_dental_claims(mutate(segments, rnd))
        statuses.add(result.status)
        assert result.status in {"A", "E", "P", "R"}
        if not result.storable:
            assert result.submissions() == []
        findings = [e.message for e in result.interchange.errors]
        findings += [e.message for claim in result.claims for e in claim.errors]
        assert not any(value in message for value in PHI for message in findings)
    # The mutations reach both outcomes: the test is not reading only broken files.
    assert "R" in statuses
    assert statuses & {"A", "E"}
