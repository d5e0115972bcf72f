"""How every Kafka client of a service connects: the brokers, the security protocol and the
credentials, in kafka-python's keyword arguments. Each client adds its own on top."""

from __future__ import annotations

from typing import Any

from claimflow_shared.settings import ServiceSettings


def connection_config(settings: ServiceSettings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # the settings insist on it
        config |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    if settings.kafka_security_protocol.endswith("SSL"):
        # The broker's name is checked against its certificate, as for any TLS server.
        config["ssl_check_hostname"] = True
        if settings.kafka_ssl_cafile is not None:
            config["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    return config
