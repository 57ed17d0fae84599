"""Tests for the synthetic Polyvore-layout dataset generator."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from visual_search.data import synthetic
from visual_search.data.synthetic import PALETTE, TEMPLATES, SyntheticSpec, ensure_synthetic, generate, writer

TINY = SyntheticSpec(
    num_categories=4, items_per_category=6, image_size=48, num_outfits=10, num_scenes=4, scene_size=96
)
SPLITS = ("train", "valid", "test")


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _colour_of(entry: dict[str, Any]) -> str:
    """The colour word that starts every title and url_name."""
    return (entry["title"] or entry["url_name"]).split(" ")[0].split("-")[0]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(TINY, tmp_path_factory.mktemp("tiny") / "polyvore_outfits")


def test_layout_files_exist_and_parse(tiny_root: Path) -> None:
    for name in ("polyvore_item_metadata.json", "categories.csv", "scenes.json"):
        assert (tiny_root / name).is_file()
    for version in ("nondisjoint", "disjoint"):
        for split in SPLITS:
            outfits = _load(tiny_root / version / f"{split}.json")
            assert isinstance(outfits, list)
            for outfit in outfits:
                assert isinstance(outfit["set_id"], str) and outfit["set_id"].isdigit()
                assert [e["index"] for e in outfit["items"]] == list(range(1, len(outfit["items"]) + 1))


def test_metadata_fields_and_empty_titles(tiny_root: Path) -> None:
    metadata = _load(tiny_root / "polyvore_item_metadata.json")
    assert len(metadata) == TINY.num_categories * TINY.items_per_category
    expected_keys = {
        "url_name",
        "description",
        "catgeories",
        "title",
        "related",
        "category_id",
        "semantic_category",
    }
    for item_id, entry in metadata.items():
        assert item_id.isdigit()
        assert set(entry) == expected_keys
        assert entry["category_id"].isdigit()
        assert entry["url_name"] and " " not in entry["url_name"]
        assert isinstance(entry["catgeories"], list) and isinstance(entry["related"], list)
    empty = [e for e in metadata.values() if e["title"] == ""]
    assert 1 <= len(empty) <= max(1, round(0.1 * len(metadata)))
    assert all(e["url_name"] for e in empty)


def test_categories_csv_has_no_header_and_three_columns(tiny_root: Path) -> None:
    with (tiny_root / "categories.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [[t.category_id, t.name, t.semantic] for t in TEMPLATES[: TINY.num_categories]]
    metadata = _load(tiny_root / "polyvore_item_metadata.json")
    assert {e["category_id"] for e in metadata.values()} == {r[0] for r in rows}


def test_every_item_has_an_rgb_image_of_the_right_size(tiny_root: Path) -> None:
    metadata = _load(tiny_root / "polyvore_item_metadata.json")
    assert len(list((tiny_root / "images").iterdir())) == len(metadata)
    for item_id in metadata:
        with Image.open(tiny_root / "images" / f"{item_id}.jpg") as image:
            assert image.mode == "RGB" and image.size == (TINY.image_size, TINY.image_size)
            assert min(image.getpixel((0, 0))) >= 245  # white background


def test_outfits_cover_all_items_with_distinct_semantic_categories(tiny_root: Path) -> None:
    metadata = _load(tiny_root / "polyvore_item_metadata.json")
    covered = set()
    for split in SPLITS:
        for outfit in _load(tiny_root / "nondisjoint" / f"{split}.json"):
            semantics = [metadata[e["item_id"]]["semantic_category"] for e in outfit["items"]]
            assert 3 <= len(semantics) <= 5 and len(set(semantics)) == len(semantics)
            covered.update(e["item_id"] for e in outfit["items"])
    assert covered == set(metadata)


def test_disjoint_splits_share_no_items(tiny_root: Path) -> None:
    items = {
        split: {e["item_id"] for o in _load(tiny_root / "disjoint" / f"{split}.json") for e in o["items"]}
        for split in SPLITS
    }
    assert all(items.values())
    assert not items["train"] & items["valid"]
    assert not items["train"] & items["test"]
    assert not items["valid"] & items["test"]


def test_scenes_boxes_inside_image_and_target_is_largest(tiny_root: Path) -> None:
    metadata = _load(tiny_root / "polyvore_item_metadata.json")
    scenes = _load(tiny_root / "scenes.json")
    assert len(scenes) == TINY.num_scenes
    for scene in scenes:
        with Image.open(tiny_root / scene["image"]) as image:
            assert image.mode == "RGB" and image.size == (TINY.scene_size, TINY.scene_size)
            assert max(image.getpixel((0, 0))) < 252  # not a white background
        assert 2 <= len(scene["items"]) <= 4
        areas = {}
        for entry in scene["items"]:
            x0, y0, x1, y1 = entry["box"]
            assert all(isinstance(v, int) for v in entry["box"])
            assert 0 <= x0 < x1 <= TINY.scene_size and 0 <= y0 < y1 <= TINY.scene_size
            assert entry["category_id"] == metadata[entry["item_id"]]["category_id"]
            areas[entry["item_id"]] = (x1 - x0) * (y1 - y0)
        assert areas[scene["target_item_id"]] == max(areas.values())


def test_generate_is_deterministic_and_seed_dependent(tmp_path: Path, tiny_root: Path) -> None:
    again = _file_hashes(generate(TINY, tmp_path / "again"))
    assert again == _file_hashes(tiny_root)
    other = _file_hashes(generate(dataclasses.replace(TINY, seed=1), tmp_path / "other"))
    images = {k: v for k, v in again.items() if k.startswith("images/")}
    other_images = {k: v for k, v in other.items() if k.startswith("images/")}
    assert set(images.values()).isdisjoint(other_images.values())


def test_generate_refuses_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        generate(TINY, tmp_path)


def test_ensure_synthetic_generates_once_then_reuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=writer.__name__)
    first = ensure_synthetic(TINY, tmp_path)
    assert first.parent == tmp_path and first.name.startswith("synthetic-")
    marker = (first / "polyvore_item_metadata.json").stat().st_mtime_ns

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not regenerate")

    monkeypatch.setattr(writer, "generate", fail)
    second = ensure_synthetic(dataclasses.asdict(TINY), tmp_path)  # a plain mapping is accepted too
    assert second == first
    assert (first / "polyvore_item_metadata.json").stat().st_mtime_ns == marker
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary folders left behind
    messages = [r.getMessage() for r in caplog.records if r.name == writer.__name__]
    assert any("Generating" in m for m in messages) and any("Reusing" in m for m in messages)


def test_ensure_synthetic_crash_leaves_nothing_and_retry_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated crash")

    with monkeypatch.context() as patch:
        patch.setattr(writer, "_write_scenes", crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            ensure_synthetic(TINY, tmp_path)
    assert list(tmp_path.iterdir()) == []
    root = ensure_synthetic(TINY, tmp_path)
    assert (root / "scenes.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [root.name]


def test_different_specs_get_different_folders(tmp_path: Path) -> None:
    assert synthetic.spec_hash(TINY) != synthetic.spec_hash(dataclasses.replace(TINY, seed=1))


def test_colour_does_not_predict_category(tmp_path: Path) -> None:
    spec = SyntheticSpec(
        num_categories=5, items_per_category=40, image_size=32, num_outfits=1, num_scenes=0, scene_size=64
    )
    metadata = _load(generate(spec, tmp_path / "colours") / "polyvore_item_metadata.json")
    counts: dict[str, Counter[str]] = {}
    for entry in metadata.values():
        counts.setdefault(entry["category_id"], Counter())[_colour_of(entry)] += 1
    expected = spec.items_per_category / len(PALETTE)
    for per_category in counts.values():
        assert set(per_category) == set(PALETTE)  # every colour appears in every category
        chi_square = sum((per_category[c] - expected) ** 2 / expected for c in PALETTE)
        assert chi_square < 16.9  # 95% quantile of chi-square with 9 degrees of freedom


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_categories", 1),
        ("num_categories", len(TEMPLATES) + 1),
        ("items_per_category", 0),
        ("image_size", 16),
        ("scene_size", 10),
        ("jpeg_quality", 0),
        ("seed", -1),
        ("num_scenes", -1),
    ],
)
def test_bad_spec_values_raise_value_error_naming_the_field(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        SyntheticSpec(**{field: value})


def test_bad_mapping_spec_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image_size"):
        ensure_synthetic({"image_size": 8}, tmp_path)
