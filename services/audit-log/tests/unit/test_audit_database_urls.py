"""Both of audit-log's URLs accept the postgresql:// form platforms (CloudNativePG) hand out."""

from __future__ import annotations

import pytest

from claimflow_audit.settings import AuditSettings


def test_app_and_owner_urls_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMFLOW_DATABASE_URL", "postgres://audit_app:pw@db-rw:5432/audit")
    monkeypatch.setenv(
        "CLAIMFLOW_MIGRATION_DATABASE_URL",
        "postgresql://owner:opw@db-rw:5432/audit?sslmode=verify-full",
    )
    settings = AuditSettings()
    assert settings.database_url.get_secret_value() == (
        "postgresql+asyncpg://audit_app:pw@db-rw:5432/audit"
    )
    assert settings.owner_url() == "postgresql+asyncpg://owner:opw@db-rw:5432/audit?ssl=verify-full"
    assert settings.app_role() == "audit_app"
    assert settings.app_role_password() == "pw"


def test_without_an_owner_url_migrations_use_the_normalised_app_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLAIMFLOW_DATABASE_URL", "postgresql://owner:pw@db-rw/audit")
    monkeypatch.delenv("CLAIMFLOW_MIGRATION_DATABASE_URL", raising=False)
    assert AuditSettings().owner_url() == "postgresql+asyncpg://owner:pw@db-rw/audit"
