"""promtool, Prometheus's own rule checker and rule unit-test runner, and the Prometheus
server, both built from Go modules.

The alert rules and dashboards under k8s/observability are checked with the parser and
evaluator of the Prometheus version the stack runs (prom/prometheus v3.16.0 there; the Go
module of Prometheus 3.x is versioned v0.3xx), not an approximation of them; the server of
the same module runs the stack's configuration on the local node (tests/cluster).

    python -m claimflow_devstack.promtool test rules k8s/observability/prometheus/rules.test.yaml
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from claimflow_devstack.errors import MissingToolError
from claimflow_devstack.go_tools import GoTool
from claimflow_devstack.scratch_images import ScratchImage

PROMTOOL = GoTool("promtool", "github.com/prometheus/prometheus/cmd/promtool", "v0.316.0")
PROMETHEUS = GoTool("prometheus", "github.com/prometheus/prometheus/cmd/prometheus", "v0.316.0")
PROMETHEUS_IMAGE = f"claimflow-prometheus:{PROMETHEUS.version}"


def promtool_binary() -> Path:
    """The cached promtool, built on first use; MissingToolError says what is missing."""
    return PROMTOOL.ensure_built()


def prometheus_image() -> ScratchImage:
    """The server's image for the local node: its static binary, FROM scratch."""
    return ScratchImage(
        PROMETHEUS_IMAGE, {"prometheus": PROMETHEUS.ensure_built()}, ["/prometheus"]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        binary = promtool_binary()
    except MissingToolError as exc:
        print(f"promtool: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return subprocess.call([str(binary), *args])  # noqa: S603 - the user's own arguments


if __name__ == "__main__":
    sys.exit(main())
