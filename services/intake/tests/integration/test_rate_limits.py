"""Per-principal budgets on submissions and imports, shared by two replicas through a real Redis,
and the throttling of a client that keeps failing to authenticate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY
from pydantic import SecretStr

from claimflow_devstack.testing import assert_rate_limited, claim_body, in_process
from claimflow_intake.main import create_app
from claimflow_intake.settings import IntakeSettings

from .conftest import OTHER_ORG_KEY, READER_KEY, SUBMITTER_KEY, auth

PROBLEM = "application/problem+json"
EXAMPLE_CSV = (Path(__file__).parents[4] / "examples" / "claim_1234.csv").read_bytes()


def _shared(settings: IntakeSettings, redis_server: Any, topic_prefix: str, **extra: Any) -> Any:
    """Settings whose budgets count in the session's Redis, under this test's own keys."""
    return settings.model_copy(
        update={
            "rate_limit_storage_url": SecretStr(redis_server.url),
            "rate_limit_key_prefix": f"claimflow-{topic_prefix}",
            **extra,
        }
    )


async def test_the_61st_submission_in_a_minute_is_refused_while_another_organisation_submits(
    settings: IntakeSettings, redis_server: Any, topic_prefix: str
) -> None:
    shared = _shared(settings, redis_server, topic_prefix)
    async with (
        in_process(create_app(shared), "intake-a") as first,
        in_process(create_app(shared), "intake-b") as second,
    ):
        # Two replicas behind one Service: the budget is the principal's, wherever it lands.
        accepted = [
            await (first if n % 2 else second).post(
                "/v1/claims", json=claim_body(), headers=auth(SUBMITTER_KEY)
            )
            for n in range(60)
        ]
        assert [r.status_code for r in accepted] == [202] * 60
        assert accepted[0].headers["RateLimit-Limit"] == "60"
        assert accepted[0].headers["RateLimit-Remaining"] == "59"
        assert accepted[-1].headers["RateLimit-Remaining"] == "0"
        assert accepted[0].headers["RateLimit-Policy"] == "60;w=60"

        refused = await first.post("/v1/claims", json=claim_body(), headers=auth(SUBMITTER_KEY))
        assert_rate_limited(refused)
        # Another organisation's principal has its own budget.
        other = await second.post("/v1/claims", json=claim_body(), headers=auth(OTHER_ORG_KEY))
        assert other.status_code == 202, other.text

        # The refused submission left nothing behind: 60 claims for the first principal.
        listed = await first.get("/v1/claims", params={"limit": 100}, headers=auth(READER_KEY))
        assert len(listed.json()["items"]) == 60


async def test_imports_have_their_own_budget(
    settings: IntakeSettings, redis_server: Any, topic_prefix: str
) -> None:
    shared = _shared(settings, redis_server, topic_prefix, import_rate_limit="2/minute")
    csv = {"Content-Type": "text/csv", **auth(SUBMITTER_KEY)}
    async with in_process(create_app(shared), "intake") as client:
        imports = [
            await client.post("/v1/claims/import", content=EXAMPLE_CSV, headers=csv)
            for _ in range(3)
        ]
        assert [r.status_code for r in imports[:2]] == [202, 202]
        assert imports[0].headers["RateLimit-Policy"] == "2;w=60"
        assert_rate_limited(imports[2])
        # Spent imports leave single submissions alone.
        single = await client.post("/v1/claims", json=claim_body(), headers=auth(SUBMITTER_KEY))
        assert single.status_code == 202


def _refusals(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "claimflow_auth_refusals_total", {"service": "intake", "reason": reason}
    )
    return value or 0.0


async def test_a_client_that_keeps_failing_to_authenticate_is_throttled(
    settings: IntakeSettings,
) -> None:
    app = create_app(settings.model_copy(update={"auth_failure_limit": "5/minute"}))
    throttled_before = _refusals("too-many-failures")
    guesser = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 40000)),
        base_url="http://intake",
    )
    neighbour = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.8", 40000)),
        base_url="http://intake",
    )
    async with app.router.lifespan_context(app), guesser, neighbour:
        wrong = [await guesser.get("/v1/claims", headers=auth(f"guess-{n}")) for n in range(4)] + [
            await guesser.get("/v1/claims")
        ]
        assert [r.status_code for r in wrong] == [401] * 5

        # Past the budget even the right key is refused: a right guess teaches nothing.
        refused = await guesser.get("/v1/claims", headers=auth(READER_KEY))
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM
        assert "failed authentications" in refused.json()["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert _refusals("too-many-failures") == throttled_before + 1

        # Another client address is not held back by the guesser.
        fine = await neighbour.get("/v1/claims", headers=auth(READER_KEY))
        assert fine.status_code == 200
