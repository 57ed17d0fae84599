"""What the app's routes serve with: the request limits and batching settings, the engine, the
micro-batchers of image searches and detections and the metrics (`app.state.served`, a FastAPI dependency)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from PIL import Image

from visual_search.detect import Detections
from visual_search.serving.batching import MicroBatcher
from visual_search.serving.engine import Hits, ImageQuery, SearchEngine
from visual_search.serving.http.metrics import ServerMetrics
from visual_search.serving.uploads import Uploads


@dataclass(frozen=True)
class Settings:
    """Request limits and micro-batching (conf/serve.yaml: k, limits, batching)."""

    default_k: int = 10
    max_k: int = 100
    max_upload_bytes: int = 10 << 20
    max_pixels: int = 25_000_000
    max_aspect_ratio: float = 20.0
    max_decodes: int = 2  # uploads decoded at once: what bounds the memory a burst of large images takes
    max_batch: int = 16
    window_ms: float = 2.0
    text_weight: float = 0.3  # image + text queries: the text's share of the combined embedding
    uploads_kept: int = 32  # recent uploads held for GET /uploads/{digest} (shareable page URLs)
    max_objects: int = 8  # objects searched per POST /search/objects, largest first
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")  # Host headers served; "*": any


@dataclass(frozen=True)
class Served:
    """The engine, the settings, the micro-batchers of image searches and of detections, the metrics of
    one app, the permits of queries prepared at once (`settings.max_decodes`) and the recent uploads."""

    engine: SearchEngine
    settings: Settings
    batcher: MicroBatcher[ImageQuery, Hits]
    detections: MicroBatcher[Image.Image, Detections]
    metrics: ServerMetrics
    decodes: asyncio.Semaphore
    uploads: Uploads


def served(request: Request) -> Served:
    """The app's `Served` (set by `create_app`)."""
    return request.app.state.served


Context = Annotated[Served, Depends(served)]
