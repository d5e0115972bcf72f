"""Command-line tools built from Go modules once, cached by version under `.cache/bin`.

Nothing prebuilt is downloaded: `go` fetches module sources through its proxy and compiles
them here, so the only requirement is a Go toolchain (the module's `go` line may make it
fetch a newer toolchain itself).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from claimflow_devstack import processes
from claimflow_devstack.errors import MissingToolError, ProcessDiedError
from claimflow_devstack.paths import cache_dir, repo_root

_BUILD_TIMEOUT = 3600.0


@dataclass(frozen=True)
class GoTool:
    """A binary from `go install <package>@<version>`, or built inside a wrapper module."""

    name: str
    package: str
    version: str
    # A module directory in this repo whose go.mod pins what `package` builds against;
    # None means the package's own module at `version`.
    wrapper_module: Path | None = None
    cgo: bool = False

    @property
    def binary(self) -> Path:
        return cache_dir() / "bin" / f"{self.name}-{self.version}-{self._inputs_digest()}"

    def _inputs_digest(self) -> str:
        digest = hashlib.sha256(f"{self.package}@{self.version} cgo={self.cgo}".encode())
        if self.wrapper_module is not None:
            for name in ("go.mod", "go.sum"):
                digest.update((self.wrapper_module / name).read_bytes())
        return digest.hexdigest()[:10]

    def ensure_built(self) -> Path:
        target = self.binary
        if os.access(target, os.X_OK):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        # Two sessions starting at once must not both spend minutes compiling.
        with (target.parent / f".{self.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if os.access(target, os.X_OK):
                return target
            self._build(target)
        return target

    def _build(self, target: Path) -> None:
        go = go_binary()
        print(  # noqa: T201
            f"devstack: building {self.name} {self.version} from Go modules (once; minutes)",
            file=sys.stderr,
        )
        env = {**os.environ, "CGO_ENABLED": "1" if self.cgo else "0"}
        log_path = target.parent / f"{self.name}-build.log"
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            out = Path(tmp) / self.name
            if self.wrapper_module is None:
                argv = [go, "install", "-trimpath", "-ldflags=-s -w", self.target_spec]
                env["GOBIN"] = tmp
                cwd = Path(tmp)
            else:
                argv = [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(out), self.package]
                cwd = self.wrapper_module
            try:
                processes.run(
                    f"go build {self.name}",
                    argv,
                    log_path=log_path,
                    timeout=_BUILD_TIMEOUT,
                    env=env,
                    cwd=cwd,
                )
            except (ProcessDiedError, TimeoutError) as exc:
                message = f"could not build {self.name} {self.version}: {exc}"
                raise MissingToolError(message) from exc
            # Rename last: a half-written binary must never look built.
            out.rename(target)

    @property
    def target_spec(self) -> str:
        return f"{self.package}@{self.version}"


def go_binary() -> str:
    found = shutil.which("go")
    if found is None:
        raise MissingToolError(
            "no `go` on PATH: helm, kine and kube-apiserver are built from Go modules; "
            "install Go >= 1.24 (https://go.dev/doc/install or `apt-get install golang`)"
        )
    return found


def _wrapper_version(module: Path, requirement: str) -> str:
    pattern = rf"^\s*require\s+{re.escape(requirement)}\s+(\S+)"
    match = re.search(pattern, (module / "go.mod").read_text(), re.MULTILINE)
    if match is None:
        raise MissingToolError(f"{module}/go.mod does not require {requirement}")
    return match.group(1)


_KUBE_APISERVER_MODULE = repo_root() / "tools" / "devstack" / "go" / "kube-apiserver"

_HYDRA_MODULE = repo_root() / "tools" / "devstack" / "go" / "hydra"

HELM = GoTool("helm", "helm.sh/helm/v4/cmd/helm", "v4.3.1")
# kine keeps the API server's objects in SQLite (cgo) instead of etcd.
KINE = GoTool("kine", "github.com/k3s-io/kine", "v0.17.5", cgo=True)
KUBE_APISERVER = GoTool(
    "kube-apiserver",
    "k8s.io/kubernetes/cmd/kube-apiserver",
    _wrapper_version(_KUBE_APISERVER_MODULE, "k8s.io/kubernetes"),
    wrapper_module=_KUBE_APISERVER_MODULE,
)
# The OAuth2/OIDC server of the bearer-token tests. Its wrapper module carries the replace of
# gobuffalo/pop by Ory's fork that Hydra's own go.mod has (a dependency's replaces are
# ignored, and Hydra does not build against upstream pop).
HYDRA = GoTool(
    "hydra",
    "github.com/ory/hydra/v2",
    _wrapper_version(_HYDRA_MODULE, "github.com/ory/hydra/v2"),
    wrapper_module=_HYDRA_MODULE,
)
