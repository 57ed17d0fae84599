"""A real-image catalogue no one here drew: the same emoji as drawn by Google and by Twitter.

Cross-vendor retrieval: each held-out emoji's Google drawing is a gallery item and its Twitter drawing a
query; relevance = same subcategory (e.g. "animal-mammal", "food-fruit"). Subcategories with fewer than
`min_per_subcategory` emoji are dropped, and so are skin-tone variants (they are not separate entries of
emoji.json). The split is by emoji: no emoji used for fine-tuning (either vendor's drawing) is a gallery or
query item. Transparent PNGs are composited onto white.

    python -m benchmarks.emoji            # writes outputs/benchmarks/emoji/catalog.csv (+ images/)
    python evaluate.py dataset=catalog dataset/split=column dataset.path=outputs/benchmarks/emoji/catalog.csv

The images come from the npm packages emoji-datasource-google / emoji-datasource-twitter (`npm pack`),
cached beside the catalogue; nothing is committed.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import tarfile
from pathlib import Path

import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from benchmarks.catalogs import split_by_item, write_catalog

ROOT = Path(__file__).resolve().parents[1]
VENDORS = ("google", "twitter")  # gallery drawings, query drawings
VERSION = "16.0.0"


def npm_package(vendor: str, cache: Path) -> Path:
    """The emoji-datasource-<vendor> tarball, fetched with `npm pack` once."""
    tarball = cache / f"emoji-datasource-{vendor}-{VERSION}.tgz"
    if not tarball.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "pack", f"emoji-datasource-{vendor}@{VERSION}", "--silent"],
            cwd=cache,
            check=True,
            capture_output=True,
        )
    return tarball


def read_metadata(tarball: Path) -> list[dict]:
    """The entries of the package's emoji.json."""
    with tarfile.open(tarball) as archive:
        return json.load(archive.extractfile("package/emoji.json"))


def choose_emoji(metadata: list[dict], min_per_subcategory: int) -> pd.DataFrame:
    """One row per emoji that both vendors drew, in subcategories with enough emoji."""
    rows = [
        {
            "image": entry["image"],
            "title": (entry.get("name") or entry["short_name"]).lower(),
            "category": entry["subcategory"],
            "semantic_category": entry["category"],
        }
        for entry in metadata
        if all(entry.get(f"has_img_{vendor}") for vendor in VENDORS) and entry["category"] != "Component"
    ]
    frame = pd.DataFrame(rows)
    sizes = frame.groupby("category")["image"].transform("size")
    return frame[sizes >= min_per_subcategory].reset_index(drop=True)


def composite_on_white(source: Image.Image) -> Image.Image:
    """An RGB image: the drawing over a white background (alpha respected)."""
    rgba = source.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def extract_images(tarball: Path, vendor: str, names: set[str], out: Path) -> None:
    """Write the vendor's 64 px drawings of `names`, composited onto white, under out/<vendor>/."""
    (out / vendor).mkdir(parents=True, exist_ok=True)
    prefix = f"package/img/{vendor}/64/"
    with tarfile.open(tarball) as archive:
        members = [
            m for m in archive.getmembers() if m.name.startswith(prefix) and m.name[len(prefix) :] in names
        ]
        for member in tqdm(members, desc=f"{vendor} images", unit="img"):
            target = out / vendor / member.name[len(prefix) :]
            if not target.exists():
                with Image.open(archive.extractfile(member)) as image:
                    composite_on_white(image).save(target)


def build(out: Path, min_per_subcategory: int = 5, eval_fraction: float = 0.5, seed: int = 0) -> Path:
    """Fetch, select, split and write the catalogue; returns the CSV's path."""
    tarballs = {vendor: npm_package(vendor, out / "npm") for vendor in VENDORS}
    emoji = choose_emoji(read_metadata(tarballs["google"]), min_per_subcategory)
    emoji["role"] = split_by_item(emoji, eval_fraction, val_fraction=0.1, seed=seed)
    for vendor, tarball in tarballs.items():
        extract_images(tarball, vendor, set(emoji["image"]), out / "images")
    rows = []
    for vendor in VENDORS:
        for _, item in emoji.iterrows():
            split = {"eval": "gallery" if vendor == "google" else "query"}.get(item["role"], item["role"])
            rows.append(
                {
                    "item_id": f"{vendor}:{Path(item['image']).stem}",
                    "image": f"images/{vendor}/{item['image']}",
                    "title": item["title"],
                    "category": item["category"],
                    "semantic_category": item["semantic_category"],
                    "split": split,
                    "vendor": vendor,
                }
            )
    return write_catalog(rows, out, "emoji")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "emoji")
    parser.add_argument("--min-per-subcategory", type=int, default=5)
    parser.add_argument("--eval-fraction", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build(args.out, args.min_per_subcategory, args.eval_fraction)


if __name__ == "__main__":
    main()
