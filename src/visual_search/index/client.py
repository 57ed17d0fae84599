"""The connection to Milvus (a Milvus Lite file, a server or a cluster: the same client code), with
retries and backoff for a server that does not answer."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pymilvus import MilvusClient, MilvusException

from visual_search.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")
NOISY_LOGGERS = ("grpc._server", "pymilvus.client.iterator.query_iterator")
LITE_LOCK = "LOCK"  # Milvus Lite 3 keeps a `.db` as a folder and flocks this file in it while it is open


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


def lock_holders(path: Path) -> list[int]:
    """Process ids holding a flock on `path` (from /proc/locks; empty where it cannot tell)."""
    try:
        inode = os.stat(path).st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    holders = []
    for line in lines:
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            holders.append(int(fields[4]))
    return holders


def describe_process(pid: int) -> str:
    """`pid 123: python serve.py ...` (the command line, shortened), or just the pid."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return f"pid {pid}"
    return f"pid {pid}: {' '.join(command.split())[:120]}"


def check_lite_file_free(uri: str) -> None:
    """UserError (one line: who holds it and the ways out) when another process has the Milvus Lite file
    `uri` open: Milvus Lite opens a file in one process at a time. This process's own hold is fine."""
    lock = Path(uri) / LITE_LOCK
    if not lock.is_file():
        return
    with open(lock, "a") as probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            others = [pid for pid in lock_holders(lock) if pid != os.getpid()]
            if not others and lock_holders(lock):
                return  # held by this process (an earlier connection to the same file)
            holder = ", ".join(describe_process(pid) for pid in others) or "another process"
            raise UserError(
                f"the Milvus Lite file index.uri={uri} is open in {holder}; Milvus Lite opens a file in one "
                "process at a time: stop that process, give this run another file (index.uri=...), or "
                "share one store through a server (index=milvus_server: Milvus, or "
                "`python -m milvus_lite server`)"
            ) from None
        fcntl.flock(probe, fcntl.LOCK_UN)


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
        """Fail now (one line) when a Milvus server does not answer (after the retries) or a Milvus Lite
        file is open in another process, before any slow work. Leaves no connection open (loader workers
        fork cleanly)."""
        if self.is_lite:
            check_lite_file_free(self.uri)
        elif self._client is None:
            self.connect().close()

    def close(self) -> None:
        """Close the connection, and for a Milvus Lite file the embedded server that pymilvus started for
        it in this process (`MilvusClient.close` leaves it running, holding the file's lock, and its idle
        gRPC channel is cut by the server's ping limit within minutes: a later connection in the same
        process, such as compare.py's next job, then fails). Closing the server also waits for what Milvus
        Lite builds in the background after a flush. The file can then be opened by another process."""
        if self._client is not None:
            self._client.close()
            self._client = None
            if self.is_lite:
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(self.uri)

    def reopen(self) -> None:
        """Close and connect again: a Milvus Lite file then reads back exactly as a later process reads it
        (its background index builds done: searches right after a flush could otherwise find a segment
        still unindexed, and search it exactly)."""
        self.close()
        self.connect()

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
