"""`serve.py` in a child process, as a user starts it (for the tests and the serving benchmark): on a free
loopback port, waited for until healthy, stopped with SIGTERM (uvicorn then shuts down gracefully)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_process(log_path: Path, *overrides: str, timeout_s: float = 300) -> Iterator[str]:
    """Run `python serve.py <overrides>` (output to `log_path`) until it answers /health; yields its base
    URL, then stops it with SIGTERM. RuntimeError (with the log's tail) when it exits early, never gets
    healthy, or does not shut down cleanly (a traceback, or no graceful shutdown)."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "serve.py"), f"server.port={port}", *overrides],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(base):
            if process.poll() is not None or time.monotonic() > deadline:
                state = "exited" if process.poll() is not None else f"not healthy after {timeout_s:.0f} s"
                raise RuntimeError(f"serve.py {state}:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)
    output = log_path.read_text()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the status may be -SIGTERM.
    clean = process.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in output
    if not clean or "Traceback" in output:
        raise RuntimeError(f"serve.py did not stop cleanly (status {process.returncode}):\n{output[-3000:]}")


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
