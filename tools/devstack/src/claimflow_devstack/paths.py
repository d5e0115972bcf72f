"""Where the devstack keeps its state and downloads, relative to the repo root."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

_ROOT_MARKER = "constraints.txt"


@cache
def repo_root() -> Path:
    # Walking up from this file (not the cwd) keeps the answer stable whether the
    # package is installed editable or invoked from a subdirectory.
    here = Path(__file__).resolve()
    for candidate in here.parents:
        if (candidate / _ROOT_MARKER).is_file():
            return candidate
    raise RuntimeError(f"no {_ROOT_MARKER} above {here}: is claimflow_devstack installed editable?")


def example_plans_dir() -> Path:
    """The example BenefitPlan custom resources: `make run` publishes them, tests load them."""
    return repo_root() / "k8s" / "examples" / "benefitplans"


def _dir_from_env(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).resolve() if value else default


def state_dir() -> Path:
    return _dir_from_env("CLAIMFLOW_STATE_DIR", repo_root() / ".state")


def cache_dir() -> Path:
    return _dir_from_env("CLAIMFLOW_CACHE_DIR", repo_root() / ".cache")


def logs_dir() -> Path:
    return state_dir() / "logs"
