"""Platform-style postgresql:// URLs (CloudNativePG's `uri`) are accepted and reach the database."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from claimflow_shared.db import create_engine, ping
from claimflow_shared.dburl import async_url, libpq_dsn
from claimflow_shared.settings import ServiceSettings

# The shape of the `uri` key in a CloudNativePG `<cluster>-app` Secret.
CNPG_URI = "postgresql://app:s3cret@claimflow-intake-db-rw.data:5432/app"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (CNPG_URI, "postgresql+asyncpg://app:s3cret@claimflow-intake-db-rw.data:5432/app"),
        ("postgres://app:pw@db/app", "postgresql+asyncpg://app:pw@db/app"),
        ("postgresql+asyncpg://app:pw@db/app", "postgresql+asyncpg://app:pw@db/app"),
        (
            "postgresql://app:pw@db/app?sslmode=require",
            "postgresql+asyncpg://app:pw@db/app?ssl=require",
        ),
        (
            "postgresql://app:pw@db/app?sslmode=verify-full&application_name=x",
            "postgresql+asyncpg://app:pw@db/app?application_name=x&ssl=verify-full",
        ),
        # An explicit asyncpg ssl= wins over a libpq sslmode= beside it.
        (
            "postgresql://a@db/app?ssl=disable&sslmode=require",
            "postgresql+asyncpg://a@db/app?ssl=disable",
        ),
        # Secret files may end in a newline.
        ("postgresql://a:p%40ss@db/app\n", "postgresql+asyncpg://a:p%40ss@db/app"),
    ],
)
def test_async_url_normalises_to_asyncpg(given: str, expected: str) -> None:
    assert async_url(given) == expected
    # Idempotent: settings, migrations and the relay may each normalise the same URL.
    assert async_url(expected) == expected


def test_libpq_dsn_spells_tls_as_sslmode() -> None:
    assert libpq_dsn("postgresql+asyncpg://a:p@db/app?ssl=require") == (
        "postgresql://a:p@db/app?sslmode=require"
    )
    assert libpq_dsn(CNPG_URI) == CNPG_URI


@pytest.mark.parametrize(
    "bad",
    [
        "mysql://a:p@db/app",
        "postgresql+psycopg://a:p@db/app",
        "postgresql://a:p@db/app?sslrootcert=/ca.crt",
        "not a url",
    ],
)
def test_unusable_urls_are_refused_without_echoing_them(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="database URL"):
        async_url(bad)
    monkeypatch.setenv("CLAIMFLOW_DATABASE_URL", bad)
    with pytest.raises(ValidationError) as caught:
        ServiceSettings()
    assert [e["loc"] for e in caught.value.errors()] == [("database_url",)]
    # The URL may hold a password: the error must not repeat it.
    assert ":p@" not in str(caught.value)


def test_a_cnpg_uri_file_becomes_an_asyncpg_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the charts mount: the Secret's `uri` key as the file claimflow_database_url.
    (tmp_path / "claimflow_database_url").write_text(CNPG_URI + "?sslmode=require")
    monkeypatch.delenv("CLAIMFLOW_DATABASE_URL", raising=False)
    settings = ServiceSettings(_secrets_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.database_url.get_secret_value() == (
        "postgresql+asyncpg://app:s3cret@claimflow-intake-db-rw.data:5432/app?ssl=require"
    )


def _plain(database_url: str, sslmode: str) -> str:
    """The devstack's asyncpg URL in the postgresql://...?sslmode= form platforms hand out."""
    url = make_url(database_url).set(drivername="postgresql", query={"sslmode": sslmode})
    return url.render_as_string(hide_password=False)


@pytest.mark.integration
async def test_engine_connects_with_a_platform_url(database_url: str) -> None:
    # prefer: TLS when the server offers it, else plain (the devstack's server offers none).
    settings = ServiceSettings(database_url=_plain(database_url, "prefer"))  # type: ignore[arg-type]
    engine = create_engine(settings)
    try:
        await ping(engine)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(libpq_dsn(settings.database_url.get_secret_value()))
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


@pytest.mark.integration
async def test_sslmode_require_is_honoured_not_dropped(database_url: str) -> None:
    # The devstack's server has no TLS: a required TLS connection must be refused by the
    # handshake (proof the mode reached asyncpg), not quietly made in the clear.
    settings = ServiceSettings(database_url=_plain(database_url, "require"))  # type: ignore[arg-type]
    engine = create_engine(settings)
    try:
        with pytest.raises(ConnectionError, match="SSL"):
            await ping(engine)
    finally:
        await engine.dispose()


VERIFIED = "postgresql://app:s3cret@db:5432/app?sslmode=verify-full"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:s3cret@db:5432/app",
        "postgresql://app:s3cret@db:5432/app?sslmode=prefer",
        "postgresql://app:s3cret@db:5432/app?sslmode=require",
        "postgresql://app:s3cret@db:5432/app?sslmode=verify-ca",
    ],
)
def test_production_refuses_a_database_it_does_not_verify(url: str) -> None:
    with pytest.raises(ValidationError, match="sslmode=verify-full") as refused:
        ServiceSettings(environment="production", database_url=url)  # type: ignore[arg-type]
    assert "s3cret" not in str(refused.value)
    # Anywhere else the same URL is fine: local stacks and tests have no TLS.
    ServiceSettings(environment="staging", database_url=url)  # type: ignore[arg-type]


def test_production_takes_verify_full_or_an_explicit_opt_in() -> None:
    verified = ServiceSettings(environment="production", database_url=VERIFIED)  # type: ignore[arg-type]
    assert make_url(verified.database_url.get_secret_value()).query["ssl"] == "verify-full"
    encrypted = "postgresql://app:s3cret@db:5432/app?sslmode=require"
    ServiceSettings(
        environment="production",
        database_url=encrypted,  # type: ignore[arg-type]
        database_allow_unverified_tls=True,
    )
    with pytest.raises(ValidationError, match="sslmode=verify-full"):
        ServiceSettings(
            environment="production",
            database_url="postgresql://app:s3cret@db:5432/app?sslmode=disable",  # type: ignore[arg-type]
            database_allow_unverified_tls=True,
        )
