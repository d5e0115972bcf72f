"""Installing a Debian package the devstack needs, when we are root on a Debian machine."""

from __future__ import annotations

import os
import shutil
import subprocess


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
