"""The service images, built here from the one Dockerfile and run as Kubernetes runs them.

Every image is run the way the charts' pods run it: as its numeric non-root user, with a
read-only root filesystem and a tmpfs on /tmp, no capabilities, no privilege escalation. The
containers share the host's network namespace, so the services reach the session's
PostgreSQL and Kafka on 127.0.0.1 and the tests reach the services there too.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from claimflow_devstack import processes
from claimflow_devstack.docker_engine import DockerEngine
from claimflow_devstack.images import SIZE_BUDGET_BYTES, ServiceImage, service_images, version
from claimflow_devstack.services import service
from claimflow_devstack.stack import api_keys_config

IMAGES = {image.service: image for image in service_images()}
API_KEY = secrets.token_urlsafe(24)
# What the charts' securityContext gives every claimflow container.
RESTRICTED = [
    "--read-only",
    "--tmpfs=/tmp",
    "--network=host",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
]
CLAIM = {
    "lines": [
        {
            "service_date": "2024-03-01",
            "submitted_procedure": "D0120",
            "plan_group": "GRP-1000",
            "subscriber_number": "SUB-1000001",
            "provider_npi": "1234567893",
            "provider_fees": "100.00",
            "allowed_fees": "80.00",
            "member_coinsurance": "20.00",
            "member_copay": "0.00",
        }
    ]
}


def _inspect(engine: DockerEngine, tag: str) -> dict[str, Any]:
    (config,) = json.loads(engine.docker("image", "inspect", tag).stdout)
    return dict(config)


@pytest.mark.parametrize("name", list(IMAGES))
def test_each_image_fits_its_budget_and_runs_as_a_numeric_non_root_user(
    docker_engine: DockerEngine, name: str
) -> None:
    image = IMAGES[name]
    config = _inspect(docker_engine, image.tag)
    assert config["Size"] <= SIZE_BUDGET_BYTES, f"{image.tag}: {config['Size'] / 1e6:.1f} MB"
    assert config["Config"]["User"] == "10001:10001"
    labels = config["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == version()
    assert labels["org.opencontainers.image.title"] == image.name
    # The root filesystem is read-only at run time: every module is compiled beforehand.
    out = _run_once(docker_engine, image, "python", "-c", _NO_STALE_BYTECODE)
    assert out == "compiled", out


# Imports what a service imports at start, then looks for any module without bytecode.
_NO_STALE_BYTECODE = """
import importlib.util, pathlib, sys, sysconfig
site = pathlib.Path(sysconfig.get_paths()["purelib"])
missing = [str(p) for p in site.rglob("claimflow_*/**/*.py")
           if not pathlib.Path(importlib.util.cache_from_source(str(p))).exists()]
