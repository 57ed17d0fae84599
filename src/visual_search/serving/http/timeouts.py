"""Read deadlines for requests: uvicorn times out idle keep-alive connections only, so a client that
sends its headers or its body slowly (or never) would hold a connection open indefinitely. The protocol
here closes a connection whose request head has not fully arrived `header_timeout_s` after its first byte
(or after the connection opened), or whose body has not `body_timeout_s` after its head. Requests that
have arrived are never cut: the deadline ends when the request is complete."""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)
FINISHED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on reading each request (see the module docstring)."""

    header_timeout_s = 10.0
    body_timeout_s = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading: str | None = None
        self._arm("head", self.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state in FINISHED:
            self._disarm()
        elif state is h11.SEND_BODY and self._reading != "body":
            self._arm("body", self.body_timeout_s)
        elif state is h11.IDLE and self._reading is None:  # the next request on the connection began
            self._arm("head", self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, what: str, seconds: float) -> None:
        self._disarm()
        self._reading = what
        self._deadline = self.loop.call_later(seconds, self._expire, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._reading = None, None

    def _expire(self, what: str, seconds: float) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            client = "{}:{}".format(*self.client) if self.client else "a client"
            log.warning(
                "closing the connection of %s: its request %s did not arrive within %g s",
                client,
                what,
                seconds,
            )
            self.transport.close()


def deadline_protocol(header_timeout_s: float, body_timeout_s: float) -> type[DeadlineH11Protocol]:
    """The protocol class for `uvicorn.run(http=...)` with these deadlines."""
    return type(
        "ConfiguredDeadlineH11Protocol",
        (DeadlineH11Protocol,),
        {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s},
    )
