"""The operator's settings: the shared Kafka ones, the namespaces it watches, its ports and
the watch timeouts."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from claimflow_shared.settings import ServiceSettings


class OperatorSettings(ServiceSettings):
    service_name: str = "operator"
    # Empty: every namespace (clusterwide). The operator owns the plans-topic keys of these
    # namespaces: at start it withdraws the plans whose resource is gone.
    operator_namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # kopf's liveness endpoint (/healthz) and the Prometheus metrics (/metrics), on http_host.
    operator_health_port: int = Field(default=8080, ge=1, le=65535)
    # 0 serves no metrics endpoint (tests read the registry directly).
    operator_metrics_port: int = Field(default=9090, ge=0, le=65535)
    # A watch the API server holds open longer than this is ended by the server, and one with
    # no bytes for client_timeout is dropped by us: either way kopf re-lists and re-watches, so
    # a connection that died silently (NAT, load balancer) cannot stall the operator forever.
    # Whole seconds: the API server parses timeoutSeconds as an integer (400 otherwise).
    operator_watch_server_timeout_seconds: int = Field(default=300, gt=0)
    operator_watch_client_timeout_seconds: float = Field(default=330.0, gt=0)
    operator_watch_connect_timeout_seconds: float = Field(default=30.0, gt=0)
    # How often to look for plans whose resource vanished unseen (see sweep.py).
    operator_sweep_interval_seconds: float = Field(default=300.0, gt=0)
    # How long the start-up sweep waits to replay the plans topic before the operator fails.
    operator_catch_up_seconds: float = Field(default=60.0, gt=0)

    @field_validator("operator_namespaces", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [n.strip() for n in value.split(",") if n.strip()]
        return value

    @property
    def clusterwide(self) -> bool:
        return not self.operator_namespaces

    def watches(self, namespace: str) -> bool:
        return self.clusterwide or namespace in self.operator_namespaces
