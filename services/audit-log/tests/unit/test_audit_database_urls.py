"""Both of audit-log's URLs accept the postgresql:// form platforms (CloudNativePG) hand out."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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


def test_the_audit_owner_url_is_held_to_the_same_rule() -> None:
    with pytest.raises(ValidationError, match="migration_database_url must verify"):
        AuditSettings(
            environment="production",
            database_url="postgresql://app:s3cret@db:5432/app?sslmode=verify-full",  # type: ignore[arg-type]
            migration_database_url="postgresql://owner:pw@db:5432/app",  # type: ignore[arg-type]
        )
