"""Qualitative retrieval figure: one row per query, the query then its top K results framed by relevance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from visual_search.data.images import BACKGROUND, ImageLoadError, SkippedImages, load_rgb

BORDER = 4  # coloured frame around each tile
CAPTION = 14  # one line of text under each framed tile
GAP = 6  # white space around each cell (half on each side)
QUERY_COLOUR = (40, 90, 200)
RELEVANT_COLOUR = (30, 160, 60)
IRRELEVANT_COLOUR = (210, 40, 40)
PLACEHOLDER_COLOUR = (190, 190, 190)
TEXT_COLOUR = (0, 0, 0)


def cell_size(tile: int) -> tuple[int, int]:
    """Width and height of one grid cell: framed tile, caption line and the gap around them."""
    return tile + 2 * BORDER + GAP, tile + 2 * BORDER + CAPTION + GAP


def _letterbox(path: str | Path, tile: int, skipped: SkippedImages) -> Image.Image:
    """The image scaled to fit a square tile (aspect kept) on white; grey placeholder if unreadable."""
    try:
        image = ImageOps.contain(load_rgb(path), (tile, tile))
    except ImageLoadError as e:
        skipped.add([str(e)])
        return Image.new("RGB", (tile, tile), PLACEHOLDER_COLOUR)
    canvas = Image.new("RGB", (tile, tile), BACKGROUND)
    canvas.paste(image, ((tile - image.width) // 2, (tile - image.height) // 2))
    return canvas


def _fit_text(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> str:
    """The text, cut and ended with '...' where it is wider than `width` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _draw_cell(
    grid: Image.Image, origin: tuple[int, int], image: Image.Image, colour: tuple[int, int, int], caption: str
) -> None:
    """Paste a framed tile at the cell's origin with its caption underneath."""
    x, y = origin[0] + GAP // 2, origin[1] + GAP // 2
    framed = image.width + 2 * BORDER
    draw = ImageDraw.Draw(grid)
    draw.rectangle((x, y, x + framed - 1, y + framed - 1), fill=colour)
    grid.paste(image, (x + BORDER, y + BORDER))
    font = ImageFont.load_default()
    draw.text((x, y + framed + 1), _fit_text(caption, font, framed), fill=TEXT_COLOUR, font=font)


def _check_shapes(
    queries: Sequence[str | Path],
    results: Sequence[Sequence[str | Path | None]],
    relevant: np.ndarray,
    query_captions: Sequence[str] | None,
    result_captions: Sequence[Sequence[str]] | None,
) -> None:
    """Raise ValueError unless there is at least one query and every per-query input has Q rows of K."""
    if not queries:
        raise ValueError("retrieval_grid needs at least one query")
    if relevant.ndim != 2 or relevant.shape[0] != len(queries):
        raise ValueError(f"relevant has shape {relevant.shape}; expected ({len(queries)}, K)")
    k = relevant.shape[1]
    if len(results) != len(queries) or any(len(row) != k for row in results):
        raise ValueError(f"results must be {len(queries)} rows of {k} paths (None = nothing retrieved)")
    if query_captions is not None and len(query_captions) != len(queries):
        raise ValueError(f"{len(query_captions)} query captions for {len(queries)} queries")
    if result_captions is not None and (
        len(result_captions) != len(queries) or any(len(row) != k for row in result_captions)
    ):
        raise ValueError(f"result_captions must be {len(queries)} rows of {k} strings")


def retrieval_grid(
    queries: Sequence[str | Path],
    results: Sequence[Sequence[str | Path | None]],
    relevant: np.ndarray,
    query_captions: Sequence[str] | None = None,
    result_captions: Sequence[Sequence[str]] | None = None,
    tile: int = 128,
) -> Image.Image:
    """One row per query: the query (blue frame), then its top K results framed green when relevant and
    red when not. None results leave their cell blank; unreadable images become grey placeholders."""
    relevant = np.asarray(relevant, dtype=bool)
    _check_shapes(queries, results, relevant, query_captions, result_captions)
    width, height = cell_size(tile)
    grid = Image.new("RGB", (width * (relevant.shape[1] + 1), height * len(queries)), BACKGROUND)
    skipped = SkippedImages()
    for row, query in enumerate(queries):
        caption = query_captions[row] if query_captions is not None else ""
        _draw_cell(grid, (0, row * height), _letterbox(query, tile, skipped), QUERY_COLOUR, caption)
        for col, path in enumerate(results[row]):
            if path is None:
                continue
            colour = RELEVANT_COLOUR if relevant[row, col] else IRRELEVANT_COLOUR
            caption = result_captions[row][col] if result_captions is not None else ""
            origin = ((col + 1) * width, row * height)
            _draw_cell(grid, origin, _letterbox(path, tile, skipped), colour, caption)
    skipped.report("grid images")
    return grid
