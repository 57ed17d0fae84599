"""`POST /search` (an image, optionally a box, a category or the predicted one, text refining it),
`POST /detect` (the objects in an image), `POST /search/objects` (each of them searched, in one batch) and
`POST /search/text`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from fastapi import APIRouter, Request
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from torch import Tensor

from visual_search.detect import Crop, Detections
from visual_search.pipeline import Pipeline
from visual_search.serving.engine import Hits, ImageQuery
from visual_search.serving.http.bodies import decode_base64, json_body
from visual_search.serving.http.errors import Unprocessable, UnsupportedMediaType
from visual_search.serving.http.imaging import decode_image, resolve_box
from visual_search.serving.http.schemas import (
    MULTIPART_SCHEMA,
    DetectedObject,
    DetectResponse,
    Item,
    ObjectResults,
    ObjectsResponse,
    SearchJSON,
    SearchParams,
    SearchResponse,
    TextQuery,
    Timings,
    validated,
)
from visual_search.serving.objects import objects
from visual_search.serving.state import Context, Served

router = APIRouter()


@dataclass(frozen=True)
class Prepared:
    """A decoded query image, cropped and preprocessed, with the time each step took."""

    query: ImageQuery
    box: list[float] | None  # the region embedded (None: the whole image)
    source: str  # user | detected | whole
    image_size: list[int]
    seconds: dict[str, float]


def check_k(ctx: Served, k: int | None) -> int:
    k = ctx.settings.default_k if k is None else k
    if not 1 <= k <= ctx.settings.max_k:
        raise Unprocessable(f"k={k}: must be between 1 and {ctx.settings.max_k}")
    return k


def category_of(ctx: Served, value: str | None) -> str | None:
    return ctx.engine.gallery.category_id(value) if value else None


def items_of(ctx: Served, hits: Hits) -> list[Item]:
    rows = zip(hits.rows, hits.distances, hits.scores, strict=True)
    return [Item(**ctx.engine.gallery.hit(row, rank, d, s)) for rank, (row, d, s) in enumerate(rows, 1)]


def decode(ctx: Served, data: bytes, params: SearchParams) -> tuple[Image.Image, list[float] | None]:
    """The uploaded image and the user's box in its pixels (None: none drawn)."""
    image = decode_image(data, ctx.settings.max_pixels, ctx.settings.max_aspect_ratio)
    return image, resolve_box(params.box, *image.size).as_list() if params.box is not None else None


def cut(
    pipeline: Pipeline,
    image: Image.Image,
    user_box: list[float] | None,
    detect: bool,
    found: Detections | None,
) -> tuple[Crop, Tensor, float]:
    """The region to embed, its encoder input, and the seconds the preprocessing took."""
    region = pipeline.crop(image, user_box, detect, found)
    start = time.perf_counter()
    return region, pipeline.preprocess(region.image), time.perf_counter() - start


async def prepare(ctx: Served, data: bytes, params: SearchParams, k: int, detect: bool) -> Prepared:
    """Decode, crop (the user's box, or the detected object: detections micro-batched on the model
    thread) and preprocess one query image, at most `settings.max_decodes` at a time (the decoded pixels
    are what a large image costs)."""
    async with ctx.decodes:
        start = time.perf_counter()
        image, user_box = await run_in_threadpool(decode, ctx, data, params)
        decoded = time.perf_counter()
        found = None
        if detect and user_box is None:
            found = (await ctx.detections.submit(image)).value
        pipeline = ctx.engine.pipeline
        region, pixels, preprocess_s = await run_in_threadpool(cut, pipeline, image, user_box, detect, found)
        done = time.perf_counter()
    seconds = {"decode": decoded - start, "detect": done - decoded - preprocess_s, "preprocess": preprocess_s}
    box = None if region.source == "whole" else [float(v) for v in region.box]
    return Prepared(query_of(ctx, pixels, k, params), box, region.source, list(image.size), seconds)


def query_of(ctx: Served, pixels: Tensor, k: int, params: SearchParams) -> ImageQuery:
    """How to search with one prepared image: category, predicted category, text refinement."""
    if params.category and params.filter == "predicted":
        raise Unprocessable("give category=... or filter=predicted, not both")
    text = params.text.strip() if params.text else None
    if text:
        ctx.engine.check_text()
    weight = ctx.settings.text_weight if params.text_weight is None else params.text_weight
    category = category_of(ctx, params.category)
    return ImageQuery(pixels, k, category, params.filter == "predicted", text, weight)


