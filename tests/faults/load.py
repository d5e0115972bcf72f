"""The client side of the fault test: valid and invalid claims, and a submitter that retries
with the same Idempotency-Key until it gets a definitive answer, as the API's users must."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import httpx

from claimflow_intake.domain.rules import NPI_LUHN_PREFIX, luhn_check_digit

# Answers that end the retries: accepted, or refused for a reason a retry cannot change.
RETRY_PAUSE = 0.2
REQUEST_TIMEOUT = 10.0


def npi(base: int) -> str:
    digits = f"{base:09d}"
    return digits + str(luhn_check_digit(NPI_LUHN_PREFIX + digits))


PROVIDERS = [npi(149777553 + 7919 * n) for n in range(12)]
PLAN_GROUPS = ["GRP-1000", "GRP-2001", "GRP-3000"]
PROCEDURES = ["D0120", "D0210", "D1110", "D2391", "D4346", "D7140"]


def _money(cents: int) -> str:
    return str(Decimal(cents) / 100)


def valid_claim(n: int) -> dict[str, object]:
    lines = []
    for line in range(1 + n % 2):
        fees = 5000 + (n * 37 + line * 101) % 20000
        allowed = fees * (60 + (n + line) % 40) // 100
        lines.append(
            {
                "service_date": f"2024-{1 + n % 12:02d}-{1 + (n + line) % 28:02d}",
                "submitted_procedure": PROCEDURES[(n + line) % len(PROCEDURES)],
                "plan_group": PLAN_GROUPS[n % len(PLAN_GROUPS)],
                "subscriber_number": f"SUB{n % 700:05d}",
                "provider_npi": PROVIDERS[(n + line) % len(PROVIDERS)],
                "provider_fees": _money(fees),
                "allowed_fees": _money(allowed),
                "member_coinsurance": _money((fees - allowed) // 4),
                "member_copay": "0.00",
            }
        )
    return {"external_id": f"ok-{n}", "lines": lines}


def invalid_claim(n: int) -> dict[str, object]:
    """One of several ways to be wrong; each must be refused and leave nothing stored."""
    claim = valid_claim(n)
    claim["external_id"] = f"bad-{n}"
    line = claim["lines"][0]  # type: ignore[index]
    kind = n % 4
    if kind == 0:
        line["provider_npi"] = line["provider_npi"][:9] + str(
            (int(line["provider_npi"][9]) + 1) % 10
        )
    elif kind == 1:
        line["submitted_procedure"] = "X123"
    elif kind == 2:
        line["provider_fees"] = "-10.00"
    else:
        claim["lines"] = []
    return claim


@dataclass
class Outcome:
    key: str
    valid: bool
    status: int
    claim_id: str | None
    attempts: int


@dataclass
class Submitter:
    """Sends every claim with `concurrency` connections; `progress` counts definitive answers."""

    base_url: str
    headers: dict[str, str]
    concurrency: int = 8
    outcomes: list[Outcome] = field(default_factory=list)
    retried: Counter[str] = field(default_factory=Counter)  # why attempts were repeated
    # No claim beyond this many is started until the driver moves the gate (from its own
    # thread): the faults then land where they are meant to, however fast the pipeline runs.
    gate: int | None = None
    started: int = 0

    @property
    def progress(self) -> int:
        return len(self.outcomes)

    async def run(self, claims: list[tuple[str, bool, dict[str, object]]]) -> None:
        queue = iter(claims)
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=REQUEST_TIMEOUT
        ) as client:

            async def worker() -> None:
                for key, valid, body in queue:
                    # The gate moves from the driver's thread; an asyncio.Event cannot be set there.
                    while self.gate is not None and self.started >= self.gate:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                    self.started += 1
                    self.outcomes.append(await self.submit(client, key, valid, body))

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def submit(
        self, client: httpx.AsyncClient, key: str, valid: bool, body: dict[str, object]
    ) -> Outcome:
        content = json.dumps(body).encode()
        headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
        for attempt in itertools.count(1):
            try:
                response = await client.post("/v1/claims", content=content, headers=headers)
            except httpx.TransportError as exc:  # connection refused/reset, timeouts
                self.retried[type(exc).__name__] += 1
            else:
                if response.status_code < 500:
                    claim_id = response.json().get("id") if response.status_code == 202 else None
                    return Outcome(key, valid, response.status_code, claim_id, attempt)
                self.retried[f"HTTP {response.status_code}"] += 1
            await asyncio.sleep(RETRY_PAUSE)
        raise AssertionError("unreachable")


def claim_set(count: int, invalid_every: int) -> list[tuple[str, bool, dict[str, object]]]:
    """(idempotency key, valid?, body) for `count` claims, every n-th one invalid."""
    made: list[tuple[str, bool, dict[str, object]]] = []
    make: Callable[[int], dict[str, object]]
    for n in range(count):
        valid = n % invalid_every != 0
        make = valid_claim if valid else invalid_claim
        made.append((f"faults-{n}", valid, make(n)))
    return made
