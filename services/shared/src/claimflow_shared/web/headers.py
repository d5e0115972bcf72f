"""Headers every answer carries for its safety: no cache keeps what the API answers (claims,
their lines and the audit trail are PHI), and a browser that reached the API over HTTPS never
tries plain HTTP again (HSTS)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIX = "/v1/"
_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeadersMiddleware:
    """`Cache-Control: no-store` on every answer under /v1/ (errors included) that does not say
    otherwise; `Strict-Transport-Security` on every answer to a request that came over HTTPS
    (the scheme uvicorn takes from a trusted proxy's X-Forwarded-Proto): RFC 6797 has browsers
    ignore it over plain HTTP. Pure ASGI, a header or two per answer."""

    def __init__(self, app: ASGIApp, hsts_max_age_seconds: int) -> None:
        self.app = app
        self.hsts = (
            (b"strict-transport-security", f"max-age={hsts_max_age_seconds}".encode())
            if hsts_max_age_seconds > 0
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope["path"].startswith(API_PREFIX)
        hsts = self.hsts if scope.get("scheme") == "https" else None
        if not no_store and hsts is None:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if no_store and not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append(_NO_STORE)
                if hsts is not None:
                    headers.append(hsts)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
