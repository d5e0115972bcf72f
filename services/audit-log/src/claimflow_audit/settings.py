"""audit-log's settings: the shared ones plus the database roles, checkpoints and limits.

Two database URLs, because the service must not be able to rewrite its own history:
`CLAIMFLOW_DATABASE_URL` is the application role the API and worker connect as (it may only
INSERT and SELECT the audit table); `CLAIMFLOW_MIGRATION_DATABASE_URL` is the owner that runs
migrations and grants that role its rights. The application role's name (and password, when
the URL has one) is taken from CLAIMFLOW_DATABASE_URL, so configuring it is configuring the URL.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from sqlalchemy.engine import make_url

from claimflow_shared.dburl import async_url, check_database_tls
from claimflow_shared.settings import ServiceSettings

CONSUMER_GROUP = "claimflow-audit-log"


class AuditSettings(ServiceSettings):
    service_name: str = "audit-log"
    http_port: int = Field(default=8082, ge=1, le=65535)
    # The worker (the consumer and the checkpointer) serves health and metrics here.
    worker_http_port: int = Field(default=9082, ge=1, le=65535)

    database_url: SecretStr = SecretStr(
        "postgresql+asyncpg://claimflow_audit_app@127.0.0.1:55432/audit"
    )
    # The owner of the schema; only `migrate` uses it. Unset: migrate uses database_url, which
    # is then expected to be the owner too, and no restricted role is set up (refused unless
    # allow_owner_as_app_role, for throwaway setups only).
    migration_database_url: SecretStr | None = None
    # Create the application role (LOGIN, with the URL's password) when it does not exist and
    # keep its password in step. Off where a platform team or operator manages roles: then
    # migrate only grants, and the role must exist.
    manage_app_role: bool = True
    allow_owner_as_app_role: bool = False

    consumer_group: str = CONSUMER_GROUP
    # A checkpoint (chain length and head hash) is appended at most this often, and only when
    # records arrived since the last one.
    checkpoint_interval_seconds: float = Field(default=300.0, gt=0)

    # The worker re-verifies the chain this often, incrementally (only records added since
    # its last run); 0 turns the scheduled verification off.
    audit_verify_interval_seconds: float = Field(default=300.0, ge=0)
    # ... and re-walks it all from seq 1 this often (and at start), which is what catches a
    # record changed after it was verified; 0: only at start.
    audit_full_verify_interval_seconds: float = Field(default=86400.0, ge=0)

    verify_chunk_size: int = Field(default=5000, ge=1, le=100_000)
    # A full verify reads the whole table; more than this many at once per process answer 429.
    verify_max_concurrent: int = Field(default=1, ge=1)
    timeline_max_limit: int = Field(default=1000, ge=1)

    @field_validator("migration_database_url")
    @classmethod
    def _asyncpg_migration_url(cls, value: SecretStr | None) -> SecretStr | None:
        # Same forms as database_url (the shared validator normalises that one).
        return None if value is None else SecretStr(async_url(value.get_secret_value()))

    @model_validator(mode="after")
    def _production_verifies_the_owner_too(self) -> AuditSettings:
        if self.environment == "production" and self.migration_database_url is not None:
            check_database_tls(
                self.migration_database_url.get_secret_value(),
                "migration_database_url",
                allow_unverified=self.database_allow_unverified_tls,
            )
        return self

    def app_role(self) -> str:
        """The role the services connect as: the user of CLAIMFLOW_DATABASE_URL."""
        user = make_url(self.database_url.get_secret_value()).username
        if not user:
            raise ValueError("CLAIMFLOW_DATABASE_URL must name the application role as its user")
        return user

    def app_role_password(self) -> str | None:
        return make_url(self.database_url.get_secret_value()).password

    def owner_url(self) -> str:
        chosen = self.migration_database_url or self.database_url
        return chosen.get_secret_value()
