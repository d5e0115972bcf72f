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


def integer(
    minimum: int = 0,
    maximum: int | None = None,
    *,
    nullable: bool = False,
    description: str = "",
) -> Schema:
    schema: Schema = {"type": ["integer", "null"] if nullable else "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    if description:
        schema["description"] = description
    return schema


def described(schema: Schema, description: str) -> Schema:
    """A shared building block with the description of the place it is used in."""
    return {**schema, "description": description}


def boolean(description: str) -> Schema:
    return {"type": "boolean", "description": description}


BOOL: Schema = {"type": "boolean"}
PORT = integer(1, 65535)
STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}


def port(description: str) -> Schema:
    return described(PORT, description)


def labels(description: str) -> Schema:
    return described(STRING_MAP, description)


QUANTITY: Schema = {"type": ["string", "number"]}
RESOURCES = obj(
    {
        "requests": obj({"cpu": QUANTITY, "memory": QUANTITY, "ephemeral-storage": QUANTITY}),
        "limits": obj({"cpu": QUANTITY, "memory": QUANTITY, "ephemeral-storage": QUANTITY}),
    },
    description="the containers' resource requests and limits",
)
PULL_SECRETS = array(
    obj({"name": string(minLength=1)}, required=("name",)),
    "Secrets to pull the images with, each {name}",
)
PEERS = array(free("a NetworkPolicyPeer: namespaceSelector, podSelector and/or ipBlock"))
METRICS_FROM = described(PEERS, "who may scrape /metrics")
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


def probe(description: str) -> Schema:
    return described(PROBE, description)


