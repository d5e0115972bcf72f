"""TLS to PostgreSQL on a real server with `ssl = on` and a CA made for the session: with
sslmode=verify-full and the CA in PGSSLROOTCERT the service's engine connects over TLS (and
production settings accept the URL); a CA that did not sign the server's certificate is
refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from claimflow_devstack.tls import issue_server_certificate
from claimflow_shared.db import create_engine
from claimflow_shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


def _verified(server: Any) -> ServiceSettings:
    url = f"{server.dsn()}?sslmode=verify-full"
    return ServiceSettings(environment="production", database_url=url)  # type: ignore[arg-type]


async def test_verify_full_connects_over_tls(
    postgres_tls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGSSLROOTCERT", str(postgres_tls_server.tls.ca_file))
    engine = create_engine(_verified(postgres_tls_server))
    try:
        async with engine.connect() as conn:
            encrypted = await conn.scalar(
                text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
    finally:
        await engine.dispose()
    assert encrypted is True


async def test_a_server_certificate_of_another_ca_is_refused(
    postgres_tls_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stranger = issue_server_certificate(tmp_path, "stranger")
    monkeypatch.setenv("PGSSLROOTCERT", str(stranger.ca_file))
    engine = create_engine(_verified(postgres_tls_server))
    try:
        with pytest.raises(Exception, match="certificate verify failed"):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