print("compiled" if not missing else "no bytecode: " + ", ".join(missing[:3]))
"""


def _run_once(engine: DockerEngine, image: ServiceImage, *command: str) -> str:
    result = engine.docker(
        "run", "--rm", *RESTRICTED, "--entrypoint", command[0], image.tag, *command[1:]
    )
    return result.stdout.decode().strip()


def test_no_build_time_certificate_reaches_an_image(docker_engine: DockerEngine) -> None:
    """The local certificate authorities the build stage trusts stay in the build stage."""
    for image in IMAGES.values():
        listed = _run_once(docker_engine, image, "ls", "-A", "/usr/local/share/ca-certificates")
        assert listed == "", f"{image.tag} carries {listed}"
        env = _inspect(docker_engine, image.tag)["Config"]["Env"]
        assert not [v for v in env if v.startswith(("SSL_CERT_FILE", "PIP_CERT"))], env


class Container:
    """One detached container of ours, removed at the end."""

    def __init__(self, engine: DockerEngine, name: str) -> None:
        self.engine = engine
        self.name = name

    def logs(self) -> str:
        result = self.engine.docker("logs", "--tail", "40", self.name, check=False)
        return (result.stdout + result.stderr).decode(errors="replace")

    def running(self) -> bool:
        out = self.engine.docker("inspect", "--format", "{{.State.Running}}", self.name)
        return out.stdout.decode().strip() == "true"


@pytest.fixture
def containers(docker_engine: DockerEngine) -> Iterator[list[Container]]:
    started: list[Container] = []
    yield started
    for container in started:
        docker_engine.docker("rm", "--force", container.name, check=False)


def _service_env(name: str, database_url: str, bootstrap: str, prefix: str) -> dict[str, str]:
    spec = service(name)
    return {
        **spec.database_env(database_url),
        "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CLAIMFLOW_KAFKA_TOPIC_PREFIX": prefix,
        "CLAIMFLOW_API_KEYS": api_keys_config(API_KEY),
        "CLAIMFLOW_HTTP_HOST": "127.0.0.1",
        "CLAIMFLOW_HTTP_PORT": str(processes.free_port()),
        "CLAIMFLOW_WORKER_HTTP_PORT": str(processes.free_port()),
        "CLAIMFLOW_SERVICE_NAME": name,
    }


def _env_args(env: dict[str, str]) -> list[str]:
    return [arg for name, value in env.items() for arg in ("--env", f"{name}={value}")]


def _start(
    engine: DockerEngine, containers: list[Container], image: ServiceImage, env: dict[str, str]
) -> Container:
    """The image's own default command (the service's API), restricted as in a pod."""
    container = Container(engine, f"claimflow-test-{image.service}-{secrets.token_hex(4)}")
    engine.docker(
        "run", "--detach", "--name", container.name, *RESTRICTED, *_env_args(env), image.tag
    )
    containers.append(container)
    return container


def _migrate(engine: DockerEngine, image: ServiceImage, env: dict[str, str]) -> None:
    """The migrations Job's command, as the chart runs it: the service's console script."""
    script = image.build_args.get("COMMAND", f"claimflow-{image.service} api").split()[0]
    result = engine.docker(
        "run",
        "--rm",
        *RESTRICTED,
        *_env_args(env),
        image.tag,
        script,
        "migrate",
        timeout=300.0,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]


def _wait_ready(container: Container, url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not container.running():
            pytest.fail(f"{container.name} exited; its log:\n{container.logs()}")
        try:
            response = httpx.get(f"{url}/readyz", timeout=2.0)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.TransportError as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    pytest.fail(
        f"{container.name} not ready within {timeout:.0f}s ({last}); log:\n{container.logs()}"
    )


@pytest.mark.integration
@pytest.mark.parametrize("name", ["intake", "adjudication", "audit-log"])
def test_each_service_migrates_and_serves_from_its_read_only_image(
    docker_engine: DockerEngine,
    containers: list[Container],
    database_url: str,
    kafka_broker: Any,
    topic_prefix: str,
    name: str,
) -> None:
    image = IMAGES[name]
    env = _service_env(name, database_url, kafka_broker.bootstrap_servers, topic_prefix)
    _migrate(docker_engine, image, env)
    container = _start(docker_engine, containers, image, env)
    url = f"http://127.0.0.1:{env['CLAIMFLOW_HTTP_PORT']}"
    _wait_ready(container, url)
    assert httpx.get(f"{url}/healthz", timeout=5.0).status_code == 200

    # SIGTERM reaches the service itself (the image execs it): it drains and exits 0.
    started = time.monotonic()
    docker_engine.docker("stop", "--time", "20", container.name, timeout=60.0)
    state = json.loads(docker_engine.docker("inspect", container.name).stdout)[0]["State"]
    assert state["ExitCode"] == 0, container.logs()
    assert time.monotonic() - started < 20


@pytest.mark.integration
def test_the_intake_image_accepts_and_reads_back_a_claim(
    docker_engine: DockerEngine,
    containers: list[Container],
    database_url: str,
    kafka_broker: Any,
    topic_prefix: str,
) -> None:
    image = IMAGES["intake"]
    env = _service_env("intake", database_url, kafka_broker.bootstrap_servers, topic_prefix)
    _migrate(docker_engine, image, env)
    container = _start(docker_engine, containers, image, env)
    url = f"http://127.0.0.1:{env['CLAIMFLOW_HTTP_PORT']}"
    _wait_ready(container, url)

    auth = {"Authorization": f"Bearer {API_KEY}"}
    submitted = httpx.post(f"{url}/v1/claims", json=CLAIM, headers=auth, timeout=10.0)
    assert submitted.status_code == 202, submitted.text
    claim = httpx.get(f"{url}{submitted.headers['Location']}", headers=auth, timeout=10.0)
    assert claim.status_code == 200, claim.text
    assert claim.json()["totals"]["net_fee"] == "40.00"
