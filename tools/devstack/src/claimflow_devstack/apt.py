"""Debian packages the devstack needs: installed when we are root on a Debian machine, or
their files unpacked into the cache (nothing installed) when we are not."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from claimflow_devstack.errors import MissingToolError


def can_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def install(package: str) -> None:
    """`apt-get install -y PACKAGE`, refreshing the package lists once if that fails.

    Raises subprocess.CalledProcessError when the package cannot be installed.
    """
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", package]
    if subprocess.run(command, env=env, check=False).returncode == 0:  # noqa: S603
        return
    # A fresh machine may have no package lists yet, or stale ones naming versions gone.
    subprocess.run(["apt-get", "update", "-q"], env=env, check=False)  # noqa: S607
    subprocess.run(command, env=env, check=True)  # noqa: S603


def ensure_installed(packages: Mapping[str, str], needed_for: str) -> None:
    """Install, when we can, each Debian package of `packages` (binary that shows it is
    installed, an absolute path or a name on PATH -> package) whose binary is missing; say
    which are missing, and for what, when we cannot."""
    missing = sorted(
        {
            package
            for binary, package in packages.items()
            if not (Path(binary).exists() if binary.startswith("/") else shutil.which(binary))
        }
    )
    if not missing:
        return
    if not can_install():
        raise MissingToolError(
            f"{needed_for} needs the Debian packages {', '.join(missing)} "
            f"(`apt-get install -y {' '.join(missing)}` as root)"
        )
    for package in missing:
        install(package)


def unpack_downloaded(download: Path, target: Path) -> None:
    """Unpack every .deb in `download` (`dpkg-deb -x`: files only, no scripts run) and put
    the tree in place of `target`, whole; `download` is removed."""
    tree = download / "root"
    for deb in sorted(download.glob("*.deb")):
        subprocess.run(  # noqa: S603
            ["dpkg-deb", "-x", str(deb), str(tree)],  # noqa: S607
            check=True,
            capture_output=True,
        )
    shutil.rmtree(target, ignore_errors=True)
    tree.rename(target)
    shutil.rmtree(download, ignore_errors=True)
