"""Host header check: requests naming a host the server does not serve get 400 before anything runs, so a
page on another site cannot reach the API through DNS rebinding."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from visual_search.serving.http.errors import reject


def host_of(header: str) -> str:
    """The host of a Host header, without its port (`[::1]:8000` -> `::1`), lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


class AllowedHosts:
    """ASGI middleware: only requests whose Host is one of `hosts` (`*`: any) pass."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = {host.lower() for host in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "*" in self.hosts:
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        if host_of(header) in self.hosts:
            await self.app(scope, receive, send)
            return
        allowed = ", ".join(sorted(self.hosts))
        detail = (
            f"host {header[:100] or '(none)'!r} is not served here; allowed: {allowed} (server.allowed_hosts)"
        )
        await reject(send, 400, detail)
