"""Command-line tools built from Go modules once, cached by version under `.cache/bin`.

Nothing prebuilt is downloaded: `go` fetches module sources through its proxy and compiles
them here, so the only requirement is a Go toolchain (the module's `go` line may make it
fetch a newer toolchain itself).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from claimflow_devstack import processes
from claimflow_devstack.errors import MissingToolError, ProcessDiedError
from claimflow_devstack.paths import cache_dir, repo_root

_BUILD_TIMEOUT = 3600.0
# The module path prefix of the Go modules in this repo.
_OWN_MODULES = "claimflow.local/"


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
    # Linker flags beside `-s -w`, e.g. the `-X` version stamps a module build leaves empty.
    ldflags: tuple[str, ...] = ()

    @property
    def binary(self) -> Path:
        return cache_dir() / "bin" / f"{self.name}-{self.version}-{self._inputs_digest()}"

    def _inputs_digest(self) -> str:
        digest = hashlib.sha256(f"{self.package}@{self.version} cgo={self.cgo}".encode())
        if self.ldflags:
            digest.update(" ".join(self.ldflags).encode())
        if self.wrapper_module is not None:
            for name in ("go.mod", "go.sum"):
                digest.update((self.wrapper_module / name).read_bytes())
            # A command of our own (not a dependency's): its source is an input too.
            if self.package.startswith(_OWN_MODULES):
                for source in sorted(self.wrapper_module.glob("*.go")):
                    digest.update(source.read_bytes())
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
        print(  # noqa: T201
            f"devstack: building {self.name} {self.version} from Go modules (once; minutes)",
            file=sys.stderr,
        )
        log_path = target.parent / f"{self.name}-build.log"
        ldflags = "-ldflags=" + " ".join(("-s", "-w", *self.ldflags))
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            argv, cwd, env = self._go_command(["-trimpath", ldflags], Path(tmp))
            out = Path(tmp) / (self.name if self.wrapper_module else _installed_name(self.package))
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

    def _go_command(
        self, flags: Sequence[str], out_dir: Path
    ) -> tuple[list[str], Path, dict[str, str]]:
        """The `go install` (or, in the wrapper module, `go build`) of the tool with `flags`
        that writes its binary into `out_dir`: argv, working directory, environment."""
        env = self._environment()
        if self.wrapper_module is None:
            env["GOBIN"] = str(out_dir)
            return [go_binary(), "install", *flags, self.target_spec], out_dir, env
        argv = [go_binary(), "build", *flags, "-o", str(out_dir / self.name), self.package]
        return argv, self.wrapper_module, env

    def _fetch_command(self, work: Path) -> tuple[list[str], Path, dict[str, str]]:
        """A command that downloads the module sources the build needs and compiles nothing."""
        if self.wrapper_module is None:
            # -n loads the packages (which downloads their modules) and only prints the rest.
            return self._go_command(["-n"], work)
        # Every module a wrapper's build needs is in its go.mod.
        return [go_binary(), "mod", "download"], self.wrapper_module, self._environment()

    def _environment(self) -> dict[str, str]:
        return {**os.environ, "CGO_ENABLED": "1" if self.cgo else "0"}

    @property
    def target_spec(self) -> str:
        return f"{self.package}@{self.version}"


@contextlib.contextmanager
def modules_fetched_ahead(tools: Sequence[GoTool]) -> Iterator[None]:
    """While the body builds `tools` in this order, download in the background what each one
    not built yet needs: a build then mostly compiles, its modules downloaded while the ones
    before it compiled (the network waits overlapping the CPU-bound work). Go's module cache
    takes concurrent users; a build that needs a module still being downloaded waits for it.
    A failed download is left to the build to report."""
    pending = [tool for tool in tools if not os.access(tool.binary, os.X_OK)]
    stopping = threading.Event()
    lock = threading.Lock()
    running: list[processes.ManagedProcess] = []

    def fetch(work: Path) -> None:
        fetched: set[Path] = set()
        for tool in pending:
            # The Kubernetes commands share one wrapper module: its modules are fetched once.
            if tool.wrapper_module in fetched:
                continue
            if tool.wrapper_module is not None:
                fetched.add(tool.wrapper_module)
            argv, cwd, env = tool._fetch_command(work)
            with lock:
                if stopping.is_set():
                    return
                log_path = work / f"fetch-{tool.name}.log"
                proc = processes.start(
                    f"go fetch {tool.name}", argv, log_path=log_path, env=env, cwd=cwd
                )
                running.append(proc)
            proc.popen.wait()
            # The -n output is the whole build's script: not worth keeping.
            log_path.unlink(missing_ok=True)

    with tempfile.TemporaryDirectory(prefix="go-fetch-") as work:
        thread = threading.Thread(target=fetch, args=(Path(work),), name="go-fetch", daemon=True)
        thread.start()
        try:
            yield
        finally:
            with lock:
                stopping.set()
            for proc in running:
                if proc.alive():
                    processes.stop(proc, 5.0)
            thread.join()


def _installed_name(package: str) -> str:
    """The file `go install` writes for `package`: its last path element, or the one before a
    major version suffix (.../helm/v3/cmd/helm: helm; .../hydra/v2: hydra)."""
    *rest, last = package.split("/")
    return rest[-1] if re.fullmatch(r"v\d+", last) else last


def go_binary() -> str:
    found = shutil.which("go")
    if found is None:
        raise MissingToolError(
            "no `go` on PATH: helm, kine and kube-apiserver are built from Go modules; "
            "install Go >= 1.24 (https://go.dev/doc/install or `apt-get install golang`)"
        )
    return found


def _wrapper_version(module: Path, requirement: str) -> str:
    # `require X v1` on its own, or X's line in a `require ( ... )` block.
    pattern = rf"^\s*(?:require\s+)?{re.escape(requirement)}\s+(v\S+)"
    match = re.search(pattern, (module / "go.mod").read_text(), re.MULTILINE)
    if match is None:
        raise MissingToolError(f"{module}/go.mod does not require {requirement}")
    return match.group(1)


_KUBE_APISERVER_MODULE = repo_root() / "tools" / "devstack" / "go" / "kube-apiserver"

_HYDRA_MODULE = repo_root() / "tools" / "devstack" / "go" / "hydra"

HELM = GoTool("helm", "helm.sh/helm/v4/cmd/helm", "v4.3.1")
# skaffold's helm deployer passes an executable to `--post-renderer`, which helm 4 takes only
# as the name of a plugin: skaffold deploys with the last helm 3.
_HELM3_VERSION = "v3.21.4"
HELM3 = GoTool(
    "helm3",
    "helm.sh/helm/v3/cmd/helm",
    _HELM3_VERSION,
    # Unstamped, `helm version` says v3.21: skaffold reads the version it must support.
    ldflags=(f"-X helm.sh/helm/v3/internal/version.version={_HELM3_VERSION}",),
)
# kine keeps the API server's objects in SQLite (cgo) instead of etcd.
KINE = GoTool("kine", "github.com/k3s-io/kine", "v0.17.5", cgo=True)
_KUBERNETES_VERSION = _wrapper_version(_KUBE_APISERVER_MODULE, "k8s.io/kubernetes")


def _kubernetes_version_ldflags(version: str) -> tuple[str, ...]:
    # A `go build` outside Kubernetes' own scripts leaves these empty: the binaries would report
    # v0.0.0-master, and the kubelet would register the node with that version.
    major, minor = version.removeprefix("v").split(".")[:2]
    stamp = "-X k8s.io/component-base/version."
    return (f"{stamp}gitVersion={version}", f"{stamp}gitMajor={major}", f"{stamp}gitMinor={minor}")


def _kubernetes_command(name: str) -> GoTool:
    return GoTool(
        name,
        f"k8s.io/kubernetes/cmd/{name}",
        _KUBERNETES_VERSION,
        wrapper_module=_KUBE_APISERVER_MODULE,
        ldflags=_kubernetes_version_ldflags(_KUBERNETES_VERSION),
    )


KUBE_APISERVER = _kubernetes_command("kube-apiserver")
# The single node (claimflow_devstack.kube_node): built from the same wrapper module.
KUBELET = _kubernetes_command("kubelet")
KUBE_CONTROLLER_MANAGER = _kubernetes_command("kube-controller-manager")
KUBE_SCHEDULER = _kubernetes_command("kube-scheduler")
KUBE_PROXY = _kubernetes_command("kube-proxy")
KUBECTL = _kubernetes_command("kubectl")
# The node's cluster DNS, run as a pod from a FROM-scratch image: a static binary.
COREDNS = GoTool("coredns", "github.com/coredns/coredns", "v1.14.2")
_PROBE_MODULE = repo_root() / "tools" / "devstack" / "go" / "probe"
# The node tests' workload: a static HTTP server and client (standard library only).
PROBE = GoTool("probe", "claimflow.local/probe", "v1", wrapper_module=_PROBE_MODULE)
# The OAuth2/OIDC server of the bearer-token tests. Its wrapper module carries the replace of
# gobuffalo/pop by Ory's fork that Hydra's own go.mod has (a dependency's replaces are
# ignored, and Hydra does not build against upstream pop).
HYDRA = GoTool(
    "hydra",
    "github.com/ory/hydra/v2",
    _wrapper_version(_HYDRA_MODULE, "github.com/ory/hydra/v2"),
    wrapper_module=_HYDRA_MODULE,
)

_OTELCOL_MODULE = repo_root() / "tools" / "devstack" / "go" / "otelcol"
# The OpenTelemetry Collector with the components of the project's Collector configurations
# (claimflow_devstack.otelcol runs it); every component at the release of this core module.
OTELCOL = GoTool(
    "otelcol",
    "claimflow.local/otelcol",
    _wrapper_version(_OTELCOL_MODULE, "go.opentelemetry.io/collector/otelcol"),
    wrapper_module=_OTELCOL_MODULE,
)

_TRAEFIK_MODULE = repo_root() / "tools" / "devstack" / "go" / "traefik"
_TRAEFIK_VERSION = _wrapper_version(_TRAEFIK_MODULE, "github.com/traefik/traefik/v3")
# The local node's ingress controller (claimflow_devstack.traefik). Its wrapper module carries
# the replaces of Traefik's own go.mod, which `go install pkg@version` refuses.
TRAEFIK = GoTool(
    "traefik",
    "github.com/traefik/traefik/v3/cmd/traefik",
    _TRAEFIK_VERSION,
    wrapper_module=_TRAEFIK_MODULE,
    ldflags=(f"-X github.com/traefik/traefik/v3/pkg/version.Version={_TRAEFIK_VERSION}",),
)

_SKAFFOLD_MODULE = repo_root() / "tools" / "devstack" / "go" / "skaffold"
_SKAFFOLD_MODULE_PATH = "github.com/GoogleContainerTools/skaffold/v2"
_SKAFFOLD_VERSION = _wrapper_version(_SKAFFOLD_MODULE, _SKAFFOLD_MODULE_PATH)
# Builds the images of skaffold.yaml and deploys them to the local node (profile local-node).
# Its wrapper module carries the replaces of skaffold's own go.mod, like Traefik's.
SKAFFOLD = GoTool(
    "skaffold",
    f"{_SKAFFOLD_MODULE_PATH}/cmd/skaffold",
    _SKAFFOLD_VERSION,
    wrapper_module=_SKAFFOLD_MODULE,
    ldflags=(f"-X {_SKAFFOLD_MODULE_PATH}/pkg/skaffold/version.version={_SKAFFOLD_VERSION}",),
)
