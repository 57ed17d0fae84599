"""The serving parts on their own: micro-batcher, bounded image decoding, crop boxes, the gallery's
categories and image files, and how serve.py chooses what to serve."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from PIL import Image

from visual_search.errors import UserError
from visual_search.evaluation.leaderboard import Leaderboard
from visual_search.serving.batching import MicroBatcher
from visual_search.serving.engine import scores
from visual_search.serving.gallery import Gallery
from visual_search.serving.http.errors import BadInput, NotFound, TooLarge, Unprocessable
from visual_search.serving.http.imaging import Box, decode_image, resolve_box
from visual_search.serving.source import best_run, choose

# ---- micro-batching ----------------------------------------------------------------------------------


def run_batched(items: list[int], max_batch: int, window_s: float, fn=None) -> tuple[list, list[list[int]]]:
    """Submit `items` concurrently; returns the results (or exceptions) and the batches `fn` saw."""
    batches: list[list[int]] = []

    def square(batch: list[int]) -> list[int]:
        batches.append(batch)
        return [x * x for x in batch]

    async def main() -> list:
        batcher = MicroBatcher(fn or square, max_batch=max_batch, window_s=window_s)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(x) for x in items), return_exceptions=True)
        finally:
            await batcher.stop()

    return asyncio.run(main()), batches


def test_concurrent_items_share_batches_and_keep_their_own_results():
    results, batches = run_batched(list(range(10)), max_batch=4, window_s=0.05)
    assert [r.value for r in results] == [x * x for x in range(10)]
    assert max(len(b) for b in batches) == 4 and sorted(x for b in batches for x in b) == list(range(10))
    assert all(r.batch_size == len(next(b for b in batches if i in b)) for i, r in enumerate(results))


def test_max_batch_one_serves_one_at_a_time():
    results, batches = run_batched(list(range(5)), max_batch=1, window_s=0.05)
    assert [len(b) for b in batches] == [1] * 5 and [r.batch_size for r in results] == [1] * 5


def test_the_window_is_waited_only_after_a_batch_of_concurrent_requests():
    """A lone client never waits the window; once requests came together, the next batch waits for more."""
    batches: list[list[int]] = []

    def record(batch: list[int]) -> list[int]:
        batches.append(batch)
        return batch

    async def later(batcher: MicroBatcher, item: int, delay: float):
        await asyncio.sleep(delay)
        return await batcher.submit(item)

    async def main() -> list[float]:
        batcher = MicroBatcher(record, max_batch=8, window_s=0.5)
        await batcher.start()
        try:
            took = []
            for item in (1, 2):  # one at a time: no window
                start = asyncio.get_running_loop().time()
                await batcher.submit(item)
                took.append(asyncio.get_running_loop().time() - start)
            await asyncio.gather(batcher.submit(3), batcher.submit(4))  # together: one batch
            await asyncio.gather(batcher.submit(5), later(batcher, 6, 0.1))  # 6 is waited for
            return took
        finally:
            await batcher.stop()

    took = asyncio.run(main())
    assert max(took) < 0.25  # far below the 0.5 s window
    assert batches == [[1], [2], [3, 4], [5, 6]]


def test_a_failing_batch_fails_each_of_its_requests_and_the_batcher_goes_on():
    calls = []

    def flaky(batch: list[int]) -> list[int]:
        calls.append(batch)
        if len(calls) == 1:
            raise ValueError("model exploded")
        return batch

    async def main() -> tuple[list, object]:
        batcher = MicroBatcher(flaky, max_batch=8, window_s=0.05)
        await batcher.start()
        try:
            first = await asyncio.gather(*(batcher.submit(x) for x in range(3)), return_exceptions=True)
            return first, await batcher.submit(7)
        finally:
            await batcher.stop()

    first, later = asyncio.run(main())
    assert all(isinstance(r, ValueError) for r in first)
    assert later.value == 7


def test_batch_function_returning_the_wrong_count_is_an_error():
    results, _ = run_batched([1, 2], max_batch=2, window_s=0.05, fn=lambda batch: batch[:1])
    assert all(isinstance(r, RuntimeError) for r in results)


@pytest.mark.parametrize("kwargs", [{"max_batch": 0}, {"window_s": -1}])
def test_batcher_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        MicroBatcher(lambda batch: batch, **kwargs)


# ---- decoding ----------------------------------------------------------------------------------------


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def test_decodes_every_mode_to_rgb():
    for mode in ("RGB", "RGBA", "L", "P", "CMYK"):
        fmt = "JPEG" if mode == "CMYK" else "PNG"
        image = decode_image(encoded(Image.new(mode, (20, 10)), fmt), max_pixels=1000)
        assert image.mode == "RGB" and image.size == (20, 10)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"just some text", "not an image"),
        (encoded(Image.new("RGB", (64, 64), "red"), "JPEG")[:200], "cannot decode"),
    ],
)
def test_unusable_bytes_are_bad_input(data, reason):
    with pytest.raises(BadInput, match=reason):
        decode_image(data, max_pixels=10_000)


def test_pixel_limit_is_checked_before_decoding():
    big = encoded(Image.new("L", (3000, 3000)))  # compresses to a few kB
    assert len(big) < 50_000
    with pytest.raises(TooLarge, match="9,000,000 pixels; the limit is 1,000,000"):
        decode_image(big, max_pixels=1_000_000)


def test_pillow_bomb_guard_stays_on(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(TooLarge, match="decompression-bomb guard"):
        decode_image(encoded(Image.new("L", (100, 100))), max_pixels=10**9)


# ---- boxes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.5,0,1,1", Box(100, 0, 200, 100)),  # fractions
        ([0.25, 0.5, 0.75, 1.0], Box(50, 50, 150, 100)),
        ("10, 20, 110, 90", Box(10, 20, 110, 90)),  # pixels
        ("[0, 0, 200, 100]", Box(0, 0, 200, 100)),
    ],
)
def test_box_in_fractions_or_pixels(value, expected):
    assert resolve_box(value, 200, 100) == expected


@pytest.mark.parametrize(
    "value", ["1,2,3", "a,b,c,d", "10,10,5,50", "0,0,201,50", "-1,0,10,10", "nan,0,1,1", "[1,2", [0, 0, 0, 1]]
)
def test_invalid_boxes_are_unprocessable(value):
    with pytest.raises(Unprocessable, match="box"):
        resolve_box(value, 200, 100)


# ---- gallery -----------------------------------------------------------------------------------------


@pytest.fixture
def gallery(tmp_path: Path) -> Gallery:
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    outside = tmp_path / "secret.jpg"
    Image.new("RGB", (4, 4)).save(outside)
    for name in ("a", "b", "c"):
        Image.new("RGB", (4, 4)).save(root / "images" / f"{name}.jpg")
    (root / "images" / "link.jpg").symlink_to(outside)
    items = pd.DataFrame(
        {
            "image": [str(root / "images" / f"{n}.jpg") for n in ("a", "b", "c", "link")] + [str(outside)],
            "title": ["A", "B", "C", "L", "S"],
            "category": ["hat", "hat", "shoe", "hat", "shoe"],
        },
        index=pd.Index(["a", "b", "c/1", "link", "secret"], name="item_id"),
    )
    labels = ["7", "7", "9", "7", "9"]
    return Gallery(
        items, ["a", "b", "c/1", "link", "secret"], labels, {"7": "hat", "9": "shoe"}, root.resolve()
    )


def test_categories_by_id_or_name(gallery):
    assert [(c.id, c.name, c.count) for c in gallery.categories] == [("7", "hat", 3), ("9", "shoe", 2)]
    assert gallery.category_id("9") == "9" and gallery.category_id("Hat") == "7"
    with pytest.raises(Unprocessable, match="unknown category 'bag'"):
        gallery.category_id("bag")


def test_hits_link_to_quoted_image_urls(gallery):
    hit = gallery.hit(2, rank=1, distance=0.5, score=0.75)
    assert hit["id"] == "c/1" and hit["image_url"] == "/items/c%2F1/image" and hit["category"] == "shoe"


def test_item_images_never_leave_the_root(gallery):
    assert gallery.image_path("a").name == "a.jpg"
    for item_id in ("secret", "link", "../secret", "nope"):
        with pytest.raises(NotFound):
            gallery.image_path(item_id)


def test_unknown_indexed_items_are_refused(gallery):
    with pytest.raises(ValueError, match="not in the dataset"):
        Gallery(gallery.items, ["a", "zzz"], ["7", "7"], {"7": "hat"}, gallery.root)


# ---- what to serve -----------------------------------------------------------------------------------


def serve_cfg(tmp_path: Path, **values) -> object:
    defaults = {"run": None, "checkpoint": None, "paths": {"leaderboard": str(tmp_path / "lb.csv")}}
    return OmegaConf.create(defaults | values)


def test_no_leaderboard_says_how_to_make_one(tmp_path):
    with pytest.raises(UserError, match=r"no leaderboard at .*python evaluate.py"):
        choose(serve_cfg(tmp_path))


def run_folder(tmp_path: Path, name: str) -> str:
    """An evaluate run folder (its saved config, as serve.py reads it)."""
    folder = tmp_path / "runs" / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(f"approach: {name}\n")
    return str(folder)


def leaderboard(tmp_path: Path, rows: list[dict]) -> Path:
    comparable = {"dataset_id": "shop-1234", "debug": "none", "filter": "none", "queries": "items"}
    path = tmp_path / "lb.csv"
    for row in rows:
        Leaderboard(path).append(comparable | row)
    return path


def test_only_comparable_rows_compete_and_the_choice_is_logged(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="visual_search.serving.source")
    rows = [
        {"approach": "other_data", "mAP": 0.99, "dataset_id": "shop-9999"},
        {"approach": "tiny_debug", "mAP": 0.98, "debug": "tiny"},
        {"approach": "oracle", "mAP": 0.97, "filter": "oracle"},
        {"approach": "scenes", "mAP": 0.96, "queries": "scenes"},
        {"approach": "gone", "mAP": 0.95},
        {"approach": "best", "mAP": 0.80, "weights": "imagenet (pip)"},
        {"approach": "second", "mAP": 0.70, "weights": "random"},
    ]
    for row in rows:
        row["run_dir"] = (
            str(tmp_path / "runs" / "gone")
            if row["approach"] == "gone"
            else run_folder(tmp_path, row["approach"])
        )
    path = leaderboard(tmp_path, rows)
    served = best_run(path, "shop-1234")
    assert served.cfg.approach == "best" and served.row["mAP"] == 0.80
    assert (
        "best of 3 comparable rows" in caplog.text and "runner-up: second (random): mAP 0.7000" in caplog.text
    )
    assert "its run folder" in caplog.text  # the row whose folder is gone is skipped, and said
    with pytest.raises(UserError, match=r"for dataset shop-5555 .*7 row\(s\) of other data, debug runs"):
        best_run(path, "shop-5555")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"run": "somewhere", "checkpoint": "x.ckpt"}, "not both"),
        ({"run": "."}, "not an evaluate run folder"),
        ({"checkpoint": "missing.ckpt"}, "file not found"),
    ],
)
def test_bad_choices_are_one_line_errors(tmp_path, values, message):
    with pytest.raises(UserError, match=message):
        choose(serve_cfg(tmp_path, **values))


def test_scores_are_cosine_for_unit_vectors_under_l2():
    a, b = np.array([1.0, 0.0]), np.array([0.6, 0.8])
    assert scores(np.array([np.sum((a - b) ** 2)]), "L2")[0] == pytest.approx(a @ b)
    assert scores(np.array([0.3]), "IP")[0] == 0.3
