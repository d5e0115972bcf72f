"""The settings every claimflow service shares; services subclass ServiceSettings."""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, TypeAdapter, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROLE_SUBMITTER = "submitter"
ROLE_READER = "reader"
ROLE_AUDITOR = "auditor"
ROLES = frozenset({ROLE_SUBMITTER, ROLE_READER, ROLE_AUDITOR})


class ApiKey(BaseModel):
    """One configured API key: only its SHA-256 is ever held by a service."""

    principal: str = Field(min_length=1, max_length=100)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    roles: frozenset[str]

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: frozenset[str]) -> frozenset[str]:
        unknown = roles - ROLES
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; known: {sorted(ROLES)}")
        return roles


_API_KEYS = TypeAdapter(list[ApiKey])


class ServiceSettings(BaseSettings):
    """12-factor settings: CLAIMFLOW_* environment variables, or files in CLAIMFLOW_SECRETS_DIR."""

    model_config = SettingsConfigDict(
        env_prefix="CLAIMFLOW_",
        secrets_dir=os.environ.get("CLAIMFLOW_SECRETS_DIR"),
        extra="ignore",
    )

    service_name: str = "claimflow"
    environment: str = "local"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    log_level: str = "INFO"

    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:55432/postgres")
    database_pool_size: int = Field(default=20, ge=1)
    # Overflow connections are closed as soon as they are returned, so under sustained load
    # they are opened again and again (a server process each); waiting for a pooled one is
    # cheaper.
    database_max_overflow: int = Field(default=0, ge=0)
    # A ping per checkout costs a round trip on every request; without it a connection the
    # server dropped fails one statement, and SQLAlchemy then replaces the whole pool.
    database_pre_ping: bool = False

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Prepended to every topic name so several stacks (or tests) can share one cluster.
    kafka_topic_prefix: str = ""
    kafka_dead_letter_topic: str = "claimflow.deadletter"
    kafka_linger_ms: int = Field(default=5, ge=0)
    kafka_batch_size: int = Field(default=65536, ge=1)
    kafka_max_poll_records: int = Field(default=500, ge=1)

    api_keys: Annotated[list[ApiKey], NoDecode] = Field(default_factory=list)

    outbox_batch_size: int = Field(default=500, ge=1)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_retention_seconds: int = Field(default=3600, ge=0)

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return _API_KEYS.validate_json(value) if value.strip() else []
        return value

    def topic(self, name: str) -> str:
        return f"{self.kafka_topic_prefix}{name}"

    @property
    def dead_letter_topic(self) -> str:
        return self.topic(self.kafka_dead_letter_topic)
