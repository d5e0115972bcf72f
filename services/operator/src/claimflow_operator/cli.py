"""`claimflow-operator run`: the operator, standalone (one replica; kopf's peering is not
leader election, so the chart runs one pod with the Recreate strategy)."""

from __future__ import annotations

import argparse
import sys

import kopf

from .handlers import build_registry, kopf_settings
from .logs import configure_operator_logging
from .settings import OperatorSettings


def run() -> None:
    config = OperatorSettings()
    configure_operator_logging(config.service_name, config.log_level)
    kopf.run(
        registry=build_registry(config),
        settings=kopf_settings(config),
        standalone=True,
        clusterwide=config.clusterwide,
        namespaces=config.operator_namespaces,
        liveness_endpoint=f"http://{config.http_host}:{config.operator_health_port}/healthz",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="claimflow-operator",
        description="Publishes BenefitPlan custom resources to the compacted plans topic.",
    )
    parser.add_argument("command", choices=["run"])
    parser.parse_args(sys.argv[1:] if argv is None else argv)
    run()


if __name__ == "__main__":
    main()
