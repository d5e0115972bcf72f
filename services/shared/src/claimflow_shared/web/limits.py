"""Caps request body size before any handler buffers it."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import PROBLEM_BASE, Problem, problem_response


class BodyTooLargeError(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit


def too_large(limit: int, instance: str | None) -> Problem:
    return Problem(
        type=PROBLEM_BASE + "payload-too-large",
        title="Request body too large",
        status=413,
        detail=f"The body may be at most {limit} bytes.",
        instance=instance,
    )


class BodySizeLimitMiddleware:
    """`max_bytes` for every path but those in `path_limits` (bulk routes take files of
    thousands of claims; a single claim needs a few kilobytes)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await problem_response(too_large(limit, scope.get("path")))(scope, receive, send)
            return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if not response_started:
                await problem_response(too_large(limit, scope.get("path")))(scope, receive, send)
