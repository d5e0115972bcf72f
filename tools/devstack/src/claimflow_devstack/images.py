"""claimflow's service images, built here from the one Dockerfile with the devstack's engine.

No registry is needed: the public base (python:3.11-slim-bookworm) is replaced by local ones
of the same layout (tools/devstack/images/):

- claimflow-debian:bookworm: Debian bookworm's minimal root filesystem, made by debootstrap
  from this machine's own apt sources and imported;
- claimflow-base:bookworm: that plus Debian's python3.11 in a venv first on PATH;
- claimflow-base-build:bookworm: that plus the certificate authorities this machine trusts
  locally, for pip and uv in the build stage only (the Dockerfile's BUILDER_IMAGE).

Each service image is tagged `claimflow-<service>:<VERSION>`, the tag the charts default to.
`python -m claimflow_devstack.images build` (`make images`) builds them all and reports sizes.

The local cluster's data tier has two images of its own on the Debian base: claimflow-kafka
(the Maven-fetched broker with Debian's JRE) and claimflow-postgres (Debian's server). Its
stand-in for the payments system, claimflow-payments-fake, is the adjudication image plus the
devstack's fake_payments module.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from claimflow_devstack import kafka_install, processes
from claimflow_devstack.docker_engine import DockerEngine
from claimflow_devstack.errors import DevstackError, MissingToolError
from claimflow_devstack.paths import cache_dir, logs_dir, repo_root

SUITE = "bookworm"
DEBIAN_IMAGE = f"claimflow-debian:{SUITE}"
BASE_IMAGE = f"claimflow-base:{SUITE}"
BUILD_BASE_IMAGE = f"claimflow-base-build:{SUITE}"
KAFKA_IMAGE = f"claimflow-kafka:{kafka_install.KAFKA_VERSION}"
POSTGRES_IMAGE = "claimflow-postgres:15"
DATA_IMAGES = (KAFKA_IMAGE, POSTGRES_IMAGE)
PAYMENTS_FAKE_NAME = "claimflow-payments-fake"
# What claimflow promises of each service image.
SIZE_BUDGET_BYTES = 250 * 1000 * 1000
_IMAGES_DIR = repo_root() / "tools" / "devstack" / "images"
# update-ca-certificates' own folder for certificate authorities added locally.
_LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
_BUILD_TIMEOUT = 1800.0
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ServiceImage:
    """One service's image as skaffold.yaml builds it: its name and build arguments."""

    name: str
    build_args: dict[str, str]

    @property
    def service(self) -> str:
        return self.build_args["SERVICE"]

    @property
    def tag(self) -> str:
        return f"{self.name}:{version()}"


def version() -> str:
    return (repo_root() / "VERSION").read_text().strip()


def service_images() -> list[ServiceImage]:
    """Every service image, from skaffold.yaml: the one list of images and their arguments."""
    config = yaml.safe_load((repo_root() / "skaffold.yaml").read_text())
    return [
        ServiceImage(artifact["image"], dict(artifact["docker"]["buildArgs"]))
        for artifact in config["build"]["artifacts"]
    ]


def apt_mirror() -> str:
    """The Debian archive this machine's apt uses (not its security archive)."""
    sources = Path("/etc/apt")
    texts = [p.read_text() for p in sorted(sources.glob("sources.list.d/*.sources"))]
    for text in texts:  # deb822 stanzas
        for stanza in text.split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.MULTILINE)
            if uris and suites and SUITE in suites.group(1).split():
                return uris.group(1)
    one_line = [sources / "sources.list", *sorted(sources.glob("sources.list.d/*.list"))]
    for path in one_line:
        if path.exists():
            for match in re.finditer(
                rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", path.read_text(), re.M
            ):
                return match.group(1)
    raise MissingToolError(
        f"no apt source for Debian {SUITE} in /etc/apt: the base image is made with "
        "debootstrap from this machine's own Debian archive"
    )


def _present(engine: DockerEngine, image: str) -> bool:
    return engine.docker("image", "inspect", image, check=False).returncode == 0


def _say(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)  # noqa: T201


