"""Inputs the OpenAPI fuzzer (tests/fuzz) found to break the API, kept as plain tests."""

from __future__ import annotations

import httpx

from ..conftest import auth


async def test_verify_bounds_beyond_a_bigint_are_a_422_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    # Sequence numbers are bigints: 2**63 reached PostgreSQL and failed there with a 500.
    for query in ("from_seq=730163454021515969876102685392896", f"to_seq={2**63}"):
        response = await client.get(f"/v1/audit/verify?{query}", headers=auth())
        assert response.status_code == 422, (query, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    largest = await client.get(f"/v1/audit/verify?from_seq=1&to_seq={2**63 - 1}", headers=auth())
    assert largest.status_code == 200, largest.text
