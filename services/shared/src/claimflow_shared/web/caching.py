"""No cache keeps what the API answers: claims, their lines and the audit trail are PHI."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIX = "/v1/"
_NO_STORE = (b"cache-control", b"no-store")


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every answer under /v1/ (errors included) that does not say
    otherwise: browsers, proxies and gateways keep none of it. Pure ASGI, a header per answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append(_NO_STORE)
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_no_store)