def ensure_debian_image(engine: DockerEngine) -> None:
    if _present(engine, DEBIAN_IMAGE):
        return
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise MissingToolError("no debootstrap: `apt-get install -y debootstrap`")
    work = cache_dir() / "images"
    work.mkdir(parents=True, exist_ok=True)
    _say(f"making {DEBIAN_IMAGE} with debootstrap (once; about a minute)")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        rootfs = Path(tmp) / "rootfs"
        processes.run(
            "debootstrap",
            [debootstrap, "--variant=minbase", SUITE, str(rootfs), apt_mirror()],
            log_path=logs_dir() / "debootstrap.log",
            timeout=_BUILD_TIMEOUT,
        )
        _slim(rootfs)
        # Docker adds a default PATH to what it runs; containerd and the kubelet do not.
        tar = subprocess.Popen(  # noqa: S603
            ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],  # noqa: S607
            stdout=subprocess.PIPE,
        )
        try:
            engine.docker(
                "import",
                "--change",
                f"ENV LANG=C.UTF-8 PATH={_DEFAULT_PATH}",
                "--change",
                'CMD ["bash"]',
                "-",
                DEBIAN_IMAGE,
                timeout=_BUILD_TIMEOUT,
                stdin=tar.stdout,
            )
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait()


# As Debian's own slim images do: no manuals, documentation (but its copyright files) or
# translations, now or from packages installed later.
_DPKG_SLIM = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
"""


def _slim(rootfs: Path) -> None:
    """Take out of the debootstrapped root what a container never reads: apt's downloaded
    packages and caches, documentation, manuals and translations. Their folders stay: some
    packages' scripts (update-alternatives for a JRE's manual pages) expect them."""
    (rootfs / "etc/dpkg/dpkg.cfg.d/01-claimflow-slim").write_text(_DPKG_SLIM)
    doomed = [
        *(rootfs / "var/cache/apt").glob("*.bin"),
        *(rootfs / "var/cache/apt/archives").glob("*.deb"),
        *(rootfs / "var/lib/apt/lists").glob("*_*"),
        *(
            path
            for folder in ("doc", "man", "info", "locale")
            for path in (rootfs / "usr/share" / folder).rglob("*")
            if not path.is_dir() and path.name != "copyright"
        ),
    ]
    for path in doomed:
        path.unlink(missing_ok=True)


def build(
    engine: DockerEngine,
    *,
    tag: str,
    context: Path,
    dockerfile: Path,
    build_args: dict[str, str],
    log_name: str,
) -> None:
    """`docker build` with the host's network (the engine has no bridge), logged to a file."""
    argv = ["build", "--network=host", "--file", str(dockerfile), "--tag", tag]
    for name, value in build_args.items():
        argv += ["--build-arg", f"{name}={value}"]
    log_path = logs_dir() / f"{log_name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        result = engine.docker(*argv, str(context), timeout=_BUILD_TIMEOUT, check=False, stdout=log)
        log.write(result.stderr)
    if result.returncode != 0:
        raise DevstackError(
            f"building {tag} failed (exit {result.returncode}); last lines of {log_path}:\n"
            f"{processes.log_tail(log_path)}"
        )


def ensure_bases(engine: DockerEngine) -> None:
    ensure_debian_image(engine)
    build(
        engine,
        tag=BASE_IMAGE,
        context=_IMAGES_DIR,
        dockerfile=_IMAGES_DIR / "base.Dockerfile",
        build_args={"DEBIAN_IMAGE": DEBIAN_IMAGE},
        log_name="image-base",
    )
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        certificates = context / "ca-certificates"
        certificates.mkdir()
        for crt in sorted(_LOCAL_CA_DIR.rglob("*.crt")) if _LOCAL_CA_DIR.is_dir() else []:
            shutil.copyfile(crt, certificates / crt.name)
        shutil.copyfile(_IMAGES_DIR / "build.Dockerfile", context / "Dockerfile")
        build(
            engine,
            tag=BUILD_BASE_IMAGE,
            context=context,
            dockerfile=context / "Dockerfile",
            build_args={"BASE_IMAGE": BASE_IMAGE},
            log_name="image-base-build",
        )


