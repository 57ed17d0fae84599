"""`serve.py`: load the served run (or checkpoint) once, then serve it over HTTP with uvicorn."""

from __future__ import annotations

import logging
import os
import socket
import warnings

import uvicorn
from omegaconf import DictConfig
from PIL import Image

from visual_search.errors import UserError
from visual_search.serving.app import Settings, create_app
from visual_search.serving.engine import SearchEngine
from visual_search.serving.http.timeouts import deadline_protocol
from visual_search.serving.source import choose

log = logging.getLogger(__name__)


def settings(cfg: DictConfig) -> Settings:
    """Request limits and batching from the serve config."""
    return Settings(
        default_k=cfg.k,
        max_k=cfg.limits.max_k,
        max_upload_bytes=int(cfg.limits.max_upload_mb * (1 << 20)),
        max_pixels=cfg.limits.max_pixels,
        max_aspect_ratio=cfg.limits.max_aspect_ratio,
        max_decodes=cfg.limits.max_concurrent_decodes,
        max_batch=cfg.batching.max_batch,
        window_ms=cfg.batching.window_ms,
        text_weight=cfg.text_weight,
        uploads_kept=cfg.limits.uploads_kept,
        max_objects=cfg.limits.max_objects,
        allowed_hosts=tuple(cfg.server.allowed_hosts or (cfg.server.host, "localhost", "127.0.0.1", "::1")),
    )


def check_address(host: str, port: int) -> None:
    """UserError now, before the model loads, when the server could not listen on `host:port`."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise UserError(f"cannot listen on {host}:{port}: {reason}; choose server.port=...") from e


def serve(cfg: DictConfig) -> None:
    """Serve the best leaderboard run (or `run=` / `checkpoint=`) until interrupted."""
    check_address(cfg.server.host, cfg.server.port)
    served = choose(cfg)
    log.info("serving %s (%s)", served.cfg.approach, served.source)
    limits = settings(cfg)
    # Pillow's bomb guard refuses images over twice its limit; between once and twice it only warns, and
    # our own check (413 above limits.max_pixels) answers those.
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    engine = SearchEngine.load(served, cfg.images_root, cfg.page)
    app = create_app(engine, limits)
    log.info("open http://%s:%d/ (API docs at /docs)", cfg.server.host, cfg.server.port)
    uvicorn.run(
        app,
        host=cfg.server.host,
        port=cfg.server.port,
        log_config=None,  # uvicorn's records go to the run's log like everything else
        access_log=cfg.server.access_log,
        http=deadline_protocol(cfg.server.header_timeout_s, cfg.server.body_timeout_s),
    )
