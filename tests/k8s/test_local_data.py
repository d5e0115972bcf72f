"""k8s/data/local, the local cluster's single-node data tier, and the umbrella chart's
values-local.yaml agree: the hosts, ports, roles, passwords and databases the services'
URLs name are the ones the manifests create, and the fake payments system talks to the same
Kafka. tests/cluster/test_umbrella_chart.py runs them.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from sqlalchemy.engine import make_url

from claimflow_devstack.images import KAFKA_IMAGE, POSTGRES_IMAGE, payments_fake_image
from claimflow_devstack.paths import repo_root

from .k8s_files import LOCAL_DATA, objects_of

VALUES = yaml.safe_load((repo_root() / "charts" / "claimflow" / "values-local.yaml").read_text())
# The image's own user: the entrypoints write the volumes as it (hostPath ignores fsGroup).
IMAGE_USERS = {
    "claimflow-kafka": (KAFKA_IMAGE, 10001),
    "claimflow-postgres": (POSTGRES_IMAGE, 10002),
}


def _one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects_of(kind, LOCAL_DATA) if o["metadata"]["name"] == name]
    return found


def _init_sql() -> str:
    secret = _one("Secret", "claimflow-postgres-init")
    (sql,) = secret["stringData"].values()
    return str(sql)


def _service_port(name: str) -> int:
    (port,) = _one("Service", name)["spec"]["ports"]
    return int(port["port"])


def test_each_data_store_is_one_hardened_replica_of_its_local_image() -> None:
    for name, (image, uid) in IMAGE_USERS.items():
        spec = _one("StatefulSet", name)["spec"]
        assert spec["replicas"] == 1
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == uid
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["image"] == image
        assert container["imagePullPolicy"] == "Never"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["tcpSocket"]["port"] == container["ports"][0]["name"]
        assert "memory" in container["resources"]["limits"]
        # Each claim selects its own static volume: Kafka never gets PostgreSQL's directory.
        (claim,) = spec["volumeClaimTemplates"]
        assert claim["spec"]["storageClassName"] == "claimflow-local"
        volume = name.removeprefix("claimflow-")
        assert claim["spec"]["selector"]["matchLabels"] == {"claimflow.io/volume": volume}


def test_kafka_advertises_its_services_dns_name() -> None:
    (container,) = _one("StatefulSet", "claimflow-kafka")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KAFKA_ADVERTISED_HOST"] == "claimflow-kafka.$(POD_NAMESPACE).svc.cluster.local"
    bootstrap = VALUES["global"]["kafka"]["bootstrapServers"]
    assert bootstrap == f"claimflow-kafka:{_service_port('claimflow-kafka')}"
    assert VALUES["global"]["kafka"]["securityProtocol"] == "PLAINTEXT"


def test_every_database_url_names_a_role_and_database_the_init_sql_creates() -> None:
    sql = _init_sql()
    passwords = dict(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']+)';", sql))
    databases = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", sql))
    urls = {
        service: VALUES[service]["secrets"]["databaseUrl"]
        for service in ("intake", "adjudication", "audit-log")
    }
    urls["audit-log owner"] = VALUES["audit-log"]["migrations"]["secrets"]["migrationDatabaseUrl"]
    port = _service_port("claimflow-postgres")
    for what, raw in urls.items():
        url = make_url(raw)
        assert (url.host, url.port) == ("claimflow-postgres", port), what
        assert url.database in databases, what
        assert passwords.get(url.username) == url.password, what
        assert url.query["sslmode"] == "disable", what
    # The audit log's application role is not its database's owner: the append-only
    # guarantee rests on it (audit-log refuses to start otherwise).
    audit_app = make_url(urls["audit-log"]).username
    assert databases["audit"] == make_url(urls["audit-log owner"]).username != audit_app
    assert VALUES["audit-log"]["settings"]["CLAIMFLOW_MANAGE_APP_ROLE"] == "false"


def test_the_local_services_say_they_are_not_production() -> None:
    for chart in ("intake", "adjudication", "audit-log", "operator"):
        assert VALUES[chart]["environment"] != "production"
        assert VALUES[chart]["image"]["pullPolicy"] == "Never"
        assert VALUES[chart].get("enabled", True) is True


def test_the_fake_payments_system_runs_the_image_make_images_builds_on_the_local_kafka() -> None:
    spec = _one("Deployment", "claimflow-payments-fake")["spec"]
    assert spec["replicas"] == 1
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    # Tagged with VERSION, like the service images it is built on.
    assert container["image"] == payments_fake_image()
    assert container["imagePullPolicy"] == "Never"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS"] == VALUES["global"]["kafka"]["bootstrapServers"]
    assert env["CLAIMFLOW_FAKE_PAYMENTS_FAIL_AMOUNTS"] == "[]"
