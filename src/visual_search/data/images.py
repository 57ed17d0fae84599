"""Safe image decoding (every mode Pillow reads becomes RGB; failures carry a one-line reason) and cutting
regions out of images."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

BACKGROUND = (255, 255, 255)


class ImageLoadError(Exception):
    """An image that cannot be used; the message is '<path>: <reason>'."""


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparency composited onto white (palette, LA/RGBA, CMYK, 16-bit grey handled)."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    return image if image.mode == "RGB" else image.convert("RGB")  # no copy of what is RGB already


def load_rgb(path: str | Path) -> Image.Image:
    """Decode an image fully (so truncation is caught here, not in a worker later), EXIF-rotated, as RGB."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                ImageOps.exif_transpose(image, in_place=True)
                return to_rgb(image)
    except FileNotFoundError as e:
        raise ImageLoadError(f"{path}: file not found") from e
    except UnidentifiedImageError as e:
        raise ImageLoadError(f"{path}: not an image") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageLoadError(f"{path}: too many pixels ({e})") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f"{path}: cannot decode ({e})") from e


def pad_to_square(image: Image.Image) -> Image.Image:
    """`image` centred on a square canvas of its longer side, filled with the median colour of its border,
    so that an encoder's centre crop keeps all of a tall or wide object."""
    width, height = image.size
    if width == height:
        return image
    pixels = np.asarray(image.convert("RGB"))
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    fill = tuple(int(v) for v in np.median(border, axis=0))
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image.convert("RGB"), ((side - width) // 2, (side - height) // 2))
    return canvas


def cut(image: Image.Image, box: tuple[int, int, int, int], square: bool = False) -> Image.Image:
    """The pixels of `box` (x0, y0, x1, y1), padded to a square when `square`."""
    region = image.crop(box)
    return pad_to_square(region) if square else region


class SkippedImages:
    """Collects images skipped while iterating a loader, and reports them once (count + first few)."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def add(self, reasons: Iterable[str]) -> None:
        self.reasons.extend(reasons)

    def __len__(self) -> int:
        return len(self.reasons)

    def report(self, what: str = "images") -> None:
        """Warn with the count and the first reasons; silent when nothing was skipped."""
        if self.reasons:
            first = "; ".join(self.reasons[:5])
            log.warning(
                "skipped %d unreadable %s: %s%s", len(self), what, first, " ..." if len(self) > 5 else ""
            )
