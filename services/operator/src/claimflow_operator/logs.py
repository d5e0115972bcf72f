"""The operator's log lines: the services' JSON lines, without what kopf adds to each one."""

from __future__ import annotations

import logging

from claimflow_shared.logs import configure_logging

# kopf's per-object logger puts its whole OperatorSettings (hundreds of characters of repr) and
# a flag meant for its own formatter on every record; the object's reference (k8s_ref) stays.
_KOPF_EXTRAS = ("settings", "k8s_skip")


class KopfExtrasFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name in _KOPF_EXTRAS:
            record.__dict__.pop(name, None)
        return True


def configure_operator_logging(service: str, level: str) -> None:
    configure_logging(service, level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(KopfExtrasFilter())
    # kopf's health server would log every liveness probe; the services log no access either
    # (their metrics and server spans count every request).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
