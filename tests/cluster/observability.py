"""The observability stack of k8s/observability as objects for the local node's tests: the
gateway Collector and Prometheus, each as the stack runs it but for what the local node makes
impossible (said where it differs), and a reader of what the Collector exported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from claimflow_devstack import otelcol
from claimflow_devstack.paths import repo_root
from claimflow_devstack.promtool import PROMETHEUS_IMAGE

OBSERVABILITY = repo_root() / "k8s" / "observability"
COLLECTOR = OBSERVABILITY / "otel-collector" / "collector.yaml"
PROMETHEUS = OBSERVABILITY / "prometheus"
RULES = PROMETHEUS / "rules.yaml"
# Where the kubelet mounts a pod's ServiceAccount token and the cluster's CA.
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# The Collector's user (k8s/observability/otel-collector/collector.yaml) writes its exports.
COLLECTOR_USER = 10001


def collector_objects(namespace: str, exports: Path) -> list[dict[str, Any]]:
    """The gateway Collector of k8s/observability in the release's namespace: its
    ServiceAccount, Deployment and Service as they are, but one replica of the local image,
    and its configuration's pipelines writing to files under `exports` instead of Tempo,
    Prometheus and Loki (claimflow_devstack.otelcol says what else differs, and why). The
    ClusterRole of k8sattributes is left out with that processor."""
    config = otelcol.gateway_config(
        {
            signal: (f"file/{signal}", {"path": f"/export/{signal}.jsonl"})
            for signal in ("traces", "metrics", "logs")
        }
    )
    objects = [
        doc
        for doc in yaml.safe_load_all(COLLECTOR.read_text())
        if doc["kind"] in {"ServiceAccount", "Deployment", "Service"}
    ]
    for doc in objects:
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "Deployment":
            doc["spec"]["replicas"] = 1
            pod = doc["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            container["image"] = otelcol.IMAGE
            container["imagePullPolicy"] = "Never"
            container["volumeMounts"].append({"name": "export", "mountPath": "/export"})
            pod["volumes"].append(
                {"name": "export", "hostPath": {"path": str(exports), "type": "Directory"}}
            )
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "otel-collector-config", "namespace": namespace},
        "data": {"config.yaml": yaml.safe_dump(config, sort_keys=False)},
    }
    return [config_map, *objects]


def exported_spans(exports: Path) -> list[dict[str, Any]]:
    """Every span the Collector wrote (OTLP JSON, a batch a line), with its service's name
    and its attributes as a dict."""
    spans = []
    path = exports / "traces.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        for resource_spans in json.loads(line).get("resourceSpans", []):
            resource = {
                a["key"]: a["value"] for a in resource_spans["resource"].get("attributes", [])
            }
            service = resource.get("service.name", {}).get("stringValue")
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    attributes = {
                        a["key"]: next(iter(a["value"].values()), None)
                        for a in span.get("attributes", [])
                    }
                    spans.append(span | {"service": service, "attributes": attributes})
    return spans


def prometheus_objects(namespace: str, api_server: str, port: int) -> list[dict[str, Any]]:
    """Prometheus with the configuration and alert rules of k8s/observability, discovering the
    namespace's pods through the API server. The local node's API server listens on its
    loopback only, so the pod shares the node's network (it reaches the pods' addresses
    through the bridge) and listens on 127.0.0.1 there; kubernetes_sd names the API server and
    the namespace, whose pods a Role lets it list, instead of the in-cluster defaults."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        if job["job_name"] == "prometheus":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
        for discovery in job.get("kubernetes_sd_configs", []):
            discovery.update(
                api_server=api_server,
                namespaces={"names": [namespace]},
                tls_config={"ca_file": f"{SERVICE_ACCOUNT}/ca.crt"},
                authorization={"credentials_file": f"{SERVICE_ACCOUNT}/token"},
            )
    meta = {"name": "prometheus", "namespace": namespace}
    labels = {"app.kubernetes.io/name": "prometheus"}
    url = f"http://127.0.0.1:{port}"
    probe = {"httpGet": {"host": "127.0.0.1", "port": port, "path": "/-/ready"}}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "prometheus",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": namespace}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": {
                "prometheus.yml": yaml.safe_dump(config, sort_keys=False),
                "claimflow.yaml": RULES.read_text(),
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta | {"labels": labels},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},  # one port on the node's loopback
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "prometheus",
                        "hostNetwork": True,
                        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534},
                        "containers": [
                            {
                                "name": "prometheus",
                                "image": PROMETHEUS_IMAGE,
                                "imagePullPolicy": "Never",
                                "args": [
                                    "--config.file=/etc/prometheus/prometheus.yml",
                                    "--storage.tsdb.path=/data",
                                    f"--web.listen-address=127.0.0.1:{port}",
                                    f"--web.external-url={url}",
                                ],
                                "readinessProbe": probe,
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/prometheus"},
                                    {"name": "data", "mountPath": "/data"},
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "config",
                                "configMap": {
                                    "name": "prometheus",
                                    "items": [
                                        {"key": "prometheus.yml", "path": "prometheus.yml"},
                                        {"key": "claimflow.yaml", "path": "rules/claimflow.yaml"},
                                    ],
                                },
                            },
                            {"name": "data", "emptyDir": {}},
                        ],
                    },
                },
            },
        },
    ]
