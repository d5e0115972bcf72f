"""Fetches the Kafka broker's jars once into the cache, and finds a Java to run them."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from claimflow_devstack import apt, processes
from claimflow_devstack.errors import MissingToolError, ProcessDiedError
from claimflow_devstack.paths import cache_dir, repo_root

KAFKA_VERSION = "3.9.1"
MIN_JAVA = 17
_MARKER = ".complete"


def pom_path() -> Path:
    return repo_root() / "tools" / "devstack" / "kafka" / "pom.xml"


def install_dir() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}"


def classpath(home: Path) -> str:
    # The JVM expands "dir/*" to every jar in dir itself; no shell involved.
    return str(home / "libs" / "*")


def java_bin() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise MissingToolError(
            f"no `java` on PATH (and no JAVA_HOME): Kafka {KAFKA_VERSION} needs Java "
            f">= {MIN_JAVA}, e.g. `apt-get install -y openjdk-17-jre-headless`"
        )
    return found


def java_version() -> tuple[int, str]:
    """Major version and the first line of `java -version`."""
    java = java_bin()
    out = subprocess.run(  # noqa: S603
        [java, "-version"], capture_output=True, text=True, check=False, timeout=60
    )
    text = (out.stderr or out.stdout).strip()
    first = text.splitlines()[0] if text else "(no output)"
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if out.returncode != 0 or match is None:
        raise MissingToolError(f"`{java} -version` failed: {first}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_292" style
        major = int(match.group(2))
    return major, first


def check_java() -> str:
    major, first = java_version()
    if major < MIN_JAVA:
        raise MissingToolError(
            f"Kafka {KAFKA_VERSION} needs Java >= {MIN_JAVA}, but `{java_bin()}` is {first!r}; "
            f"install a newer JDK (e.g. openjdk-17-jre-headless) or point JAVA_HOME at one"
        )
    return first


def mvn_bin() -> str:
    found = shutil.which("mvn")
    if found is not None:
        return found
    if apt.can_install():
        print("devstack: `mvn` not found; installing maven with apt-get", file=sys.stderr)  # noqa: T201
        try:
            apt.install("maven")
        except subprocess.CalledProcessError as exc:
            raise MissingToolError(
                f"`mvn` is missing and `apt-get install maven` failed: {exc}"
            ) from exc
        found = shutil.which("mvn")
    if found is None:
        raise MissingToolError(
            "`mvn` (Apache Maven) is missing: it fetches the Kafka jars from Maven Central; "
            "install it (e.g. `apt-get install -y maven`) and rerun"
        )
    return found


def _pom_digest() -> str:
    return hashlib.sha256(pom_path().read_bytes()).hexdigest()


def is_installed() -> bool:
    marker = install_dir() / _MARKER
    return marker.exists() and marker.read_text().strip() == _pom_digest()


def ensure_installed(*, timeout: float = 1800.0) -> Path:
    """Return the Kafka home (its jars in `libs/`), fetching them on first use."""
    check_java()
    home = install_dir()
    if is_installed():
        return home
    home.mkdir(parents=True, exist_ok=True)
    # Two test sessions starting at once must not download into the same folder.
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_installed():
            return home
        libs = home / "libs"
        # No marker means an earlier download stopped part-way: start clean.
        shutil.rmtree(libs, ignore_errors=True)
        print(  # noqa: T201
            f"devstack: fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central into "
            f"{libs} (once)",
            file=sys.stderr,
        )
        argv = [
            mvn_bin(),
            "-q",
            "-B",
            "-f",
            str(pom_path()),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ]
        try:
            processes.run("mvn", argv, log_path=home / "mvn.log", timeout=timeout)
        except (ProcessDiedError, TimeoutError) as exc:
            raise MissingToolError(
                f"could not fetch the Kafka {KAFKA_VERSION} jars from Maven Central: {exc}"
            ) from exc
        if not any(libs.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
            raise MissingToolError(
                f"mvn finished but no Kafka jar is in {libs}; see {home}/mvn.log"
            )
        (home / _MARKER).write_text(_pom_digest() + "\n")
    return home
