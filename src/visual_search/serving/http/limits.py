"""Request body limit: a body over `max_bytes` gets 413 before it is read into memory, whether it declares
its length (Content-Length) or streams (chunked)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visual_search.serving.http.errors import reject


class BodySizeLimit:
    """ASGI middleware enforcing a maximum request body size."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def message(self, size: int | None = None) -> str:
        got = f"{size:,} bytes" if size is not None else "more"
        return f"request body is {got}; the limit is {self.max_bytes:,} bytes (limits.max_upload_mb)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await reject(send, 413, self.message(int(declared)))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self.message())  # FastAPI passes it through body parsing
            return message

        await self.app(scope, counted, send)
