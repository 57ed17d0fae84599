"""Request and response bodies of the HTTP API (they are also its OpenAPI schema at /docs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from visual_search.serving.http.errors import Unprocessable


class SearchParams(BaseModel):
    """How to search with an image (multipart form fields, or JSON keys beside `image`)."""

    model_config = ConfigDict(extra="forbid")

    k: int | None = Field(None, description="results to return (default: the server's k)")
    box: str | list[float] | None = Field(
        None,
        description="crop box x0,y0,x1,y1: pixels, or fractions of the image when every value is in [0, 1]",
    )
    category: str | None = Field(None, description="search only this category (id or name, see /categories)")
    filter: Literal["none", "predicted"] = Field(
        "none", description="predicted: search only the category the model predicts for the query"
    )
    detector: bool | None = Field(
        None, description="crop to the detected object (default: on when the model has a detector)"
    )
    text: str | None = Field(
        None,
        max_length=1000,
        description='refine the image with text, e.g. "in red" (models with a text tower)',
    )
    text_weight: float | None = Field(
        None, ge=0, le=1, description="the text's share of the combined query (default: the server's)"
    )


class SearchJSON(SearchParams):
    """`POST /search` as JSON: the image base64-encoded (a data: URL works too)."""

    image: str = Field(description="the image file's bytes, base64-encoded")


class TextQuery(BaseModel):
    """`POST /search/text`: a text query (models with a text tower, e.g. CLIP)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=1000)
    k: int | None = None
    category: str | None = None


class Item(BaseModel):
    rank: int
    id: str
    title: str
    category: str
    category_id: str
    score: float = Field(description="similarity, higher is better (cosine for unit vectors)")
    distance: float = Field(description="the index's raw distance (squared L2, or IP/COSINE similarity)")
    image_url: str


class Timings(BaseModel):
    """Milliseconds per stage; embed and search are those of the micro-batch the query ran in."""

    decode_ms: float = 0.0
    detect_ms: float = 0.0
    embed_ms: float = 0.0
    search_ms: float = 0.0
    queue_ms: float = 0.0
    total_ms: float = 0.0


class SearchResponse(BaseModel):
    items: list[Item]
    k: int
    category: str | None = Field(None, description="the category searched within (given or predicted)")
    category_name: str | None = None
    predicted: bool = Field(False, description="whether the category was predicted")
    box: list[float] | None = Field(None, description="the region embedded, in pixels (None: whole image)")
    region: Literal["user", "detected", "whole"] | None = Field(
        None, description="where the region came from: the request's box, the detector, or the whole image"
    )
    image_size: list[int] | None = None
    detector: str | None = None
    batch_size: int = 1
    upload: str | None = Field(None, description="the uploaded image's digest: GET /uploads/{upload}")
    text: str | None = Field(None, description="the text the image query was refined with")
    timings: Timings


class DetectedObject(BaseModel):
    box: list[float] = Field(description="x0, y0, x1, y1 in pixels")
    score: float
    label: str | None = Field(None, description="the detector's class name, when it names classes")


class DetectResponse(BaseModel):
    """`POST /detect`: the objects in the image, largest first."""

    objects: list[DetectedObject]
    image_size: list[int]
    detector: str | None = Field(None, description="what found them (None: no detector)")
    upload: str | None = None
    timings: Timings


class ObjectResults(DetectedObject):
    items: list[Item]
    category: str | None = None
    category_name: str | None = None


class ObjectsResponse(BaseModel):
    """`POST /search/objects`: every detected object (largest first) searched in one micro-batch; the
    whole image when nothing is detected."""

    objects: list[ObjectResults]
    image_size: list[int]
    detector: str | None = None
    k: int
    upload: str | None = None
    timings: Timings


def validated(model: type[BaseModel], data: object) -> BaseModel:
    """`model` from `data`; Unprocessable with every problem on one line otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}" for err in e.errors()
        )
        raise Unprocessable(problems) from e


MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {"type": "string", "format": "binary", "description": "the image file"},
        **{
            name: {"type": "string", "description": field.description or ""}
            for name, field in SearchParams.model_fields.items()
        },
    },
}
