"""Uploaded query images: bounded decoding (pixel limit, Pillow's decompression-bomb guard) and the crop
box (pixels or fractions of the image) that narrows a query to one object, as in Google Lens."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from visual_search.data.images import to_rgb
from visual_search.serving.http.errors import BadInput, TooLarge, Unprocessable


def decode_image(data: bytes, max_pixels: int, max_aspect: float = 20.0) -> Image.Image:
    """The uploaded bytes as a fully decoded, EXIF-rotated RGB image.

    Raises BadInput (not an image, truncated or corrupt), TooLarge (more than `max_pixels` pixels) or
    Unprocessable (one side more than `max_aspect` times the other), both checked from the header before
    any pixel is decoded; Pillow's decompression-bomb guard stays on behind them."""
    if not data:
        raise BadInput("the image is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise TooLarge(
                    f"image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}"
                )
            if max(width, height) > max_aspect * max(1, min(width, height)):
                raise Unprocessable(
                    f"image is {width}x{height}: one side is more than {max_aspect:g} times the other "
                    "(limits.max_aspect_ratio)"
                )
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return to_rgb(image)
    except UnidentifiedImageError as e:
        raise BadInput("not an image (Pillow cannot identify it)") from e
    except Image.DecompressionBombError as e:
        raise TooLarge(f"image rejected by Pillow's decompression-bomb guard: {one_line(e)}") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise BadInput(f"cannot decode the image ({one_line(e)})") from e


def one_line(error: Exception) -> str:
    return " ".join(str(error).split())


@dataclass(frozen=True)
class Box:
    """A rectangle in image pixels: left, top, right, bottom (right and bottom exclusive)."""

    x0: float
    y0: float
    x1: float
    y1: float

    def as_list(self) -> list[float]:
        return [self.x0, self.y0, self.x1, self.y1]


def parse_box_values(value: str | Sequence[float]) -> list[float]:
    """Four finite numbers from "x0,y0,x1,y1", "[x0, y0, x1, y1]" or a list; Unprocessable otherwise."""
    if isinstance(value, str):
        text = value.strip()
        try:
            values = json.loads(text) if text.startswith("[") else text.split(",")
        except json.JSONDecodeError:
            values = None
    else:
        values = value
    try:
        numbers = [float(v) for v in values]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        numbers = []
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise Unprocessable(f"box must be four numbers x0,y0,x1,y1; got {value!r}")
    return numbers


def resolve_box(value: str | Sequence[float], width: int, height: int) -> Box:
    """The box on a `width` x `height` image: fractions of the image when every value lies in [0, 1],
    pixels otherwise. Unprocessable when it is empty, inverted or reaches outside the image."""
    x0, y0, x1, y1 = parse_box_values(value)
    if all(0 <= v <= 1 for v in (x0, y0, x1, y1)):
        x0, x1, y0, y1 = x0 * width, x1 * width, y0 * height, y1 * height
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise Unprocessable(
            f"box ({x0:g},{y0:g},{x1:g},{y1:g}) must satisfy 0 <= x0 < x1 <= {width} and "
            f"0 <= y0 < y1 <= {height} (pixels), or be fractions of the image in [0, 1]"
        )
    return Box(x0, y0, x1, y1)
