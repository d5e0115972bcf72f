"""wrk, the HTTP load generator the benchmarks drive their closed-loop load with.

A compiled generator costs the machine a few microseconds per request where a Python one
costs over a millisecond, which on a small machine is CPU taken from the service measured.
The binary is the system's (Debian's package `wrk`, /usr/bin/wrk), else that package's files
unpacked (not installed) into the cache, together with those of its libraries the system lacks
(libluajit): `apt-get download` and `dpkg-deb -x`, the same way as the TLS tests' PostgreSQL.

    python -m claimflow_devstack.wrk -t1 -c4 -d2s http://127.0.0.1:8000/healthz
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from claimflow_devstack.apt import unpack_downloaded
from claimflow_devstack.errors import MissingToolError
from claimflow_devstack.paths import cache_dir

PACKAGE = "wrk"
# Debian 12's package; the upstream version is checked on download, so a mirror that moved on
# fails loudly instead of quietly changing the benchmark's generator.
UPSTREAM_VERSION = "4.1.0"
SYSTEM_BINARY = Path("/usr/bin/wrk")
# The bench Lua scripts use wrk 4's API: per-thread setup(), thread.addr, done(summary, ...).
_MAJOR = "4."
_VERSION_LINE = re.compile(r"^wrk (?:debian/)?(\S+)")


@dataclass(frozen=True)
class Wrk:
    """A runnable wrk: the binary and, when its libraries were unpacked next to it, where."""

    path: Path
    library_path: Path | None = None

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        if self.library_path is not None:
            inherited = env.get("LD_LIBRARY_PATH")
            env["LD_LIBRARY_PATH"] = str(self.library_path) + (f":{inherited}" if inherited else "")
        return env

    def version(self) -> str:
        """wrk's own version, e.g. `debian/4.1.0-3+b2`; MissingToolError if it does not run."""
        try:
            # `wrk -v` prints its version and usage, then exits 1.
            out = subprocess.run(  # noqa: S603
                [str(self.path), "-v"], capture_output=True, text=True, env=self.env(), check=False
            )
        except OSError as exc:
            raise MissingToolError(f"{self.path} does not run: {exc}") from exc
        match = _VERSION_LINE.match(out.stdout)
        if match is None:
            detail = (out.stderr or out.stdout).strip()[:500]
            raise MissingToolError(f"{self.path} does not run: {detail}")
        return match.group(1)


def find_wrk() -> Wrk:
    """The system's wrk, else Debian's unpacked in the cache (fetched on first use).

    MissingToolError says what is missing: no package tools, a download that failed, or a
    library no package we unpacked provides.
    """
    if os.access(SYSTEM_BINARY, os.X_OK):
        return _checked(Wrk(SYSTEM_BINARY))
    root = cache_dir() / f"debian-wrk-{UPSTREAM_VERSION}"
    root.parent.mkdir(parents=True, exist_ok=True)
    # Two sessions preparing at once must not unpack into each other's directory.
    with (root.parent / ".debian-wrk.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "usr" / "bin" / PACKAGE).exists():
            _unpack(root)
    return _checked(_unpacked(root))


def _checked(found: Wrk) -> Wrk:
    version = found.version()
    if not version.startswith(_MAJOR):
        raise MissingToolError(f"{found.path} is wrk {version}; the benchmarks need wrk 4")
    return found


def _unpacked(root: Path) -> Wrk:
    libraries = [p.parent for p in root.glob("usr/lib/**/*.so*")]
    library_path = sorted(set(libraries))[0] if libraries else None
    found = Wrk(root / "usr" / "bin" / PACKAGE, library_path)
    missing = _missing_libraries(found)
    if missing:
        raise MissingToolError(
            f"{found.path} needs {', '.join(missing)}, which neither the system nor the "
            f"unpacked packages provide: install Debian's {PACKAGE} (apt-get install {PACKAGE})"
        )
    return found


def _missing_libraries(found: Wrk) -> list[str]:
    out = subprocess.run(  # noqa: S603
        ["ldd", str(found.path)],  # noqa: S607
        capture_output=True,
        text=True,
        env=found.env(),
        check=False,
    )
    return [line.split()[0] for line in out.stdout.splitlines() if "not found" in line]


def _unpack(root: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise MissingToolError(
            f"no wrk: install Debian's {PACKAGE} (apt-get install {PACKAGE}); without it, "
            "apt-get and dpkg-deb are needed to unpack it into the cache"
        )
    download = root.with_name(root.name + ".download")
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir(parents=True)
    _download(download, [PACKAGE])
    deb = next(download.glob(f"{PACKAGE}_*.deb"))
    version = _field(deb, "Version")
    if not version.startswith(f"{UPSTREAM_VERSION}-"):
        raise MissingToolError(
            f"the package archive offers {PACKAGE} {version}, not {UPSTREAM_VERSION}: "
            f"install a wrk 4 yourself or update UPSTREAM_VERSION in {__name__}"
        )
    # Only what the system lacks, e.g. libluajit-5.1-2; of alternatives, the first.
    wanted = [group.split("|")[0].split()[0] for group in _field(deb, "Depends").split(",")]
    lacking = [name for name in wanted if not _installed(name)]
    if lacking:
        _download(download, lacking)
    versions = "".join(f"{p.stem}\n" for p in sorted(download.glob("*.deb")))
    unpack_downloaded(download, root)
    (root / "debian-versions").write_text(versions)


def _download(directory: Path, packages: Sequence[str]) -> None:
    command = ["apt-get", "download", "-q", *packages]
    done = subprocess.run(  # noqa: S603
        command, cwd=directory, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        # A fresh machine may have no package lists yet (needs root to refresh them).
        raise MissingToolError(
            f"`apt-get download {' '.join(packages)}` failed ({done.stderr.strip()[-500:]}); "
            f"run `apt-get update` or install Debian's {PACKAGE}"
        )


def _field(deb: Path, name: str) -> str:
    out = subprocess.run(  # noqa: S603
        ["dpkg-deb", "-f", str(deb), name],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _installed(package: str) -> bool:
    out = subprocess.run(  # noqa: S603
        ["dpkg-query", "-W", "-f=${Status}", package],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return out.returncode == 0 and out.stdout.endswith(" installed")


def debian_versions(found: Wrk) -> str:
    """The Debian packages an unpacked wrk came from, for prepare's line; '' for the system's."""
    record = found.path.parents[2] / "debian-versions"
    if found.path == SYSTEM_BINARY or not record.is_file():
        return ""
    return ", ".join(record.read_text().split())


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        found = find_wrk()
    except MissingToolError as exc:
        print(f"wrk: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return subprocess.call([str(found.path), *args], env=found.env())  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
