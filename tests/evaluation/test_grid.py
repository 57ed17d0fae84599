"""Retrieval grid: layout size, relevance frames, letterboxing, and no crash on missing or absent images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visual_search.evaluation.grid import (
    BORDER,
    CAPTION,
    GAP,
    IRRELEVANT_COLOUR,
    PLACEHOLDER_COLOUR,
    QUERY_COLOUR,
    RELEVANT_COLOUR,
    retrieval_grid,
)

TILE = 32
CELL_W = TILE + 2 * BORDER + GAP
CELL_H = TILE + 2 * BORDER + CAPTION + GAP


def _image(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def _frame_pixel(grid: Image.Image, row: int, col: int) -> tuple[int, int, int]:
    """A pixel on the coloured frame (top-left, inside the border) of one cell."""
    return grid.getpixel((col * CELL_W + GAP // 2 + 1, row * CELL_H + GAP // 2 + 1))


def _tile_centre(grid: Image.Image, row: int, col: int) -> tuple[int, int, int]:
    offset = GAP // 2 + BORDER + TILE // 2
    return grid.getpixel((col * CELL_W + offset, row * CELL_H + offset))


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    return {
        "query": _image(tmp_path / "query.png", (20, 30), (0, 0, 0)),
        "hit": _image(tmp_path / "hit.png", (30, 30), (0, 0, 255)),
        "miss": _image(tmp_path / "miss.jpg", (12, 12), (255, 255, 0)),
        "wide": _image(tmp_path / "wide.png", (40, 10), (255, 0, 255)),
    }


def test_size_follows_layout(images: dict[str, Path]):
    queries = [images["query"]] * 2
    results = [[images["hit"], images["miss"], images["wide"]]] * 2
    grid = retrieval_grid(queries, results, np.zeros((2, 3), dtype=bool), tile=TILE)
    assert grid.mode == "RGB"
    assert grid.size == (4 * CELL_W, 2 * CELL_H)


def test_frames_show_relevance(images: dict[str, Path]):
    results = [[images["hit"], images["miss"]], [images["miss"], images["hit"]]]
    relevant = np.array([[True, False], [False, True]])
    grid = retrieval_grid([images["query"]] * 2, results, relevant, tile=TILE)
    for row in range(2):
        assert _frame_pixel(grid, row, 0) == QUERY_COLOUR
    for row, col in ((0, 1), (1, 2)):
        r, g, b = _frame_pixel(grid, row, col)
        assert (r, g, b) == RELEVANT_COLOUR and g > max(r, b)
    for row, col in ((0, 2), (1, 1)):
        r, g, b = _frame_pixel(grid, row, col)
        assert (r, g, b) == IRRELEVANT_COLOUR and r > max(g, b)
    assert _tile_centre(grid, 0, 1) == (0, 0, 255)  # the image itself sits inside the frame


def test_letterbox_keeps_aspect_on_white(images: dict[str, Path]):
    grid = retrieval_grid([images["wide"]], [[images["miss"]]], np.ones((1, 1), dtype=bool), tile=TILE)
    assert _tile_centre(grid, 0, 0) == (255, 0, 255)
    top = GAP // 2 + BORDER + 2  # a 4:1 image scaled to 32 wide is 8 high, so the tile's top rows are white
    assert grid.getpixel((GAP // 2 + BORDER + TILE // 2, top)) == (255, 255, 255)
    small = np.asarray(grid)[GAP // 2 + BORDER + 4, CELL_W + GAP // 2 + BORDER + 4]  # 12px image upscaled
    assert np.abs(small.astype(int) - (255, 255, 0)).max() < 10


def test_unreadable_image_becomes_placeholder(images: dict[str, Path], tmp_path: Path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    results = [[tmp_path / "missing.png", broken, images["hit"]]]
    grid = retrieval_grid([images["query"]], results, np.array([[True, False, True]]), tile=TILE)
    assert _tile_centre(grid, 0, 1) == PLACEHOLDER_COLOUR
    assert _tile_centre(grid, 0, 2) == PLACEHOLDER_COLOUR
    assert _frame_pixel(grid, 0, 2) == IRRELEVANT_COLOUR
    assert _tile_centre(grid, 0, 3) == (0, 0, 255)


def test_none_result_leaves_cell_blank(images: dict[str, Path]):
    grid = retrieval_grid([images["query"]], [[images["hit"], None]], np.array([[True, True]]), tile=TILE)
    blank = np.asarray(grid)[:, 2 * CELL_W : 3 * CELL_W]
    assert blank.min() == 255
    assert np.asarray(grid)[:, CELL_W : 2 * CELL_W].min() < 255


def test_captions_are_drawn_and_truncated(images: dict[str, Path]):
    relevant = np.array([[True]])
    plain = retrieval_grid([images["query"]], [[images["hit"]]], relevant, tile=TILE)
    long = "a very long category name that cannot fit"
    captioned = retrieval_grid([images["query"]], [[images["hit"]]], relevant, ["shirt"], [[long]], tile=TILE)
    caption_rows = slice(GAP // 2 + TILE + 2 * BORDER, CELL_H)
    assert np.asarray(plain)[caption_rows].min() == 255
    text = np.asarray(captioned)[caption_rows]
    assert text[:, :CELL_W].min() < 128 and text[:, CELL_W:].min() < 128
    assert text[:, -GAP // 2 :].min() == 255  # the long caption is cut to its tile's width


@pytest.mark.parametrize(
    ("results", "relevant", "captions"),
    [
        ([["a.png"]], np.ones((1, 2), dtype=bool), None),
        ([["a.png"], ["b.png"]], np.ones((1, 1), dtype=bool), None),
        ([["a.png"]], np.ones((1, 1), dtype=bool), [["x", "y"]]),
    ],
)
def test_mismatched_inputs_raise(results, relevant, captions):
    with pytest.raises(ValueError):
        retrieval_grid(["q.png"], results, relevant, result_captions=captions)


def test_no_queries_raise():
    with pytest.raises(ValueError, match="at least one query"):
        retrieval_grid([], [], np.zeros((0, 3), dtype=bool))
