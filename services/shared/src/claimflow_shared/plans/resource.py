"""The BenefitPlan custom resource as YAML files hold it, and where it goes on the plans topic.

One document shape for every way a plan arrives: `kubectl apply` (the operator publishes it),
`make run` (the devstack publishes the same files without a cluster) and adjudication's
`CLAIMFLOW_PLANS_DIR`. A plan is identified on the topic by `namespace/name`, like the custom
resource; claims record the name (`plan_id`), which must therefore be unique across the
namespaces one deployment serves (the operator checks that).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from claimflow_shared.events import BenefitPlanSpecV1

from .checks import PlanRef, plan_set_problems

GROUP = "claimflow.io"
VERSION = "v1"
PLURAL = "benefitplans"
KIND = "BenefitPlan"
API_VERSION = f"{GROUP}/{VERSION}"
# Where a plan file without metadata.namespace lands: where `kubectl apply` would put it.
DEFAULT_NAMESPACE = "default"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class PlanFileError(ValueError):
    """A plan file that cannot be used; the message names the file and what is wrong."""


class PlanMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # A DNS label, not the 253-character subdomain Kubernetes allows: the name is the plan id
    # claims record (63 characters), and the CRD holds names to the same rule.
    name: str = Field(pattern=DNS_LABEL)
    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=DNS_LABEL)
    # The API server sets it; a file that has none is generation 1.
    generation: int = Field(default=1, ge=1)


class BenefitPlanResource(BaseModel):
    """A BenefitPlan custom resource (status and unknown metadata are ignored)."""

    model_config = ConfigDict(extra="ignore")
    api_version: Literal["claimflow.io/v1"] = Field(alias="apiVersion")
    kind: Literal["BenefitPlan"]
    metadata: PlanMetadata
    spec: BenefitPlanSpecV1

    @property
    def key(self) -> str:
        return plan_key(self.metadata.namespace, self.metadata.name)


def plan_key(namespace: str, name: str) -> str:
    """The plan's key on the compacted plans topic."""
    return f"{namespace}/{name}"


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) of a topic key; a bare name is in the default namespace."""
    namespace, _, name = key.rpartition("/")
    return namespace or DEFAULT_NAMESPACE, name


def _documents(path: Path) -> Iterable[Any]:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as exc:
        raise PlanFileError(f"{path.name}: not valid YAML ({type(exc).__name__})") from exc


def parse_resource(raw: Any, where: str) -> BenefitPlanResource:
    try:
        return BenefitPlanResource.model_validate(raw)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise PlanFileError(f"{where}: invalid at {', '.join(fields)}") from exc


def load_plan_documents(directory: Path) -> list[BenefitPlanResource]:
    """Every BenefitPlan in the directory's *.yaml / *.yml files, in file order."""
    if not directory.is_dir():
        raise PlanFileError(f"plans directory {directory} does not exist")
    documents: list[BenefitPlanResource] = []
    seen: dict[str, str] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        for raw in _documents(path):
            document = parse_resource(raw, path.name)
            if document.key in seen:
                other = seen[document.key]
                raise PlanFileError(f"{path.name}: plan {document.key!r} is also in {other}")
            seen[document.key] = path.name
            documents.append(document)
    problems = plan_set_problems(
        PlanRef(d.metadata.namespace, d.metadata.name, d.spec) for d in documents
    )
    if problems:
        raise PlanFileError(f"{directory.name}: " + "; ".join(problems))
    return documents
