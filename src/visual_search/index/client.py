"""The connection to Milvus (a Milvus Lite file, a server or a cluster: the same client code), with
retries and backoff for a server that does not answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pymilvus import MilvusClient, MilvusException

from visual_search.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")
NOISY_LOGGERS = ("grpc._server", "pymilvus.client.iterator.query_iterator")


class QuietLibraryNoise(logging.Filter):
    """Drop two harmless library records: Milvus Lite's in-process gRPC server logs a traceback for RPCs
    it does not implement (pymilvus asks for AllocTimestamp when creating a collection, then carries on),
    and pymilvus's query iterator warns when a server (Milvus 2.3, Lite) has no MVCC timestamp for it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], NotImplementedError):
            return False
        return "failed to get mvccTs" not in record.getMessage()


def quiet_library_noise() -> None:
    """Install `QuietLibraryNoise` on the loggers that need it (once)."""
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietLibraryNoise) for f in logger.filters):
            logger.addFilter(QuietLibraryNoise())


class Connection:
    """A `MilvusClient` opened on first use; calls that fail because Milvus does not answer are retried
    `retries` times with doubling waits from `retry_backoff_s`, then end with a one-line UserError."""

    def __init__(
        self,
        uri: str,
        token: str | None = None,
        db_name: str | None = None,
        retries: int = 4,
        retry_backoff_s: float = 1.0,
    ) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise UserError(f"index.retries={retries!r}; expected a whole number >= 0")
        self.uri, self.token, self.db_name = str(uri), token, db_name
        self.retries, self.retry_backoff_s = retries, float(retry_backoff_s)
        self._client: MilvusClient | None = None

    @property
    def is_lite(self) -> bool:
        """Milvus Lite (a local file) rather than a server: pymilvus's own rule."""
        return self.uri.endswith(".db")

    @property
    def client(self) -> MilvusClient:
        """The client, connected on first use."""
        return self._client if self._client is not None else self.connect()._client

    def connect(self) -> Connection:
        """Open the connection now (retried while a server does not answer); returns self."""
        if self._client is None:
            quiet_library_noise()
            if self.is_lite:
                Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            self._client = self.retrying(
                f"connect to Milvus at index.uri={self.uri}",
                lambda: MilvusClient(uri=self.uri, token=self.token or "", db_name=self.db_name or ""),
            )
        return self

    def check_reachable(self) -> None:
        """Fail now (one line, after the retries) when a Milvus server does not answer, before any slow
        work; a Milvus Lite file needs no check. Leaves no connection open (loader workers fork cleanly)."""
        if not self.is_lite and self._client is None:
            self.connect().close()

    def close(self) -> None:
        """Close the connection (a Milvus Lite file can then be opened by another process)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def retrying(self, what: str, call: Callable[[], T]) -> T:
        """`call()`, retried while Milvus does not answer; then a one-line UserError saying `what` failed
        (a Milvus Lite file is not retried: nothing can come back up)."""
        delay = self.retry_backoff_s
        for attempt in range(self.retries + 1):
            try:
                return call()
            except MilvusException as error:
                if self.is_lite or attempt == self.retries:
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    hint = (
                        "" if self.is_lite else "; is the server up? (index.retries, index.retry_backoff_s)"
                    )
                    raise UserError(f"cannot {what}{tries}: {error.message}{hint}") from error
                log.warning("cannot %s (%s): retrying in %.2f s", what, error.message, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")
