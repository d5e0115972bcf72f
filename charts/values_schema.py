"""Writes every chart's values.schema.json from the building blocks below.

The charts share most of their values (image, security contexts, probes, scheduling, traffic),
so their schemas are composed here once instead of kept by hand in five JSON files. Run
`python charts/values_schema.py` after changing a chart's values; the chart tests fail while a
committed schema differs from what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

CHARTS_DIR = Path(__file__).resolve().parent
SERVICE_CHARTS = ("intake", "adjudication", "audit-log")


def obj(properties: Schema, *, required: tuple[str, ...] = (), description: str = "") -> Schema:
    """A closed object: a misspelt key is an error, not a silently ignored value."""
    schema: Schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


def free(description: str) -> Schema:
    """A Kubernetes object passed through as it is (its own API validates it)."""
    return {"type": "object", "description": description}


def array(items: Schema, description: str = "") -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if description:
        schema["description"] = description
    return schema


def string(description: str = "", **extra: Any) -> Schema:
    schema: Schema = {"type": "string", **extra}
    if description:
        schema["description"] = description
    return schema


def integer(minimum: int = 0, maximum: int | None = None, *, nullable: bool = False) -> Schema:
    schema: Schema = {"type": ["integer", "null"] if nullable else "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


BOOL: Schema = {"type": "boolean"}
PORT = integer(1, 65535)
STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
QUANTITY: Schema = {"type": ["string", "number"]}
RESOURCES = obj(
    {
        "requests": obj({"cpu": QUANTITY, "memory": QUANTITY, "ephemeral-storage": QUANTITY}),
        "limits": obj({"cpu": QUANTITY, "memory": QUANTITY, "ephemeral-storage": QUANTITY}),
    }
)
PULL_SECRETS = array(obj({"name": string(minLength=1)}, required=("name",)))
PEERS = array(free("a NetworkPolicyPeer: namespaceSelector, podSelector and/or ipBlock"))
SECCOMP = obj(
    {
        "type": string(enum=["RuntimeDefault", "Localhost", "Unconfined"]),
        "localhostProfile": string(),
    },
    required=("type",),
)
RUN_AS = {
    "runAsNonRoot": BOOL,
    "runAsUser": integer(nullable=True),
    "runAsGroup": integer(nullable=True),
    "seccompProfile": SECCOMP,
}
POD_SECURITY = obj(
    {**RUN_AS, "fsGroup": integer(nullable=True), "supplementalGroups": array(integer())},
    description="the pods' securityContext",
)
CONTAINER_SECURITY = obj(
    {
        **RUN_AS,
        "privileged": BOOL,
        "allowPrivilegeEscalation": BOOL,
        "readOnlyRootFilesystem": BOOL,
        "capabilities": obj({"drop": array(string()), "add": array(string())}),
    },
    description="every container's securityContext",
)
PROBE = obj(
    {
        "initialDelaySeconds": integer(),
        "periodSeconds": integer(1),
        "timeoutSeconds": integer(1),
        "failureThreshold": integer(1),
        "successThreshold": integer(1),
    }
)
ENV_VAR = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": string(minLength=1)},
    "description": "an EnvVar: name with value or valueFrom",
}
KAFKA = obj(
    {
        "bootstrapServers": string("comma-separated host:port list", minLength=1),
        "topicPrefix": string("prepended to every topic name"),
    }
)
GLOBAL: Schema = {
    "type": "object",
    "description": "values an umbrella chart shares with every subchart",
    "properties": {
        "imageRegistry": string(),
        "imageTag": string(),
        "imagePullSecrets": PULL_SECRETS,
        "kafka": {
            "type": "object",
            "properties": {"bootstrapServers": string(), "topicPrefix": string()},
        },
        "otlpEndpoint": string(),
    },
}
IMAGE = obj(
    {
        "registry": string(),
        "repository": string(minLength=1),
        "tag": string("defaults to the chart's appVersion"),
        "digest": string(pattern=r"^(sha256:[0-9a-f]{64})?$"),
        "pullPolicy": string(enum=["Always", "IfNotPresent", "Never"]),
    },
    required=("repository",),
)
SERVICE_ACCOUNT = obj(
    {"create": BOOL, "name": string(), "annotations": STRING_MAP},
)
SERVICE_MONITOR = obj(
    {
        "enabled": BOOL,
        "interval": string(pattern=r"^[0-9]+(ms|s|m|h)$"),
        "scrapeTimeout": string(pattern=r"^[0-9]+(ms|s|m|h)$"),
        "labels": STRING_MAP,
    }
)
EGRESS = {
    "type": "object",
    "description": "allowed egress by name; an empty `to` allows the ports to any destination",
    "additionalProperties": obj(
        {
            "ports": array(
                obj(
                    {"port": PORT, "protocol": string(enum=["TCP", "UDP", "SCTP"])},
                    required=("port",),
                ),
            ),
            "to": PEERS,
        },
        required=("ports",),
    ),
}
TLS = array(obj({"secretName": string(), "hosts": array(string())}))
INGRESS = obj(
    {
        "enabled": BOOL,
        "className": string(),
        "annotations": STRING_MAP,
        "host": string(minLength=1),
        "tls": TLS,
    }
)
HTTP_ROUTE = obj(
    {
        "enabled": BOOL,
        "annotations": STRING_MAP,
        "parentRefs": array(free("a Gateway API ParentReference"), "the Gateways to attach to"),
        "hostnames": array(string()),
    }
)
# Labels, names and scheduling every chart has.
POD_COMMON: Schema = {
    "nameOverride": string(),
    "fullnameOverride": string(),
    "commonLabels": STRING_MAP,
    "global": GLOBAL,
    "image": IMAGE,
    "imagePullSecrets": PULL_SECRETS,
    "environment": string(),
    "logLevel": string(enum=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]),
    "kafka": KAFKA,
    "otlpEndpoint": string("OTLP/HTTP collector URL; empty = no export"),
    "settings": {
        "type": "object",
        "description": "any other CLAIMFLOW_* (or OTEL_*) setting",
        "propertyNames": {"pattern": "^(CLAIMFLOW|OTEL)_[A-Z0-9_]+$"},
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    },
    "serviceAccount": SERVICE_ACCOUNT,
    "serviceMonitor": SERVICE_MONITOR,
    "prometheusScrape": {
        "type": "boolean",
        "description": "annotate pods with prometheus.io/scrape, port and path",
    },
    "podSecurityContext": POD_SECURITY,
    "containerSecurityContext": CONTAINER_SECURITY,
    "tmpSizeLimit": QUANTITY,
    "terminationGracePeriodSeconds": integer(),
    "testResources": RESOURCES,
    "extraEnv": array(ENV_VAR),
    "podAnnotations": STRING_MAP,
    "podLabels": STRING_MAP,
    "nodeSelector": STRING_MAP,
    "tolerations": array(free("a Toleration")),
    "affinity": free("an Affinity"),
    "topologySpreadConstraints": array(
        {
            "type": "object",
            "required": ["maxSkew", "topologyKey", "whenUnsatisfiable"],
            "description": "without labelSelector, the component's pods are selected",
        }
    ),
    "enabled": {"type": "boolean", "description": "read by the umbrella chart"},
}


def scaling(min_replicas: int) -> Schema:
    return obj(
        {
            "enabled": BOOL,
            "minReplicas": integer(min_replicas),
            "maxReplicas": integer(1),
            "targetCPUUtilizationPercentage": integer(1, 100),
            "targetMemoryUtilizationPercentage": integer(1, 100, nullable=True),
        }
    )


PDB = obj(
    {
        "enabled": BOOL,
        "minAvailable": {"type": ["integer", "string"]},
        "maxUnavailable": {"type": ["integer", "string", "null"]},
    }
)
COMMAND = array(string(minLength=1), "the container's command")


def component(*, with_enabled: bool) -> Schema:
    properties: Schema = {
        "command": COMMAND,
        "port": PORT,
        "replicaCount": integer(0),
        "resources": RESOURCES,
        "autoscaling": scaling(1),
        "pdb": PDB,
    }
    if with_enabled:
        properties = {"enabled": BOOL, **properties}
    return obj(properties, required=("command", "port"))


API_KEY = obj(
    {
        "principal": string(minLength=1, maxLength=100),
        "sha256": string(pattern="^[0-9a-f]{64}$"),
        "roles": array(string(enum=["submitter", "reader", "auditor"])),
    },
    required=("principal", "sha256", "roles"),
)
DATABASE_URL = string("postgresql+asyncpg://user:password@host:5432/db")


def secret_keys(settings: tuple[str, ...]) -> Schema:
    """Setting -> the key existingSecret holds it under (e.g. databaseUrl: uri)."""
    return obj(
        {setting: string(minLength=1, pattern=r"^[-._a-zA-Z0-9]+$") for setting in settings},
        description="settings taken from existingSecret's keys of these names; "
        "the others are generated from secrets",
    )


def service_chart(name: str) -> Schema:
    secrets: Schema = {"databaseUrl": DATABASE_URL, "apiKeys": array(API_KEY)}
    if name == "adjudication":
        secrets["rateLimitStorageUrl"] = string("redis://host:6379/0; empty = per process")
    migrations: Schema = {
        "enabled": BOOL,
        "command": COMMAND,
        "backoffLimit": integer(),
        "activeDeadlineSeconds": integer(1),
        "ttlSecondsAfterFinished": integer(),
        "resources": RESOURCES,
    }
    if name == "audit-log":
        migrations["existingSecret"] = string("holds claimflow_migration_database_url")
        migrations["existingSecretKeys"] = secret_keys(("migrationDatabaseUrl",))
        migrations["secrets"] = obj({"migrationDatabaseUrl": DATABASE_URL})
    properties: Schema = {
        **POD_COMMON,
        "existingSecret": string("a Secret with the claimflow_* files; else one is generated"),
        "existingSecretKeys": secret_keys(tuple(secrets)),
        "secrets": obj(secrets, description="the generated Secret's contents"),
        "api": component(with_enabled=False),
        "worker": component(with_enabled=True),
        "migrations": obj(migrations),
        "service": obj({"port": PORT, "annotations": STRING_MAP}),
        "routes": array(string(pattern="^/"), "path prefixes routed to the API"),
        "ingress": INGRESS,
        "httpRoute": HTTP_ROUTE,
        "networkPolicy": obj(
            {"enabled": BOOL, "ingressFrom": PEERS, "metricsFrom": PEERS, "egress": EGRESS}
        ),
        "probes": obj({"startup": PROBE, "liveness": PROBE, "readiness": PROBE}),
    }
    return document(f"claimflow {name} chart values", properties)


def operator_chart() -> Schema:
    properties: Schema = {
        **POD_COMMON,
        "watchNamespaces": array(string(minLength=1), "empty = every namespace"),
        "healthPort": PORT,
        "metricsPort": PORT,
        "resources": RESOURCES,
        "rbac": obj({"create": BOOL}),
        "service": obj({"annotations": STRING_MAP}),
        "networkPolicy": obj({"enabled": BOOL, "metricsFrom": PEERS, "egress": EGRESS}),
        "probes": obj({"liveness": PROBE}),
    }
    return document("claimflow operator chart values", properties)


def umbrella_chart() -> Schema:
    subchart = {
        "type": "object",
        "description": "the subchart's values (its own schema checks them)",
        "properties": {"enabled": BOOL},
    }
    properties: Schema = {
        "global": GLOBAL,
        "nameOverride": string(),
        "fullnameOverride": string(),
        "commonLabels": STRING_MAP,
        **dict.fromkeys((*SERVICE_CHARTS, "operator"), subchart),
        "routes": array(
            obj(
                {"path": string(pattern="^/"), "chart": string(enum=list(SERVICE_CHARTS))},
                required=("path", "chart"),
            ),
            "one host's path prefixes, each to a subchart's API",
        ),
        "ingress": INGRESS,
        "httpRoute": HTTP_ROUTE,
    }
    return document("claimflow umbrella chart values", properties)


def document(title: str, properties: Schema) -> Schema:
    # helm adds the library chart's (empty) values under its name.
    library = {"common": {"type": "object", "description": "the common library chart's"}}
    return {
        "$schema": "https://json-schema.org/draft-07/schema#",
        "title": title,
        **obj({**properties, **library}),
    }


def schemas() -> dict[Path, str]:
    """Each chart's values.schema.json path and its text."""
    documents = {name: service_chart(name) for name in SERVICE_CHARTS}
    documents["operator"] = operator_chart()
    documents["claimflow"] = umbrella_chart()
    return {
        CHARTS_DIR / name / "values.schema.json": json.dumps(schema, indent=2) + "\n"
        for name, schema in documents.items()
    }


def main() -> None:
    for path, text in schemas().items():
        path.write_text(text)
        sys.stdout.write(f"wrote {path.relative_to(CHARTS_DIR.parent)}\n")


if __name__ == "__main__":
    main()
