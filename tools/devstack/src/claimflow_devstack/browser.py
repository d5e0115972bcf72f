"""Headless Chromium, to look at a service's pages as a person's browser renders them.

The binary is CLAIMFLOW_CHROMIUM, else `chromium` (Debian's package) on PATH, which
`python -m claimflow_devstack.cli prepare` installs with apt-get when it is missing and we
are root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from claimflow_devstack import apt
from claimflow_devstack.errors import DevstackError, MissingToolError

CHROMIUM_ENV = "CLAIMFLOW_CHROMIUM"
PACKAGE = "chromium"
# Long enough for a page's scripts to fetch the OpenAPI document and render it; virtual time
# runs ahead whenever the page is idle, so a quick page does not wait this long.
VIRTUAL_TIME_BUDGET_MS = 10_000
TIMEOUT_SECONDS = 120.0


def find_chromium() -> Path | None:
    override = os.environ.get(CHROMIUM_ENV)
    if override:
        return Path(override)
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return Path(found) if found else None


def chromium_binary(*, install: bool = False) -> Path:
    """The Chromium to run; with `install`, apt-get installs Debian's when it is missing."""
    found = find_chromium()
    if found is None and install and apt.can_install():
        print(f"devstack: no chromium; installing {PACKAGE} with apt-get", file=sys.stderr)  # noqa: T201
        try:
            apt.install(PACKAGE)
        except subprocess.CalledProcessError as exc:
            raise MissingToolError(f"`apt-get install {PACKAGE}` failed: {exc}") from exc
        found = find_chromium()
    if found is None:
        raise MissingToolError(
            f"no `chromium` on PATH (and no {CHROMIUM_ENV}): the API docs are checked in a "
            f"headless browser; run `python -m claimflow_devstack.cli prepare` as root, or "
            f"`apt-get install -y {PACKAGE}`"
        )
    if not os.access(found, os.X_OK):
        raise MissingToolError(f"{found} is not an executable")
    return found


def version(binary: Path | None = None) -> str:
    out = _run([str(binary or chromium_binary()), "--version"], timeout=60.0)
    return out.stdout.strip()


def _run(argv: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        out = subprocess.run(  # noqa: S603
            argv, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise DevstackError(f"{argv[0]} did not finish within {timeout:.0f}s") from None
    if out.returncode != 0:
        raise DevstackError(
            f"{' '.join(argv)} exited {out.returncode}: {out.stderr.strip()[-2000:]}"
        )
    return out


def _headless(url: str, *options: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="claimflow-chromium-") as profile:
        argv = [
            str(chromium_binary()),
            "--headless",
            # Root cannot use Chromium's sandbox; the pages are the project's own, on loopback.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            # A fresh profile per run: nothing cached from an earlier page or run.
            f"--user-data-dir={profile}",
            # Only the page's own requests: no update checks, sync or other calls home.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
            *options,
            url,
        ]
        return _run(argv, timeout=TIMEOUT_SECONDS)


def dump_dom(url: str) -> str:
    """The page's DOM after its scripts ran, serialised as HTML."""
    return _headless(url, "--dump-dom").stdout


def screenshot(url: str, path: Path, *, width: int = 1280, height: int = 2000) -> Path:
    """A PNG of the rendered page at the given window size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    _headless(url, f"--screenshot={path}", f"--window-size={width},{height}")
    if not path.is_file():
        raise DevstackError(f"chromium reported success but wrote no screenshot to {path}")
    return path
