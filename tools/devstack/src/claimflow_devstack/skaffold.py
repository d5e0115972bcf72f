"""skaffold against this machine's node: `python -m claimflow_devstack.kube skaffold ARGS`.

skaffold (built here from its Go module) runs with the devstack's Docker engine as its Docker
(DOCKER_HOST), the node's kubeconfig, the project's kubectl and a helm 3 first on PATH (its
helm deployer needs one: go_tools.HELM3), and a global configuration of its own: no update
check, no prompt, no usage metrics. With skaffold.yaml's profile `local-node` it builds the
images on the local bases (claimflow_devstack.images), each artifact's after-build hook
imports the image into the node's containerd (`kube node import-image`, given the node's
directory in CLAIMFLOW_KUBE_NODE_DIR), and it deploys the umbrella chart with
values-local.yaml.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from claimflow_devstack import images, processes
from claimflow_devstack.docker_engine import DOCKER_CLI, DockerEngine
from claimflow_devstack.go_tools import HELM3, KUBECTL, SKAFFOLD
from claimflow_devstack.kube_node import KubeNode, running_node
from claimflow_devstack.paths import logs_dir, state_dir

PROFILE = "local-node"
# What skaffold would otherwise ask for, check or send: its global configuration file.
_GLOBAL_CONFIG = {
    "global": {"collect-metrics": False, "update-check": False, "survey": {"disable-prompt": True}}
}


def environment(engine: DockerEngine, node: KubeNode, work: Path) -> dict[str, str]:
    """skaffold's environment for `node`, its configuration and tools under `work`."""
    tools = work / "bin"
    tools.mkdir(parents=True, exist_ok=True)
    # The names skaffold and its hooks look up on PATH.
    for name, target in (
        ("helm", HELM3.ensure_built()),
        ("kubectl", KUBECTL.ensure_built()),
        ("docker", DOCKER_CLI),
    ):
        link = tools / name
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(_GLOBAL_CONFIG))
    return {
        **engine.env,
        "KUBECONFIG": str(node.kubeconfig),
        # The hooks run `python -m claimflow_devstack.kube`: this interpreter's.
        "PATH": os.pathsep.join((str(tools), str(Path(sys.executable).parent), os.environ["PATH"])),
        "SKAFFOLD_CONFIG": str(config),
        "SKAFFOLD_UPDATE_CHECK": "false",
        "SKAFFOLD_INTERACTIVE": "false",
        # skaffold runs no hook for an image its cache finds, so the cache lives and dies with
        # the node's containerd (`node up` empties the node's directory). Turning it off
        # instead would turn on skaffold's pruning, which deletes every other image of an
        # artifact's name: the claimflow-*:<VERSION> images `make images` builds.
        "SKAFFOLD_CACHE_FILE": str(node.data_dir / "skaffold-cache.yaml"),
        "HELM_CACHE_HOME": str(work / "helm" / "cache"),
        "HELM_CONFIG_HOME": str(work / "helm" / "config"),
        "HELM_DATA_HOME": str(work / "helm" / "data"),
        "CLAIMFLOW_KUBE_NODE_DIR": str(node.data_dir),
    }


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    timeout: float = 1800.0,
) -> None:
    """`skaffold ARGS` in `cwd` (where skaffold.yaml is), its output to `log_path`; a failure
    raises with the end of that output."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(SKAFFOLD.ensure_built()), *args]
    processes.run(f"skaffold {args[0]}", argv, log_path=log_path, timeout=timeout, env=env, cwd=cwd)


def main(argv: Sequence[str]) -> int:
    """`kube skaffold ARGS`: skaffold against the node `node up` runs in the default directory,
    with a Docker engine of the devstack's that has the local bases."""
    node = running_node()
    work = state_dir() / "skaffold"
    with processes.supervised(), DockerEngine.start(logs_dir()) as engine:
        images.ensure_bases(engine)
        env = environment(engine, node, work)
        return subprocess.call([str(SKAFFOLD.ensure_built()), *argv], env=env)  # noqa: S603