ENV_VAR = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": string(minLength=1)},
    "description": "an EnvVar: name with value or valueFrom",
}
KAFKA_SECURITY: Schema = {
    "securityProtocol": string(
        "how the clients connect", enum=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
    ),
    "saslMechanism": string(enum=["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]),
    "saslUsername": string("the service's Kafka user (a Strimzi KafkaUser's name)"),
}
KAFKA = obj(
    {
        "bootstrapServers": string("comma-separated host:port list", minLength=1),
        "topicPrefix": string("prepended to every topic name"),
        **KAFKA_SECURITY,
    },
    description="the Kafka cluster; global.kafka wins where set",
)
GLOBAL: Schema = {
    "type": "object",
    "description": "values an umbrella chart shares with every subchart",
    "properties": {
        "imageRegistry": string("registry of every image; wins over image.registry"),
        "imageTag": string("tag of every image; wins over image.tag"),
        "imagePullSecrets": described(PULL_SECRETS, "pull Secrets for every image"),
        "kafka": {
            "type": "object",
            "properties": {
                "bootstrapServers": string("every chart's Kafka; wins over kafka.*"),
                "topicPrefix": string("every chart's topic prefix"),
                "securityProtocol": KAFKA_SECURITY["securityProtocol"],
                "saslMechanism": KAFKA_SECURITY["saslMechanism"],
            },
        },
        "otlpEndpoint": string("every chart's OTLP/HTTP collector; wins over otlpEndpoint"),
    },
}
IMAGE = obj(
    {
        "registry": string("prepended to the repository; empty = the repository as it is"),
        "repository": string("the image's name", minLength=1),
        "tag": string("defaults to the chart's appVersion"),
        "digest": string(
            "sha256:..., pins the image whatever the tag says", pattern=r"^(sha256:[0-9a-f]{64})?$"
        ),
        "pullPolicy": string(enum=["Always", "IfNotPresent", "Never"]),
    },
    required=("repository",),
)
SERVICE_ACCOUNT = obj(
    {
        "create": boolean("create a ServiceAccount (its token is not mounted)"),
        "name": string("the ServiceAccount to use; empty = the release's name"),
        "annotations": labels("annotations of the ServiceAccount, e.g. for workload identity"),
    },
)
SERVICE_MONITOR = obj(
    {
        "enabled": boolean("a Prometheus Operator ServiceMonitor for /metrics"),
        "interval": string("scrape interval", pattern=r"^[0-9]+(ms|s|m|h)$"),
        "scrapeTimeout": string("scrape timeout", pattern=r"^[0-9]+(ms|s|m|h)$"),
        "labels": labels("extra labels, to match the Prometheus' serviceMonitorSelector"),
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
TLS = array(obj({"secretName": string(), "hosts": array(string())}), "[{secretName, hosts}]")
INGRESS = obj(
    {
        "enabled": boolean("an Ingress for the API's routes"),
        "className": string("the IngressClass; empty = the cluster's default"),
        "annotations": labels("annotations of the Ingress"),
        "host": string("the host the routes are served on", minLength=1),
        "tls": TLS,
        "allowInsecure": boolean("render the Ingress without tls (plain HTTP): claims carry PHI"),
    }
)
HTTP_ROUTE = obj(
    {
        "enabled": boolean("a Gateway API HTTPRoute for the API's routes"),
        "annotations": labels("annotations of the HTTPRoute"),
        "parentRefs": array(free("a Gateway API ParentReference"), "the Gateways to attach to"),
        "hostnames": array(string(), "the hosts the routes are served on"),
        "allowInsecure": boolean("allow parentRefs without the sectionName of an HTTPS listener"),
    }
)
# Labels, names and scheduling every chart has.
POD_COMMON: Schema = {
    "nameOverride": string("replaces the chart's name in object names"),
    "fullnameOverride": string("replaces the release-and-chart name of objects"),
    "commonLabels": labels("added to every object's labels"),
    "global": GLOBAL,
    "image": IMAGE,
    "imagePullSecrets": PULL_SECRETS,
    "environment": string("the services' CLAIMFLOW_ENVIRONMENT, a name for the deployment"),
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
    "tmpSizeLimit": described(QUANTITY, "size limit of the emptyDir on /tmp (read-only root)"),
    "terminationGracePeriodSeconds": integer(
        description="time a pod gets to drain after SIGTERM before it is killed"
    ),
    "testResources": described(RESOURCES, "resources of the `helm test` Pod"),
    "extraEnv": array(ENV_VAR, "EnvVar objects added to every container"),
    "podAnnotations": labels("added to every pod's annotations"),
    "podLabels": labels("added to every pod's labels"),
    "nodeSelector": labels("the pods' nodeSelector"),
    "tolerations": array(free("a Toleration"), "the pods' tolerations"),
    "affinity": free("an Affinity"),
    "topologySpreadConstraints": array(
        {
            "type": "object",
            "required": ["maxSkew", "topologyKey", "whenUnsatisfiable"],
            "description": "without labelSelector, the component's pods are selected",
        },
        "the pods' topology spread; without labelSelector, the component's pods are selected",
    ),
    "enabled": {"type": "boolean", "description": "read by the umbrella chart"},
}


def scaling(min_replicas: int) -> Schema:
    return obj(
        {
            "enabled": boolean("a HorizontalPodAutoscaler instead of replicaCount"),
            "minReplicas": integer(min_replicas, description="the autoscaler's floor"),
            "maxReplicas": integer(1, description="the autoscaler's ceiling"),
            "targetCPUUtilizationPercentage": integer(
                1, 100, description="average CPU use to scale at, % of requests"
            ),
            "targetMemoryUtilizationPercentage": integer(
                1, 100, nullable=True, description="average memory use to scale at; null = off"
            ),
        }
    )


PDB = obj(
    {
        "enabled": boolean("a PodDisruptionBudget"),
        "minAvailable": {
            "type": ["integer", "string"],
            "description": "pods (or %) kept through voluntary disruptions",
        },
        "maxUnavailable": {
            "type": ["integer", "string", "null"],
            "description": "instead of minAvailable: pods (or %) allowed down at once",
        },
    }
)
COMMAND = array(string(minLength=1), "the container's command")


def component(*, with_enabled: bool) -> Schema:
    properties: Schema = {
        "command": COMMAND,
        "port": port("the container's HTTP port: health, metrics (and the API's routes)"),
        "replicaCount": integer(0, description="replicas when autoscaling is off"),
        "minReadySeconds": integer(
            0,
            description=(
                "seconds a new pod stays ready before a rollout takes out the pod it replaces"
            ),
        ),
        "resources": RESOURCES,
        "autoscaling": scaling(1),
        "pdb": PDB,
    }
    if with_enabled:
        properties = {"enabled": boolean("run this Deployment"), **properties}
    return obj(properties, required=("command", "port"))


API_KEY = obj(
    {
        "principal": string(minLength=1, maxLength=100),
        "sha256": string(pattern="^[0-9a-f]{64}$"),
        "roles": array(
            string(enum=["submitter", "reader", "auditor", "payer-reader", "payer-admin"])
        ),
        "organisation": string(
            "whose claims the key submits and reads (default: the principal)",
            minLength=1,
            maxLength=100,
        ),
    },
    required=("principal", "sha256", "roles"),
)
DATABASE_URL = string("postgresql+asyncpg://user:password@host:5432/db")


def secret_keys(settings: tuple[str, ...]) -> Schema:
    """Setting -> the key existingSecret holds it under (e.g. databaseUrl: uri)."""
    return obj(
        {
            setting: string(
                f"the key existingSecret holds {setting} under",
                minLength=1,
                pattern=r"^[-._a-zA-Z0-9]+$",
            )
            for setting in settings
        },
        description="settings taken from existingSecret's keys of these names; "
        "the others are generated from secrets",
    )


def secret_files(settings: tuple[str, ...]) -> Schema:
    """Setting -> {secret, key}: a setting's file from a Secret of another name (a Strimzi
    KafkaUser's password, a cluster CA's ca.crt)."""
    return obj(
        {
            setting: obj(
                {
                    "secret": string("the Secret's name", minLength=1),
                    "key": string("the key holding the setting", minLength=1),
                },
                required=("secret", "key"),
            )
            for setting in settings
        },
        description="settings taken from other Secrets, setting: {secret, key}",
    )


def service_chart(name: str) -> Schema:
    secrets: Schema = {
        "databaseUrl": DATABASE_URL,
        "apiKeys": array(API_KEY, "[{principal, organisation, sha256 (of the key), roles}]"),
        "rateLimitStorageUrl": string("redis://host:6379/0; empty = per process"),
        "databaseCaCert": string(
            "PEM of the CA that signs the database server's certificate (sslmode=verify-full)"
        ),
        "kafkaSaslPassword": string("the Kafka user's password (SASL)"),
        "kafkaCaCert": string("PEM of the CA that signs the brokers' certificates"),
    }
    migrations: Schema = {
        "enabled": boolean("run the migrations hook Job before install and upgrade"),
        "command": COMMAND,
        "backoffLimit": integer(description="retries of the Job"),
        "activeDeadlineSeconds": integer(1, description="the Job fails after this long"),
        "ttlSecondsAfterFinished": integer(description="a finished Job is deleted after this"),
        "resources": RESOURCES,
    }
    if name == "audit-log":
        migrations["existingSecret"] = string("holds claimflow_migration_database_url")
        migrations["existingSecretKeys"] = secret_keys(("migrationDatabaseUrl",))
        migrations["secrets"] = obj({"migrationDatabaseUrl": DATABASE_URL})
    properties: Schema = {
        **POD_COMMON,
        "databaseSslMode": string(
            "PGSSLMODE: the TLS mode of a database URL that names none",
            enum=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
        ),
        "existingSecret": string("a Secret with the claimflow_* files; else one is generated"),
        "existingSecretKeys": secret_keys(tuple(secrets)),
        "secretFiles": secret_files(tuple(secrets)),
        "secrets": obj(secrets, description="the generated Secret's contents"),
        "api": component(with_enabled=False),
        "worker": component(with_enabled=True),
        "migrations": obj(migrations),
        "service": obj(
            {"port": port("the API Service's port"), "annotations": labels("of the Services")}
        ),
        "routes": array(string(pattern="^/"), "path prefixes routed to the API"),
        "ingress": INGRESS,
        "httpRoute": HTTP_ROUTE,
        "networkPolicy": obj(
            {
                "enabled": boolean("a NetworkPolicy per component"),
                "ingressFrom": described(PEERS, "who may call the API: the ingress or gateway"),
                "metricsFrom": METRICS_FROM,
                "egress": EGRESS,
            }
        ),
        "preStopSleepSeconds": integer(
            description=(
                "seconds an API pod keeps serving once told to stop, before its SIGTERM, while "
                "Services and Ingresses stop sending it new connections (a preStop sleep); 0 = none"
            )
        ),
        "probes": obj(
            {
                "startup": probe("GET /healthz until the process is up"),
                "liveness": probe("GET /healthz; failing restarts the container"),
                "readiness": probe("GET /readyz: database (and Kafka); failing takes it out"),
            }
        ),
    }
    return document(f"claimflow {name} chart values", properties)


def operator_chart() -> Schema:
    properties: Schema = {
        **POD_COMMON,
        "watchNamespaces": array(string(minLength=1), "empty = every namespace"),
        "secretFiles": secret_files(("kafkaSaslPassword", "kafkaCaCert")),
        "healthPort": port("kopf's liveness endpoint"),
        "metricsPort": port("/metrics"),
        "resources": RESOURCES,
        "rbac": obj(
            {"create": boolean("a Role per watched namespace, or ClusterRoles, and bindings")}
        ),
        "service": obj({"annotations": labels("of the metrics Service")}),
        "networkPolicy": obj(
            {
                "enabled": boolean("a NetworkPolicy for the operator"),
                "metricsFrom": METRICS_FROM,
                "egress": EGRESS,
            }
        ),
        "probes": obj({"liveness": probe("kopf's liveness; failing restarts the container")}),
    }
    return document("claimflow operator chart values", properties)


def umbrella_chart() -> Schema:
    subchart = {
        "type": "object",
        "description": "the subchart's values (its own schema checks them)",
        "properties": {"enabled": boolean("install this subchart")},
    }
    properties: Schema = {
        "global": GLOBAL,
        "nameOverride": string("replaces the chart's name in object names"),
        "fullnameOverride": string("replaces the release-and-chart name of objects"),
        "commonLabels": labels("added to every object's labels"),
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
