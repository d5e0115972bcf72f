"""Bad input of every kind gets a problem+json answer, never a 500, and stores nothing."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
from prometheus_client import REGISTRY

from claimflow_devstack.testing import VALID_LINE, claim_body
from claimflow_intake.settings import IntakeSettings

from .conftest import AUDITOR_KEY, READER_KEY, auth

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, object] = response.json()
    assert problem["status"] == status
    assert str(problem["type"]).endswith("/" + slug)
    return problem


async def test_every_failing_rule_is_reported_at_once(client: httpx.AsyncClient) -> None:
    bad = VALID_LINE | {
        "submitted_procedure": "X12",
        "provider_npi": "1497775531",
        "quadrant": "XX",
        "allowed_fees": "-1.00",
        "member_copay": "1.005",
    }
    missing = {k: v for k, v in VALID_LINE.items() if k != "subscriber_number"}
    response = await client.post(
        "/v1/claims", json={"lines": [VALID_LINE, bad, missing]}, headers=auth()
    )
    problem = assert_problem(response, 422, "validation-error")
    found = {(e["line"], e["field"], e["rule"]) for e in problem["errors"]}  # type: ignore[attr-defined]
    assert found == {
        (1, "submitted_procedure", "procedure-code"),
        (1, "provider_npi", "npi-luhn"),
        (1, "quadrant", "quadrant"),
        (1, "allowed_fees", "money-non-negative"),
        (1, "member_copay", "money-precision"),
        (2, "subscriber_number", "required"),
    }
    assert "3730189502" not in response.text


async def test_future_service_date_and_line_limits(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/claims", json=claim_body(service_date="2999-01-01"), headers=auth()
    )
    problem = assert_problem(response, 422, "validation-error")
    assert [e["rule"] for e in problem["errors"]] == ["service-date-not-future"]  # type: ignore[attr-defined]
    assert "2999" not in response.text

    for body in ({"lines": []}, claim_body(lines=51)):
        response = await client.post("/v1/claims", json=body, headers=auth())
        problem = assert_problem(response, 422, "validation-error")
        assert "line-count" in {e["rule"] for e in problem["errors"]}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "slug"),
    [
        (b'{"lines": [', "application/json", 400, "malformed-json"),
        (b"\xff\xfe", "application/json", 400, "malformed-json"),
        (b"[1, 2]", "application/json", 422, "validation-error"),
        (b'{"lines": "no"}', "application/json", 422, "validation-error"),
        (b'{"lines": [1]}', "application/json", 422, "validation-error"),
        (b"lines=1", "application/x-www-form-urlencoded", 415, "unsupported-media-type"),
        (b'{"lines": []}', "", 415, "unsupported-media-type"),
    ],
)
async def test_malformed_bodies(
    client: httpx.AsyncClient, content: bytes, content_type: str, status: int, slug: str
) -> None:
    headers = auth() | ({"Content-Type": content_type} if content_type else {})
    assert_problem(await client.post("/v1/claims", content=content, headers=headers), status, slug)


async def test_oversize_body_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"lines": [], "pad": "' + b"x" * 2_000_000 + b'"}'
    response = await client.post(
        "/v1/claims", content=big, headers=auth() | {"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")


@pytest.mark.parametrize(
    ("csv", "rule"),
    [
        (b"service date,submitted procedure\n3/28/18,D0180\n", "csv-missing-column"),
        (b"", "csv-empty"),
        (
            b"service date,submitted procedure,quadrant,Plan/Group #,Subscriber#,Provider NPI,"
            b"provider fees,Allowed fees,member coinsurance,member copay\n"
            b"3/28/18 0:00,D0180,,GRP-1000\n",
            "csv-row-shape",
        ),
        (
            b"service date,submitted procedure,quadrant,Plan/Group #,Subscriber#,Provider NPI,"
            b"provider fees,Allowed fees,member coinsurance,member copay\n"
            b"13/45/18 0:00,D0180,,GRP-1000,3730189502,1497775530,$1.00,abc,$0.00,$0.00\n",
            "date-format",
        ),
    ],
)
async def test_bad_csv(client: httpx.AsyncClient, csv: bytes, rule: str) -> None:
    response = await client.post(
        "/v1/claims/import", content=csv, headers=auth() | {"Content-Type": "text/csv"}
    )
    problem = assert_problem(response, 422, "validation-error")
    assert rule in {e["rule"] for e in problem["errors"]}  # type: ignore[attr-defined]
    assert "3730189502" not in response.text


async def test_a_file_of_bad_rows_answers_a_bounded_problem(client: httpx.AsyncClient) -> None:
    header = (
        "claim number,service date,submitted procedure,quadrant,Plan/Group #,Subscriber#,"
        "Provider NPI,provider fees,Allowed fees,member coinsurance,member copay\n"
    )
    # The most a file may hold (100 claims of 50 lines), every line failing four rules
    # (procedure code, NPI check digit, negative and sub-cent money): 20,000 failures.
    bad = ",3/28/18 0:00,X9999,,GRP-1000,3730189502,1234567890,$1.00 ,$-1.00 ,$0.005 ,$0.00 \n"
    rows = "".join(f"C-{claim}{bad}" for claim in range(100) for _ in range(50))
    response = await client.post(
        "/v1/claims/import",
        content=(header + rows).encode(),
        headers=auth() | {"Content-Type": "text/csv"},
    )
    problem = assert_problem(response, 422, "validation-error")
    assert len(problem["errors"]) == 100  # type: ignore[arg-type]
    assert problem["truncated"] is True
    assert problem["error_count"] == 20_000
    assert len(response.content) < 64 * 1024
    assert "3730189502" not in response.text


async def test_csv_must_be_utf8_and_csv(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/claims/import", content=b"\xff\xfe\x00", headers=auth() | {"Content-Type": "text/csv"}
    )
    assert_problem(response, 400, "malformed-csv")
    response = await client.post("/v1/claims/import", json={"lines": []}, headers=auth())
    assert_problem(response, 415, "unsupported-media-type")


@pytest.mark.parametrize("claim_id", [str(uuid.uuid4()), "not-a-uuid", "1" * 300])
async def test_unknown_claims_are_404(client: httpx.AsyncClient, claim_id: str) -> None:
    assert_problem(
        await client.get(f"/v1/claims/{claim_id}", headers=auth()), 404, "claim-not-found"
    )


@pytest.mark.parametrize("cursor", ["garbage", "eyJ4IjoxfQ", "W10"])
async def test_bad_cursor_is_400(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get("/v1/claims", params={"cursor": cursor}, headers=auth())
    assert_problem(response, 400, "bad-cursor")


async def test_bad_query_parameters_are_422(client: httpx.AsyncClient) -> None:
    for params in ({"limit": 0}, {"limit": "x"}, {"status": "lost"}, {"provider_npi": "12"}):
        response = await client.get("/v1/claims", params=params, headers=auth())
        assert_problem(response, 422, "validation-error")


async def test_authentication_and_roles(client: httpx.AsyncClient) -> None:
    body = claim_body()
    response = await client.post("/v1/claims", json=body)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_problem(
        await client.post("/v1/claims", json=body, headers=auth("wrong")), 401, "unauthorized"
    )
    assert_problem(
        await client.get("/v1/claims", headers={"Authorization": "Basic x"}), 401, "unauthorized"
    )
    assert_problem(
        await client.post("/v1/claims", json=body, headers=auth(READER_KEY)), 403, "forbidden"
    )
    assert_problem(await client.get("/v1/claims", headers=auth(AUDITOR_KEY)), 403, "forbidden")
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200


def _refusals(settings: IntakeSettings, reason: str) -> float:
    labels = {"service": settings.service_name, "reason": reason}
    return REGISTRY.get_sample_value("claimflow_auth_refusals_total", labels) or 0.0


async def test_every_refusal_is_counted_and_logged_without_the_credential(
    client: httpx.AsyncClient, settings: IntakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    reasons = ("missing-credential", "unknown-credential", "missing-role")
    before = {reason: _refusals(settings, reason) for reason in reasons}
    presented = "not-a-key-" + uuid.uuid4().hex
    with caplog.at_level(logging.WARNING, logger="claimflow_shared.web.auth"):
        assert (await client.get("/v1/claims")).status_code == 401
        assert (await client.get("/v1/claims", headers=auth(presented))).status_code == 401
        assert (await client.get("/v1/claims", headers=auth(AUDITOR_KEY))).status_code == 403
    assert {r: _refusals(settings, r) - before[r] for r in reasons} == dict.fromkeys(reasons, 1)
    refused = [r for r in caplog.records if r.getMessage().startswith("request refused")]
    assert [r.getMessage() for r in refused] == [
        "request refused: 401 missing-credential",
        "request refused: 401 unknown-credential",
        "request refused: 403 missing-role",
    ]
    assert {r.route for r in refused} == {"/v1/claims"}  # type: ignore[attr-defined]
    assert refused[2].principal == "auditor"  # type: ignore[attr-defined]
    assert all(presented not in str(r.__dict__) for r in caplog.records)


async def test_readiness_reports_database_and_kafka(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "kafka": "ok", "rate_limit_storage": "ok"},
    }
