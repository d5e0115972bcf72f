"""Traefik, the ingress controller of the local node: built from its Go module (the wrapper in
tools/devstack/go/traefik), its image FROM scratch, and the objects that run it in a
namespace, where it serves that namespace's Ingresses of class `traefik` over HTTPS.

    python -m claimflow_devstack.kube node ingress claimflow     # https://localhost:8443

The local node's API server listens on its loopback only, out of the pods' reach. So the
controller shares the node's network, as the tests' Prometheus does: it reaches the API server
at its loopback address with its ServiceAccount's token and the pods' addresses through the
node's bridge, and it listens on 127.0.0.1 only. On any other cluster a platform team runs its
own ingress controller (docs/kubernetes.md); Traefik's own Helm chart is one.
"""

from __future__ import annotations

from typing import Any

from claimflow_devstack.go_tools import TRAEFIK
from claimflow_devstack.scratch_images import ScratchImage

IMAGE = f"claimflow-traefik:{TRAEFIK.version}"
NAME = "traefik"
# The IngressClass the controller serves (the chart's ingress.className).
INGRESS_CLASS = "traefik"
HTTPS_PORT = 8443
_LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "claimflow-local"}
_RBAC = "rbac.authorization.k8s.io"
_READ = ("get", "list", "watch")


def image() -> ScratchImage:
    """The controller's image for the local node: its static binary, FROM scratch."""
    return ScratchImage(IMAGE, {"traefik": TRAEFIK.ensure_built()}, ["/traefik"])


def _rule(group: str, *resources: str, verbs: tuple[str, ...] = _READ) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}


def cluster_role_binding_name(namespace: str) -> str:
    """The one object of `objects(namespace, ...)` outside the namespace that is the
    namespace's own (the IngressClass and the ClusterRole are shared)."""
    return f"{NAME}-{namespace}"


def objects(
    namespace: str, api_server: str, https_port: int = HTTPS_PORT, ping_port: int = 0
) -> list[dict[str, Any]]:
    """Traefik serving `namespace`'s Ingresses of class `traefik` on https://127.0.0.1:
    `https_port` (of the node's network), each with the certificate of its `tls` Secret;
    `ping_port` (default `https_port` + 1) answers its readiness probe on 127.0.0.1."""
    ping_port = ping_port or https_port + 1
    meta = {"name": NAME, "namespace": namespace, "labels": _LABELS}
    role_ref = {"apiGroup": _RBAC, "name": NAME}
    subject = {"kind": "ServiceAccount", "name": NAME, "namespace": namespace}
    probe = {"httpGet": {"host": "127.0.0.1", "port": ping_port, "path": "/ping"}}
    args = [
        f"--entryPoints.websecure.address=127.0.0.1:{https_port}",
        "--entryPoints.websecure.http.tls=true",
        # The Ingresses' routers on websecure only, not on the probe's entry point too.
        "--entryPoints.websecure.asDefault=true",
        f"--entryPoints.ping.address=127.0.0.1:{ping_port}",
        "--ping.entryPoint=ping",
        "--providers.kubernetesingress=true",
        # The API server's address on the node's loopback, instead of the in-cluster Service's.
        f"--providers.kubernetesingress.endpoint={api_server}",
        f"--providers.kubernetesingress.namespaces={namespace}",
        f"--providers.kubernetesingress.ingressClass={INGRESS_CLASS}",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
    ]
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": INGRESS_CLASS, "labels": _LABELS},
            "spec": {"controller": "traefik.io/ingress-controller"},
        },
        {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": NAME, "labels": _LABELS},
            # Cluster-scoped reads the provider makes wherever it watches.
            "rules": [_rule("networking.k8s.io", "ingressclasses"), _rule("", "nodes")],
        },
        {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": cluster_role_binding_name(namespace), "labels": _LABELS},
            "roleRef": role_ref | {"kind": "ClusterRole"},
            "subjects": [subject],
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                _rule("", "services", "secrets"),
                _rule("discovery.k8s.io", "endpointslices"),
                _rule("networking.k8s.io", "ingresses"),
                # The provider writes the address it serves on into each Ingress's status.
                _rule("networking.k8s.io", "ingresses/status", verbs=("update",)),
            ],
        },
        {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": role_ref | {"kind": "Role"},
            "subjects": [subject],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                # One listener on the node's loopback: the old pod goes before the new one binds.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
                "template": {
                    "metadata": {"labels": _LABELS},
                    "spec": {
                        "serviceAccountName": NAME,
                        "hostNetwork": True,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": NAME,
                                "image": IMAGE,
                                "imagePullPolicy": "Never",
                                "args": args,
                                "readinessProbe": probe | {"periodSeconds": 2},
                                "livenessProbe": probe | {"periodSeconds": 10},
                                "resources": {
                                    "requests": {"cpu": "25m", "memory": "64Mi"},
                                    "limits": {"cpu": "1", "memory": "256Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
        },
    ]
