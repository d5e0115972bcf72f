"""The settings every claimflow service shares; services subclass ServiceSettings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from limits import parse_many
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SecretStr,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from claimflow_shared.dburl import async_url, check_database_tls

ROLE_SUBMITTER = "submitter"
ROLE_READER = "reader"
ROLE_AUDITOR = "auditor"
# The payer's own staff: they see every organisation's claims, the provider totals and plans.
ROLE_PAYER_READER = "payer-reader"
ROLE_PAYER_ADMIN = "payer-admin"
PAYER_ROLES = frozenset({ROLE_PAYER_READER, ROLE_PAYER_ADMIN})
ROLES = frozenset({ROLE_SUBMITTER, ROLE_READER, ROLE_AUDITOR, *PAYER_ROLES})


class ApiKey(BaseModel):
    """One configured API key: only its SHA-256 is ever held by a service. The key acts for
    its organisation (the principal's own name when none is given): submitters and readers
    see only their organisation's claims."""

    principal: str = Field(min_length=1, max_length=100)
    organisation: str | None = Field(default=None, min_length=1, max_length=100)
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


def parse_api_keys(text: str) -> list[ApiKey]:
    """The keys of a JSON list (CLAIMFLOW_API_KEYS, or the key file); empty text is none."""
    return _API_KEYS.validate_json(text) if text.strip() else []


def _one_rate_limit(value: str) -> str:
    if len(parse_many(value)) != 1:
        raise ValueError("a rate limit is one '<count>/<period>', e.g. 60/minute")
    return value


# A rate limit in the `limits` notation: 60/minute, 10 per second, 1000/hour.
RateLimit = Annotated[str, AfterValidator(_one_rate_limit)]


class ServiceSettings(BaseSettings):
    """12-factor settings: CLAIMFLOW_* environment variables, or files in CLAIMFLOW_SECRETS_DIR."""

    model_config = SettingsConfigDict(
        env_prefix="CLAIMFLOW_",
        secrets_dir=os.environ.get("CLAIMFLOW_SECRETS_DIR"),
        extra="ignore",
        # A rejected value may be a URL with its password in it: errors name the field only.
        hide_input_in_errors=True,
    )

    service_name: str = "claimflow"
    environment: str = "local"
    # The interactive API docs (/docs, /redoc): on, except in production unless asked for.
    # /openapi.json is always served: clients generate their code from it.
    api_docs: bool | None = None
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
    # How long a request waits for a pooled connection before it answers 503: an exhausted
    # pool is an overload, and a client retrying after Retry-After beats one timing out.
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long opening a connection may take (asyncpg waits a minute by default): a server
    # that drops packets, rather than refusing, must fail a request as fast as one that refuses.
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # PostgreSQL's statement_timeout for every connection of the service (0 = none): a
    # statement stuck behind a lock or a runaway plan is cancelled, and the request answers 503
    # instead of holding a connection for ever.
    database_statement_timeout_ms: int = Field(default=30_000, ge=0)
    # In production the database URL must say sslmode=verify-full; this admits `require` (or
    # `verify-ca`): encrypted, but the server's name unchecked.
    database_allow_unverified_tls: bool = False

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # How the clients reach the brokers: PLAINTEXT on loopback (make run, the tests' shared
    # listener); SASL_SSL with SCRAM-SHA-512 in a cluster (Strimzi's `KafkaUser`), the CA
    # that signs the brokers' certificates in kafka_ssl_cafile (PEM; unset = the system's).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    # Prepended to every topic name so several stacks (or tests) can share one cluster.
    kafka_topic_prefix: str = ""
    kafka_dead_letter_topic: str = "claimflow.deadletter"
    kafka_linger_ms: int = Field(default=5, ge=0)
    kafka_batch_size: int = Field(default=65536, ge=1)
    kafka_max_poll_records: int = Field(default=500, ge=1)
    # A fetch waits for this many bytes (or fetch_max_wait_ms): batching a consumer's work at
    # moderate rates cut the pipeline's CPU per claim by a sixth (bench/pipeline), for at most
    # the wait in latency. 1 = answer at once.
    kafka_fetch_min_bytes: int = Field(default=32768, ge=1)
    kafka_fetch_max_wait_ms: int = Field(default=50, ge=0)
    # Group membership: a member silent for the session timeout, or between two polls for the
    # max poll interval, loses its partitions to the others.
    kafka_session_timeout_ms: int = Field(default=45000, ge=1000)
    kafka_heartbeat_interval_ms: int = Field(default=3000, ge=100)
    kafka_max_poll_interval_ms: int = Field(default=300000, ge=1000)
    # A batch's handler that runs longer is cancelled (its transaction rolls back) and retried.
    kafka_handler_timeout_seconds: float = Field(default=60.0, gt=0)
    kafka_retry_backoff_max_seconds: float = Field(default=30.0, gt=0)
    # More dead letters than this within the window halts the consumer (unhealthy) instead of
    # dead-lettering a whole topic after a bad deploy. 0 = no limit.
    kafka_dead_letter_limit: int = Field(default=100, ge=0)
    kafka_dead_letter_window_seconds: float = Field(default=60.0, gt=0)
    # Lag with no committed batch for this long, or a poll loop stuck as long, fails liveness.
    kafka_consumer_stall_seconds: float = Field(default=300.0, gt=0)
    # Topics the services create (where the platform does not manage them): replicas per
    # partition, and how many must hold a write before acks=all succeeds. Unset keeps the
    # broker's default.
    kafka_topic_replication_factor: int = Field(default=1, ge=1)
    kafka_topic_min_insync_replicas: int | None = Field(default=None, ge=1)
    # retention.ms of the topics the services create that carry PHI (claims.submitted holds
    # subscriber numbers and service dates) and of the dead-letter topic (whatever failed,
    # PHI included): shorter than the broker's week, since the databases and the audit log keep
    # the record. None = the broker's default.
    kafka_phi_retention_ms: int | None = Field(default=3 * 24 * 3_600_000, ge=60_000)
    kafka_dead_letter_retention_ms: int | None = Field(default=7 * 24 * 3_600_000, ge=60_000)

    api_keys: Annotated[list[ApiKey], NoDecode] = Field(default_factory=list)
    # The same JSON list in a file that is re-read when it changes (a mounted Secret is updated
    # in place): a revoked key stops working without a restart. Replaces api_keys when set.
    api_keys_file: Path | None = None
    # OIDC bearer tokens beside the API keys (both work): JWT access tokens of this issuer for
    # this audience, keys from its JWKS (discovered from the issuer unless given). The
    # organisation and roles come from these claims; roles are the claim's values that start
    # with the prefix (`claimflow:submitter` -> submitter). Leeway absorbs clock skew.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_organisation_claim: str = "client_id"
    oidc_roles_claim: str = "scp"
    oidc_role_prefix: str = "claimflow:"
    oidc_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # A token with a kid the cached keys lack makes them be fetched again, at most this often.
    oidc_jwks_refetch_seconds: float = Field(default=30.0, gt=0)
    # Failed authentications one client address may make per window; past it the client is
    # refused (429) whatever it presents, until the window has room again.
    auth_failure_limit: RateLimit = "30/minute"
    # Where rate-limit budgets count: memory:// per process, redis://host:port/db (or
    # rediss://) shared by every replica.
    rate_limit_storage_url: SecretStr = SecretStr("memory://")
    # Redis keys start with this: several installations can share one Redis.
    rate_limit_key_prefix: str = Field(default="claimflow", min_length=1)
    # Proxies (comma-separated addresses or CIDRs, * for any) whose X-Forwarded-For names the
    # client: the Ingress controller's, so limits and logs see the caller, not the proxy.
    forwarded_allow_ips: str = "127.0.0.1"
    # Strict-Transport-Security max-age on answers to HTTPS requests (a year); 0 = not sent.
    hsts_max_age_seconds: int = Field(default=31_536_000, ge=0)

    outbox_batch_size: int = Field(default=500, ge=1)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # After a NOTIFY wakes the relay, wait this long before reading the batch, so that rows
    # committed just after join it: fewer, larger batches at moderate rates. 0 = publish at once.
    outbox_linger_seconds: float = Field(default=0.02, ge=0, le=1)
    outbox_retention_seconds: int = Field(default=3600, ge=0)

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    # A span per SQL statement is most of what tracing costs a request; without them a trace
    # still shows every request, publish and consume. Sampling whole traces is the standard
    # OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, read by the SDK itself.
    trace_db_statements: bool = True

    @field_validator("database_url")
    @classmethod
    def _asyncpg_database_url(cls, value: SecretStr) -> SecretStr:
        # Platforms hand out postgresql:// URLs (CloudNativePG's `uri` key, for one).
        return SecretStr(async_url(value.get_secret_value()))

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _known_storage(cls, value: SecretStr) -> SecretStr:
        scheme = value.get_secret_value().split("://", 1)[0]
        if scheme not in ("memory", "redis", "rediss"):
            raise ValueError("rate_limit_storage_url must be memory://, redis:// or rediss://")
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_api_keys(value)
        return value

    @model_validator(mode="after")
    def _oidc_is_whole(self) -> ServiceSettings:
        if (self.oidc_issuer is None) != (self.oidc_audience is None):
            raise ValueError("oidc_issuer and oidc_audience go together")
        return self

    @model_validator(mode="after")
    def _sasl_has_credentials(self) -> ServiceSettings:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and (not self.kafka_sasl_username or self.kafka_sasl_password is None):
            raise ValueError(
                "kafka_security_protocol SASL_* needs kafka_sasl_username and kafka_sasl_password"
            )
        return self

    @model_validator(mode="after")
    def _production_verifies_the_database(self) -> ServiceSettings:
        if self.environment == "production":
            check_database_tls(
                self.database_url.get_secret_value(),
                "database_url",
                allow_unverified=self.database_allow_unverified_tls,
            )
        return self

    @model_validator(mode="after")
    def _consumer_timings_fit(self) -> ServiceSettings:
        if self.kafka_heartbeat_interval_ms * 3 > self.kafka_session_timeout_ms:
            raise ValueError("kafka_heartbeat_interval_ms must be at most a third of the session")
        if self.kafka_handler_timeout_seconds * 1000 >= self.kafka_max_poll_interval_ms:
            # A handler may hold the poll loop that long; past the interval the member is out.
            raise ValueError("kafka_handler_timeout_seconds must be below the max poll interval")
        return self

    @property
    def serves_api_docs(self) -> bool:
        if self.api_docs is not None:
            return self.api_docs
        return self.environment != "production"

    def topic(self, name: str) -> str:
        return f"{self.kafka_topic_prefix}{name}"

    @property
    def dead_letter_topic(self) -> str:
        return self.topic(self.kafka_dead_letter_topic)
