"""The FastAPI app: image and text search, item images, categories, health, Prometheus metrics, and the
web page at /. Concurrent image searches are micro-batched; bad input gets a status code and one line."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from visual_search.serving.batching import MicroBatcher
from visual_search.serving.engine import Hits, ImageQuery, SearchEngine
from visual_search.serving.errors import BadInput, RequestError, Unprocessable, UnsupportedMediaType
from visual_search.serving.imaging import decode_image, resolve_box
from visual_search.serving.limits import BodySizeLimit
from visual_search.serving.metrics import RequestMetrics, ServerMetrics
from visual_search.serving.regions import Region
from visual_search.serving.schemas import (
    MULTIPART_SCHEMA,
    Item,
    SearchJSON,
    SearchParams,
    SearchResponse,
    TextQuery,
    Timings,
    validated,
)

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Settings:
    """Request limits and micro-batching (conf/serve.yaml: k, limits, batching)."""

    default_k: int = 10
    max_k: int = 100
    max_upload_bytes: int = 10 << 20
    max_pixels: int = 25_000_000
    max_batch: int = 16
    window_ms: float = 2.0


@dataclass(frozen=True)
class Prepared:
    """A decoded query image, cropped and preprocessed, with the time each step took."""

    query: ImageQuery
    region: Region
    image_size: list[int]
    seconds: dict[str, float]


def create_app(engine: SearchEngine, settings: Settings) -> FastAPI:
    """The app serving `engine`; the micro-batcher runs while the app does (lifespan)."""
    metrics = ServerMetrics()

    def run_batch(queries: list[ImageQuery]) -> list[Hits]:
        metrics.batch_size.observe(len(queries))
        return engine.search_images(queries)

    batcher = MicroBatcher(run_batch, settings.max_batch, settings.window_ms / 1000)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            engine.close()

    app = FastAPI(
        title="visual-search",
        summary="Find catalogue products that look like a photo (or a box drawn on it), or match a text.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RequestError)
    async def request_error(_: Request, error: RequestError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=error.status_code)

    def check_k(k: int | None) -> int:
        k = settings.default_k if k is None else k
        if not 1 <= k <= settings.max_k:
            raise Unprocessable(f"k={k}: must be between 1 and {settings.max_k}")
        return k

    def category_of(value: str | None) -> str | None:
        return engine.gallery.category_id(value) if value else None

    def items_of(hits: Hits) -> list[Item]:
        return [
            Item(**engine.gallery.hit(row, rank, distance, score))
            for rank, (row, distance, score) in enumerate(
                zip(hits.rows, hits.distances, hits.scores, strict=True), 1
            )
        ]

    def prepare(data: bytes, params: SearchParams, k: int, detect: bool) -> Prepared:
        start = time.perf_counter()
        image = decode_image(data, settings.max_pixels)
        decoded = time.perf_counter()
        user_box = resolve_box(params.box, *image.size) if params.box is not None else None
        region = engine.cropper(image, user_box, detect)
        cropped = time.perf_counter()
        pixels = engine.preprocess(region.image)
        seconds = {
            "decode": decoded - start,
            "detect": cropped - decoded,
            "preprocess": time.perf_counter() - cropped,
        }
        query = ImageQuery(pixels, k, category_of(params.category), params.filter == "predicted")
        return Prepared(query, region, list(image.size), seconds)

    async def read_search(request: Request) -> tuple[bytes, SearchParams]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=len(SearchParams.model_fields))
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                raise Unprocessable("multipart field 'image' (a file) is missing")
            fields = {key: value for key, value in form.items() if key != "image" and value != ""}
            return await upload.read(), validated(SearchParams, fields)
        if kind == "application/json":
            try:
                body = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise BadInput(f"the body is not valid JSON ({e})") from e
            params = validated(SearchJSON, body)
            encoded = params.image.split(",", 1)[1] if params.image.startswith("data:") else params.image
            try:
                return base64.b64decode(encoded, validate=True), params
            except (binascii.Error, ValueError) as e:
                raise BadInput(f"'image' is not valid base64 ({e})") from e
        raise UnsupportedMediaType(
            "send multipart/form-data with an 'image' file, or JSON with a base64 'image'"
        )

    @app.post(
        "/search",
        response_model=SearchResponse,
        summary="Search with an image (multipart upload or base64 JSON)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {"schema": MULTIPART_SCHEMA},
                    "application/json": {"schema": SearchJSON.model_json_schema()},
                },
            }
        },
    )
    async def search(request: Request) -> SearchResponse:
        start = time.perf_counter()
        data, params = await read_search(request)
        k = check_k(params.k)
        if params.category and params.filter == "predicted":
            raise Unprocessable("give category=... or filter=predicted, not both")
        detect = engine.cropper.detector is not None if params.detector is None else params.detector
        if detect and engine.cropper.detector is None:
            raise Unprocessable("no detector configured: serve a run evaluated with one (detector=...)")
        prepared = await run_in_threadpool(prepare, data, params, k, detect)
        batched = await batcher.submit(prepared.query)
        hits = batched.value
        seconds = prepared.seconds | {
            "embed": hits.embed_s,
            "search": hits.search_s,
            "queue": batched.queue_s,
        }
        metrics.observe_stages(seconds)
        timings = Timings(
            decode_ms=1000 * seconds["decode"],
            detect_ms=1000 * seconds["detect"],
            embed_ms=1000 * (seconds["preprocess"] + seconds["embed"]),
            search_ms=1000 * seconds["search"],
            queue_ms=1000 * seconds["queue"],
            total_ms=1000 * (time.perf_counter() - start),
        )
        return SearchResponse(
            items=items_of(hits),
            k=k,
            category=hits.category,
            category_name=engine.gallery.category_name(hits.category) if hits.category else None,
            predicted=prepared.query.predict_category,
            box=prepared.region.box,
            region=prepared.region.source,
            image_size=prepared.image_size,
            detector=engine.cropper.name if detect and params.box is None else None,
            batch_size=batched.batch_size,
            timings=timings,
        )

    @app.post("/search/text", response_model=SearchResponse, summary="Search with text (CLIP-like models)")
    async def search_text(query: TextQuery) -> SearchResponse:
        start = time.perf_counter()
        k = check_k(query.k)
        hits = await batcher.run_on_model_thread(
            engine.search_text, query.text, k, category_of(query.category)
        )
        metrics.observe_stages({"embed": hits.embed_s, "search": hits.search_s})
        return SearchResponse(
            items=items_of(hits),
            k=k,
            category=hits.category,
            category_name=engine.gallery.category_name(hits.category) if hits.category else None,
            timings=Timings(
                embed_ms=1000 * hits.embed_s,
                search_ms=1000 * hits.search_s,
                total_ms=1000 * (time.perf_counter() - start),
            ),
        )

    @app.get("/items/{item_id:path}/image", summary="An item's image", response_class=FileResponse)
    async def item_image(item_id: str) -> FileResponse:
        return FileResponse(engine.gallery.image_path(item_id), headers={"Cache-Control": "max-age=3600"})

    @app.get("/categories", summary="The categories a search can be restricted to")
    async def categories() -> dict[str, list[dict[str, object]]]:
        return {"categories": engine.gallery.category_dicts()}

    @app.get("/health", summary="Model, index and item count")
    async def health() -> dict[str, object]:
        return {
            "status": "ok",
            **engine.info,
            "items": len(engine.gallery),
            "text_search": engine.has_text_tower,
            "batching": {"max_batch": settings.max_batch, "window_ms": settings.window_ms},
            "limits": {"max_k": settings.max_k, "default_k": settings.default_k},
        }

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
