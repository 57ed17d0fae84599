"""Polyvore loader on a generated tree in the real layout."""

import json
import shutil
from pathlib import Path

import pytest

from visual_search.data.polyvore import load_polyvore, read_categories
from visual_search.data.splits import SplitSpec
from visual_search.errors import UserError


@pytest.fixture
def tree(tiny_polyvore: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset that a test may damage."""
    return Path(shutil.copytree(tiny_polyvore, tmp_path / "polyvore_outfits"))


def test_loads_every_item_with_titles_categories_and_metadata(tiny_polyvore: Path):
    table = load_polyvore(tiny_polyvore, SplitSpec())
    metadata = json.loads((tiny_polyvore / "polyvore_item_metadata.json").read_text())
    assert len(table.items) == len(metadata) == 48 and table.report.total == 0
    assert all("catgeories" in meta for meta in metadata.values())  # the real data's spelling
    categories = read_categories(tiny_polyvore / "categories.csv")
    for item_id, meta in metadata.items():
        row = table.items.loc[item_id]
        assert row["title"] == (meta["title"] or meta["url_name"])  # empty titles fall back to url_name
        assert row["category"] == categories[meta["category_id"]][0]
        assert Path(row["image"]).is_file()
    assert any(not meta["title"] for meta in metadata.values())
    assert len(table.classes) == 4


def test_seed_split_sizes_per_category(tiny_polyvore: Path):
    table = load_polyvore(tiny_polyvore, SplitSpec(val_fraction=0))
    gallery, query = table.split("gallery"), table.split("query")
    # 12 items per category: int(12 * 0.8) = 9 gallery, 3 queries
    assert set(gallery["category_id"].value_counts()) == {9}
    assert set(query["category_id"].value_counts()) == {3}
    assert set(table.splits["train"]) == set(table.items.index) - set(table.splits["query"])
    capped = load_polyvore(tiny_polyvore, SplitSpec(max_per_category=5, val_fraction=0))
    assert set(capped.split("gallery")["category_id"].value_counts()) == {4}  # int(5 * 0.8)


def test_semantic_label_and_outfit_protocol(tiny_polyvore: Path):
    table = load_polyvore(tiny_polyvore, SplitSpec(), label="semantic_category")
    assert table.classes == sorted(table.items["semantic_category"].unique())
    for version in ("nondisjoint", "disjoint"):
        outfits = load_polyvore(tiny_polyvore, SplitSpec(protocol="outfits", outfits=version))
        test_ids = {
            e["item_id"]
            for o in json.loads((tiny_polyvore / version / "test.json").read_text())
            for e in o["items"]
        }
        assert set(outfits.splits["gallery"]) | set(outfits.splits["query"]) == test_ids
        assert not set(outfits.splits["train"]) & set(outfits.splits["query"])


def test_missing_images_and_bad_rows_are_reported(tree: Path):
    metadata = json.loads((tree / "polyvore_item_metadata.json").read_text())
    first, second, *_ = sorted(metadata)
    (tree / "images" / f"{first}.jpg").unlink()
    metadata[second]["category_id"] = "999"
    (tree / "polyvore_item_metadata.json").write_text(json.dumps(metadata))
    table = load_polyvore(tree, SplitSpec())
    assert len(table.items) == 46
    assert table.report.counts == {"missing image": 1, "unknown or empty category_id": 1}
    assert any(f"{first}.jpg" in line for line in table.report.lines())


def test_unusable_folders_give_one_clear_error(tree: Path, tmp_path: Path):
    with pytest.raises(UserError, match=r"polyvore_item_metadata\.json not found"):
        load_polyvore(tmp_path / "nowhere", SplitSpec())
    with pytest.raises(UserError, match=r"dataset\.label='colour'"):
        load_polyvore(tree, SplitSpec(), label="colour")
    shutil.rmtree(tree / "disjoint")
    with pytest.raises(UserError, match="outfit split file not found"):
        load_polyvore(tree, SplitSpec(protocol="outfits", outfits="disjoint"))
