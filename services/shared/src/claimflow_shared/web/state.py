"""Dependencies on what an application's lifespan put on `app.state`."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request


def from_state(attribute: str) -> Any:
    """`Depends` on `request.app.state.<attribute>`, for `Annotated[T, from_state("...")]`:
    the lifespan owns the object, the routes only read it. Async although it awaits nothing:
    FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request for an
    attribute read."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, attribute)

    return Depends(dependency)