async def read_search(request: Request) -> tuple[bytes, SearchParams]:
    """The image bytes and search parameters of a multipart upload or a JSON body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=len(SearchParams.model_fields))
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise Unprocessable("multipart field 'image' (a file) is missing")
        fields = {key: value for key, value in form.items() if key != "image" and value != ""}
        return await upload.read(), validated(SearchParams, fields)
    if kind == "application/json":
        params = validated(SearchJSON, await json_body(request))
        return decode_base64(params.image), params
    raise UnsupportedMediaType("send multipart/form-data with an 'image' file, or JSON with a base64 'image'")


IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": MULTIPART_SCHEMA},
            "application/json": {"schema": SearchJSON.model_json_schema()},
        },
    }
}


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Search with an image (multipart upload or base64 JSON), optionally refined with text",
    openapi_extra=IMAGE_BODY,
)
async def search(request: Request, ctx: Context) -> SearchResponse:
    start = time.perf_counter()
    data, params = await read_search(request)
    k = check_k(ctx, params.k)
    has_detector = ctx.engine.detector is not None
    detect = has_detector if params.detector is None else params.detector
    if detect and not has_detector:
        raise Unprocessable("no detector configured: serve a run evaluated with one (detector=...)")
    prepared = await prepare(ctx, data, params, k, detect)
    batched = await ctx.batcher.submit(prepared.query)
    hits = batched.value
    seconds = prepared.seconds | {"embed": hits.embed_s, "search": hits.search_s, "queue": batched.queue_s}
    ctx.metrics.observe_stages(seconds)
    timings = Timings(
        decode_ms=1000 * seconds["decode"],
        detect_ms=1000 * seconds["detect"],
        embed_ms=1000 * (seconds["preprocess"] + seconds["embed"]),
        search_ms=1000 * seconds["search"],
        queue_ms=1000 * seconds["queue"],
        total_ms=1000 * (time.perf_counter() - start),
    )
    return SearchResponse(
        items=items_of(ctx, hits),
        k=k,
        category=hits.category,
        category_name=ctx.engine.gallery.category_name(hits.category) if hits.category else None,
        predicted=prepared.query.predict_category,
        box=prepared.box,
        region=prepared.source,
        image_size=prepared.image_size,
        detector=ctx.engine.detector if detect and params.box is None else None,
        batch_size=batched.batch_size,
        upload=ctx.uploads.put(data),
        text=prepared.query.text,
        timings=timings,
    )


async def detected_objects(ctx: Served, data: bytes) -> tuple[Image.Image, list[dict], dict[str, float]]:
    """The decoded upload, its objects (largest first; detection micro-batched) and the seconds taken."""
    async with ctx.decodes:
        start = time.perf_counter()
        image = await run_in_threadpool(
            decode_image, data, ctx.settings.max_pixels, ctx.settings.max_aspect_ratio
        )
        decoded = time.perf_counter()
        found = (await ctx.detections.submit(image)).value if ctx.engine.info["objects"] else Detections()
    seconds = {"decode": decoded - start, "detect": time.perf_counter() - decoded}
    return image, objects(found, *image.size, ctx.engine.objects), seconds


@router.post(
    "/detect",
    response_model=DetectResponse,
    summary="The objects in an image, largest first (the served run's detector, or the page's)",
    openapi_extra=IMAGE_BODY,
)
async def detect(request: Request, ctx: Context) -> DetectResponse:
    start = time.perf_counter()
    data, _ = await read_search(request)
    image, found, seconds = await detected_objects(ctx, data)
    ctx.metrics.observe_stages(seconds)
    timings = Timings(
        decode_ms=1000 * seconds["decode"],
        detect_ms=1000 * seconds["detect"],
        total_ms=1000 * (time.perf_counter() - start),
    )
    return DetectResponse(
        objects=[DetectedObject(**o) for o in found],
        image_size=list(image.size),
        detector=ctx.engine.info["objects"],
        upload=ctx.uploads.put(data),
        timings=timings,
    )


@router.post(
    "/search/objects",
    response_model=ObjectsResponse,
    summary="Detect every object in an image and search each, in one micro-batch",
    openapi_extra=IMAGE_BODY,
)
async def search_objects(request: Request, ctx: Context) -> ObjectsResponse:
    start = time.perf_counter()
    data, params = await read_search(request)
    k = check_k(ctx, params.k)
    image, found, seconds = await detected_objects(ctx, data)
    found = found[: ctx.settings.max_objects] or [
        {"box": [0.0, 0.0, float(image.width), float(image.height)], "score": 1.0, "label": None}
    ]
    pipeline = ctx.engine.pipeline
    boxes = [o["box"] for o in found]
    cuts = await run_in_threadpool(lambda: [cut(pipeline, image, box, False, None) for box in boxes])
    queries = [query_of(ctx, pixels, k, params) for _, pixels, _ in cuts]
    batched = await asyncio.gather(*(ctx.batcher.submit(q) for q in queries))  # one micro-batch
    objects_found = []
    for found_object, result in zip(found, batched, strict=True):
        hits = result.value
        name = ctx.engine.gallery.category_name(hits.category) if hits.category else None
        objects_found.append(
            ObjectResults(
                **found_object, items=items_of(ctx, hits), category=hits.category, category_name=name
            )
        )
    hits = batched[0].value
    timings = Timings(
        decode_ms=1000 * seconds["decode"],
        detect_ms=1000 * seconds["detect"],
        embed_ms=1000 * (sum(c[2] for c in cuts) + hits.embed_s),
        search_ms=1000 * hits.search_s,
        queue_ms=1000 * max(b.queue_s for b in batched),
        total_ms=1000 * (time.perf_counter() - start),
    )
    return ObjectsResponse(
        objects=objects_found,
        image_size=list(image.size),
        detector=ctx.engine.info["objects"],
        k=k,
        upload=ctx.uploads.put(data),
        timings=timings,
    )


@router.post(
    "/search/text",
    response_model=SearchResponse,
    summary="Search with text (CLIP-like models)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TextQuery.model_json_schema()}},
        }
    },
)
async def search_text(request: Request, ctx: Context) -> SearchResponse:
    start = time.perf_counter()
    query = validated(TextQuery, await json_body(request))
    k = check_k(ctx, query.k)
    category = category_of(ctx, query.category)
    hits = await ctx.batcher.run_on_model_thread(ctx.engine.search_text, query.text, k, category)
    ctx.metrics.observe_stages({"embed": hits.embed_s, "search": hits.search_s})
    return SearchResponse(
        items=items_of(ctx, hits),
        k=k,
        category=hits.category,
        category_name=ctx.engine.gallery.category_name(hits.category) if hits.category else None,
        timings=Timings(
            embed_ms=1000 * hits.embed_s,
            search_ms=1000 * hits.search_s,
            total_ms=1000 * (time.perf_counter() - start),
        ),
    )
