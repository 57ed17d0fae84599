"""Catalogue CSV loader: relative paths, bad rows reported and skipped, explicit splits."""

from pathlib import Path

import pytest
from PIL import Image

from visual_search.data.catalog import load_catalog
from visual_search.data.splits import SplitSpec
from visual_search.errors import UserError


def write_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (16, 16), (i * 20 % 255, 0, 0)).save(folder / name)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    write_images(tmp_path / "img", [f"{i}.png" for i in range(12)])
    return tmp_path


def test_relative_paths_extra_columns_and_seed_split(shop: Path):
    rows = ["image,title,category,brand"] + [
        f"img/{i}.png,item {i},{'shoes' if i < 6 else 'bags'},acme" for i in range(12)
    ]
    (shop / "cat.csv").write_text("\n".join(rows) + "\n")
    table = load_catalog(shop / "cat.csv", SplitSpec(val_fraction=0))
    assert len(table.items) == 12 and table.classes == ["bags", "shoes"]
    assert Path(table.items.loc["img/3.png", "image"]) == (shop / "img" / "3.png").resolve()
    assert table.items.loc["img/3.png", "brand"] == "acme"  # extra metadata is kept
    assert table.items.loc["img/3.png", "semantic_category"] == "shoes"  # falls back to category
    assert {len(table.splits["gallery"]), len(table.splits["query"])} == {8, 4}


def test_bad_rows_are_reported_and_skipped(shop: Path):
    csv = (
        "item_id,image,title,category\n"
        "a,img/0.png,ok,shoes\n"
        "b,img/1.png,no category,\n"
        "c,img/missing.png,missing file,shoes\n"
        "a,img/2.png,duplicate id,shoes\n"
        "d,,no image,shoes\n"
        "e,img/3.png,ok too,shoes\n"
    )
    (shop / "cat.csv").write_text(csv)
    table = load_catalog(shop / "cat.csv", SplitSpec(val_fraction=0))
    assert sorted(table.items.index) == ["a", "e"]
    assert table.report.counts == {
        "empty category": 1,
        "missing image": 1,
        "empty or duplicate item_id": 1,
        "empty image path": 1,
    }
    assert any("cat.csv:5" in line for line in table.report.lines())  # the duplicate's row number


def test_split_column_and_one_csv_per_split(shop: Path):
    csv = "image,title,category,split\n" + "".join(
        f"img/{i}.png,t{i},{'x' if i % 2 else 'y'},{['train', 'gallery', 'query'][i % 3]}\n"
        for i in range(12)
    )
    (shop / "cat.csv").write_text(csv)
    table = load_catalog(shop / "cat.csv", SplitSpec(protocol="column", val_fraction=0.25))
    assert len(table.splits["gallery"]) == 4 and len(table.splits["query"]) == 4
    assert len(table.splits["train"]) + len(table.splits["val"]) == 4 and len(table.splits["val"]) == 2
    for name in ("gallery", "query"):
        (shop / f"{name}.csv").write_text(
            "image,title,category\n"
            + "".join(
                f"img/{i}.png,t,c{i % 2}\n" for i in range(6 * (name == "query"), 6 * (name == "query") + 6)
            )
        )
    table = load_catalog(
        {"gallery": str(shop / "gallery.csv"), "query": str(shop / "query.csv")}, SplitSpec()
    )
    assert len(table.splits["gallery"]) == 6 and len(table.splits["query"]) == 6


def test_non_utf8_titles_are_kept_readable(shop: Path):
    (shop / "cat.csv").write_bytes(
        b"image,title,category\nimg/0.png,caf\xe9 chair,chairs\nimg/1.png,sofa,chairs\n"
    )
    table = load_catalog(shop / "cat.csv", SplitSpec())
    assert table.items.loc["img/0.png", "title"] == "caf\ufffd chair"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("image,name\nimg/0.png,x\n", "missing column.*title, category"),
        ("image,title,category\nimg/missing.png,x,y\n", "no usable rows.*missing image"),
        ("", "cannot parse"),
    ],
)
def test_unusable_csv_gives_one_clear_error(shop: Path, content: str, message: str):
    (shop / "cat.csv").write_text(content)
    with pytest.raises(UserError, match=message):
        load_catalog(shop / "cat.csv", SplitSpec())


def test_missing_csv_and_unknown_split_key(shop: Path):
    with pytest.raises(UserError, match="not found"):
        load_catalog(shop / "nope.csv", SplitSpec())
    with pytest.raises(UserError, match="unknown split"):
        load_catalog({"test": str(shop / "nope.csv")}, SplitSpec())


def test_images_outside_the_catalogue_folder_are_refused_unless_allowed(tmp_path: Path):
    shop = tmp_path / "shop"
    write_images(shop / "img", [f"{i}.png" for i in range(6)])
    write_images(tmp_path / "private", ["secret.png"])
    (shop / "img" / "link.png").symlink_to(tmp_path / "private" / "secret.png")
    outside = [str(tmp_path / "private" / "secret.png"), "../private/secret.png", "img/link.png"]
    rows = [f"img/{i}.png,item {i},{'shoes' if i < 3 else 'bags'}" for i in range(6)]
    rows += [f"{path},sneaky,shoes" for path in outside]
    (shop / "cat.csv").write_text("image,title,category\n" + "\n".join(rows) + "\n")
    table = load_catalog(shop / "cat.csv", SplitSpec(val_fraction=0))
    assert sorted(table.items.index) == [f"img/{i}.png" for i in range(6)]
    reasons = table.report.lines()
    assert any(line.startswith("skipped 3 row(s): image outside the catalogue's folder") for line in reasons)
    assert "dataset.allow_outside=true" in reasons[0]
    allowed = load_catalog(shop / "cat.csv", SplitSpec(val_fraction=0), allow_outside=True)
    assert len(allowed.items) == 6 + 3 and (allowed.items["title"] == "sneaky").sum() == 3
