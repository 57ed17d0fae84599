"""The FastAPI app: image and text search, item images, categories, health, Prometheus metrics, and the
web page at /. Concurrent image searches are micro-batched, and so are their detections, on one model
thread; bad input gets a status code and one line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from PIL import Image

from visual_search.detect import Detections
from visual_search.serving.batching import MicroBatcher
from visual_search.serving.engine import Hits, ImageQuery, SearchEngine
from visual_search.serving.http.errors import RequestError
from visual_search.serving.http.hosts import AllowedHosts
from visual_search.serving.http.limits import BodySizeLimit
from visual_search.serving.http.metrics import RequestMetrics, ServerMetrics
from visual_search.serving.routes import browse, search
from visual_search.serving.state import Served, Settings
from visual_search.serving.uploads import Uploads

STATIC = Path(__file__).parent / "static"
__all__ = ["Settings", "create_app"]


async def request_error(_: Request, error: RequestError) -> JSONResponse:
    """A request error as its status code and `{"detail": "<one line>"}`."""
    return JSONResponse({"detail": str(error)}, status_code=error.status_code)


async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's own validation errors in the same one-line format, without echoing the input."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return JSONResponse({"detail": problems[:500]}, status_code=422)


def create_app(engine: SearchEngine, settings: Settings) -> FastAPI:
    """The app serving `engine`; the micro-batcher runs while the app does (lifespan)."""
    metrics = ServerMetrics()

    def run_batch(queries: list[ImageQuery]) -> list[Hits]:
        metrics.batch_size.observe(len(queries))
        return engine.search_images(queries)

    def detect_batch(images: list[Image.Image]) -> list[Detections]:
        metrics.detect_batch_size.observe(len(images))
        return engine.detect_images(images)

    model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")  # all model work
    window = settings.window_ms / 1000
    batcher = MicroBatcher(run_batch, settings.max_batch, window, model_thread)
    detections = MicroBatcher(detect_batch, settings.max_batch, window, model_thread)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        await detections.start()
        try:
            yield
        finally:
            await detections.stop()
            await batcher.stop()
            model_thread.shutdown(wait=True)
            engine.close()

    app = FastAPIOffline(  # FastAPI whose /docs and /redoc load their scripts from this server, not a CDN
        title="visual-search",
        summary="Find catalogue products that look like a photo (or a box drawn on it), or match a text.",
        lifespan=lifespan,
    )
    app.state.served = Served(
        engine,
        settings,
        batcher,
        detections,
        metrics,
        asyncio.Semaphore(settings.max_decodes),
        Uploads(settings.uploads_kept),
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(AllowedHosts, hosts=settings.allowed_hosts)  # outermost: checked first
    app.add_exception_handler(RequestError, request_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(search.router)
    app.include_router(browse.router)
    return app
