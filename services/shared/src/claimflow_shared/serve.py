"""Running a service's ASGI app: one uvicorn process, as in every container."""

from __future__ import annotations

import uvicorn


def serve(factory: str, host: str, port: int) -> None:
    """Serve `module:create_app` with the service's own JSON logging and no access log
    (RED metrics and traces already record every request)."""
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # Behind an Ingress the client address and scheme come from X-Forwarded-* headers.
        proxy_headers=True,
    )
