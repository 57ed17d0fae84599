"""Request errors the server answers with a status code and a one-line `detail` (never a traceback)."""

from __future__ import annotations

import json

from starlette.types import Send


class RequestError(Exception):
    """A request the server cannot serve; `status_code` says why (HTTP semantics)."""

    status_code = 400


class BadInput(RequestError):
    """Not an image, a truncated one, malformed base64 or JSON: 400."""

    status_code = 400


class TooLarge(RequestError):
    """A body or an image over the configured limits: 413."""

    status_code = 413


class UnsupportedMediaType(RequestError):
    """A body that is neither a multipart upload nor JSON: 415."""

    status_code = 415


class Unprocessable(RequestError):
    """Well-formed but invalid parameters (box, k, category, an unavailable feature): 422."""

    status_code = 422


class NotFound(RequestError):
    """An unknown item: 404."""

    status_code = 404


async def reject(send: Send, status: int, detail: str) -> None:
    """Answer an ASGI request with `status` and `{"detail": detail}` (for middleware, before any route)."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
