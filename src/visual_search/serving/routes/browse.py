"""Everything but searching with a query: item images and more like them, recent uploads, the categories,
health, Prometheus metrics and the web page."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from visual_search.serving.http.schemas import SearchResponse, Timings
from visual_search.serving.routes.search import category_of, check_k, items_of
from visual_search.serving.state import Context

router = APIRouter()
STATIC = Path(__file__).parents[1] / "static"


@router.get("/items/{item_id:path}/image", summary="An item's image", response_class=FileResponse)
async def item_image(item_id: str, ctx: Context) -> FileResponse:
    path = ctx.engine.gallery.image_path(item_id)
    return FileResponse(path, headers={"Cache-Control": "max-age=3600"})


@router.get(
    "/items/{item_id:path}/similar",
    response_model=SearchResponse,
    summary="More like this: the items nearest an item's indexed vector (nothing embedded)",
)
async def similar(
    item_id: str, ctx: Context, k: int | None = None, category: str | None = None
) -> SearchResponse:
    start = time.perf_counter()
    k = check_k(ctx, k)
    hits = await ctx.batcher.run_on_model_thread(
        ctx.engine.search_like, item_id, k, category_of(ctx, category)
    )
    return SearchResponse(
        items=items_of(ctx, hits),
        k=k,
        category=hits.category,
        category_name=ctx.engine.gallery.category_name(hits.category) if hits.category else None,
        timings=Timings(search_ms=1000 * hits.search_s, total_ms=1000 * (time.perf_counter() - start)),
    )


@router.get("/uploads/{key}", summary="A query image uploaded lately (by the digest a search returned)")
async def upload(key: str, ctx: Context) -> Response:
    data, media_type = ctx.uploads.get(key)
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/categories", summary="The categories a search can be restricted to")
async def categories(ctx: Context) -> dict[str, list[dict[str, object]]]:
    return {"categories": ctx.engine.gallery.category_dicts()}


@router.get("/health", summary="Model, index and item count")
async def health(ctx: Context) -> dict[str, object]:
    settings = ctx.settings
    return {
        "status": "ok",
        **ctx.engine.info,
        "items": len(ctx.engine.gallery),
        "text_search": ctx.engine.has_text_tower,
        "text_weight": settings.text_weight,
        "batching": {"max_batch": settings.max_batch, "window_ms": settings.window_ms},
        "limits": {"max_k": settings.max_k, "default_k": settings.default_k},
    }


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus(ctx: Context) -> Response:
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")
