"""The services `claimflow-dev run` starts; a new service is one more ServiceSpec."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from claimflow_devstack.errors import DevstackError

# (base_url, api_key, repo_root) -> None; prints what it loaded.
LoadSample = Callable[[str, str, Path], None]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    database: str
    migrate: list[str]
    processes: dict[str, list[str]]
    load_sample: LoadSample | None = field(default=None, compare=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _intake_load_sample(base_url: str, api_key: str, repo: Path) -> None:
    sample = Path("examples") / "claim_1234.csv"
    response = httpx.post(
        f"{base_url}/v1/claims/import",
        content=(repo / sample).read_bytes(),
        headers={
            "Content-Type": "text/csv",
            "Authorization": f"Bearer {api_key}",
            # A rerun of `make run` on the same state replays instead of adding a copy.
            "Idempotency-Key": "sample-claim_1234",
        },
        timeout=30.0,
    )
    if response.is_error:
        raise DevstackError(
            f"intake rejected {sample}: HTTP {response.status_code} {response.text[:500]}"
        )
    claim = response.json()["claims"][0]
    print(  # noqa: T201
        f"intake: imported {sample} -> claim {claim['id']}, net fee {claim['totals']['net_fee']}"
    )


def _intake_cli(command: str) -> list[str]:
    return [sys.executable, "-m", "claimflow_intake.cli", command]


SERVICES: list[ServiceSpec] = [
    ServiceSpec(
        name="intake",
        port=8080,
        database="intake",
        migrate=_intake_cli("migrate"),
        processes={"api": _intake_cli("api"), "worker": _intake_cli("worker")},
        load_sample=_intake_load_sample,
    ),
]
