"""`FROM scratch` container images of static binaries, written without Docker.

An image here is one layer (the binaries at the root) and a config, saved in the layout of
`docker save` so that `ctr images import` loads it under its tag: no registry, no image
builder, and the same bytes for the same binaries (fixed timestamps and owners).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from claimflow_devstack import processes
from claimflow_devstack.errors import MissingToolError, ProcessDiedError
from claimflow_devstack.go_tools import KUBELET, go_binary
from claimflow_devstack.paths import cache_dir

# containerd and the kubelet give a container no PATH of their own (Docker adds a default).
_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The pause version of build/pause/Makefile in the Kubernetes release the node runs.
PAUSE_VERSION = "3.10.2"


@dataclass(frozen=True)
class ScratchImage:
    """An image holding `files` (name in the image -> binary on the host) at its root."""

    tag: str
    files: Mapping[str, Path]
    entrypoint: Sequence[str]

    def write_archive(self, target: Path) -> Path:
        """Write the image as a `docker save` tar at `target`."""
        layer = _layer_tar(self.files)
        diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": [_PATH], "Entrypoint": list(self.entrypoint)},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            },
            sort_keys=True,
        ).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        manifest = json.dumps(
            [{"Config": config_name, "RepoTags": [self.tag], "Layers": ["layer.tar"]}]
        ).encode()
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(target, "w") as archive:
            for name, data in (
                ("layer.tar", layer),
                (config_name, config),
                ("manifest.json", manifest),
            ):
                _add_bytes(archive, name, data, 0o644)
        return target


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    archive.addfile(info, io.BytesIO(data))


def _layer_tar(files: Mapping[str, Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as layer:
        for name, source in sorted(files.items()):
            _add_bytes(layer, name, source.read_bytes(), 0o755)
    return buffer.getvalue()


def _kubernetes_source() -> Path:
    """The k8s.io/kubernetes module's source in Go's module cache (fetched if missing)."""
    module = KUBELET.wrapper_module
    assert module is not None
    result = subprocess.run(  # noqa: S603 - the Go toolchain, fixed arguments
        [go_binary(), "mod", "download", "-json", f"k8s.io/kubernetes@{KUBELET.version}"],
        cwd=module,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        message = f"could not fetch k8s.io/kubernetes {KUBELET.version}: {result.stderr}"
        raise MissingToolError(message)
    return Path(json.loads(result.stdout)["Dir"])


def pause_binary() -> Path:
    """The pod sandbox's `pause`, compiled from the Kubernetes source once (static C)."""
    source = _kubernetes_source() / "build" / "pause" / "linux" / "pause.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:10]
    target = cache_dir() / "bin" / f"pause-{PAUSE_VERSION}-{digest}"
    if os.access(target, os.X_OK):
        return target
    gcc = shutil.which("gcc")
    if gcc is None:
        raise MissingToolError(
            "no `gcc` on PATH: the pod sandbox's pause binary is compiled from the Kubernetes "
            "source (`apt-get install -y gcc libc6-dev`)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".pause.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.access(target, os.X_OK):
            return target
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            out = Path(tmp) / "pause"
            argv = [gcc, "-Os", "-static", f"-DVERSION=v{PAUSE_VERSION}", "-o", str(out)]
            try:
                processes.run(
                    "gcc pause",
                    [*argv, str(source)],
                    log_path=target.parent / "pause-build.log",
                    timeout=300.0,
                )
            except (ProcessDiedError, TimeoutError) as exc:
                raise MissingToolError(f"could not compile pause: {exc}") from exc
            out.rename(target)
    return target