def _revision() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        cwd=repo_root(),
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def build_service_images(engine: DockerEngine) -> list[ServiceImage]:
    """Every service image on the local bases. Layers are cached in the engine's data root:
    unchanged code builds in seconds, a code change reinstalls no dependency."""
    ensure_bases(engine)
    images = service_images()
    revision = _revision()
    for image in images:
        started = time.monotonic()
        build(
            engine,
            tag=image.tag,
            context=repo_root(),
            dockerfile=repo_root() / "Dockerfile",
            build_args={
                **image.build_args,
                "BASE_IMAGE": BASE_IMAGE,
                "BUILDER_IMAGE": BUILD_BASE_IMAGE,
                "VERSION": version(),
                "REVISION": revision,
            },
            log_name=f"image-{image.service}",
        )
        _say(f"{image.tag} built in {time.monotonic() - started:.0f}s")
    return images


def build_data_images(engine: DockerEngine) -> list[str]:
    """The local cluster's Kafka and PostgreSQL images; returns their tags."""
    ensure_debian_image(engine)
    kafka_home = kafka_install.ensure_installed()
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp) / "kafka"
        shutil.copytree(_IMAGES_DIR / "kafka", context)
        shutil.copytree(kafka_home / "libs", context / "libs")
        build(
            engine,
            tag=KAFKA_IMAGE,
            context=context,
            dockerfile=context / "Dockerfile",
            build_args={"DEBIAN_IMAGE": DEBIAN_IMAGE},
            log_name="image-kafka",
        )
    build(
        engine,
        tag=POSTGRES_IMAGE,
        context=_IMAGES_DIR / "postgres",
        dockerfile=_IMAGES_DIR / "postgres" / "Dockerfile",
        build_args={"DEBIAN_IMAGE": DEBIAN_IMAGE},
        log_name="image-postgres",
    )
    return list(DATA_IMAGES)


def payments_fake_image() -> str:
    return f"{PAYMENTS_FAKE_NAME}:{version()}"


def build_payments_fake_image(engine: DockerEngine, service_image: ServiceImage) -> str:
    """The local cluster's fake payments system: `service_image` (adjudication's, built
    first) and the fake's one module; returns its tag."""
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        shutil.copy(_IMAGES_DIR / "payments-fake" / "Dockerfile", context)
        shutil.copy(Path(__file__).with_name("fake_payments.py"), context)
        build(
            engine,
            tag=payments_fake_image(),
            context=context,
            dockerfile=context / "Dockerfile",
            build_args={"SERVICE_IMAGE": service_image.tag},
            log_name="image-payments-fake",
        )
    return payments_fake_image()


def local_cluster_images() -> list[str]:
    """Every image the umbrella chart and k8s/data/local run on the local node."""
    services = [image.tag for image in service_images()]
    return [*services, payments_fake_image(), *DATA_IMAGES]


def build_local_images(engine: DockerEngine) -> list[tuple[str, int]]:
    """Every image `make images` and `prepare` build (services, the fake payments system,
    then the data tier), each with its size in bytes."""
    services = build_service_images(engine)
    (adjudication,) = [image for image in services if image.service == "adjudication"]
    tags = [image.tag for image in services]
    tags += [build_payments_fake_image(engine, adjudication), *build_data_images(engine)]
    return [(tag, image_size(engine, tag)) for tag in tags]


def image_size(engine: DockerEngine, tag: str) -> int:
    out = engine.docker("image", "inspect", "--format", "{{.Size}}", tag).stdout
    return int(out.decode().strip())


def over_budget(tag: str, size: int) -> str:
    """ " OVER the 250 MB budget" for a service image over it, else ""."""
    budgeted = tag not in DATA_IMAGES and size > SIZE_BUDGET_BYTES
    return " OVER the 250 MB budget" if budgeted else ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claimflow_devstack.images")
    parser.add_argument("command", choices=["build"], help="build every service image")
    parser.parse_args(argv)
    logs = logs_dir()
    logs.mkdir(parents=True, exist_ok=True)
    try:
        with processes.supervised(), DockerEngine.start(logs) as engine:
            for tag, size in build_local_images(engine):
                print(f"{tag:<32} {size / 1e6:6.0f} MB{over_budget(tag, size)}")  # noqa: T201
    except DevstackError as exc:
        print(f"images: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
