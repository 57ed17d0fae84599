"""A second real-image catalogue, not emoji: the Phosphor icon set, each icon drawn in several styles.

Cross-style retrieval: each held-out icon's outline drawing ("regular") is a gallery item and its solid
drawing ("fill") a query; relevance = same Figma category (18 of them: "arrows", "commerce", "weather &
nature", ...). The split is by icon, per category: no icon used for fine-tuning (in either style) is a
gallery or query item. The SVGs are rendered black on white with resvg (pip `resvg-py`).

    python -m benchmarks.icons            # writes outputs/benchmarks/icons/catalog.csv (+ images/)
    python evaluate.py dataset=catalog dataset/split=column dataset.path=outputs/benchmarks/icons/catalog.csv

The icons come from the npm package @phosphor-icons/core (`npm pack`; its metadata read with Node, which
npm brings), cached beside the catalogue; nothing is committed.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import tarfile
from pathlib import Path

import pandas as pd
import resvg_py
from tqdm.auto import tqdm

from benchmarks.catalogs import split_by_item, write_catalog

ROOT = Path(__file__).resolve().parents[1]
PACKAGE, VERSION = "@phosphor-icons/core", "2.1.1"
STYLES = ("regular", "fill")  # gallery drawings, query drawings
SIZE = 128  # rendered pixels (square)


def npm_package(cache: Path) -> Path:
    """The package's tarball, fetched with `npm pack` once."""
    tarball = cache / f"phosphor-icons-core-{VERSION}.tgz"
    if not tarball.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=cache, check=True, capture_output=True
        )
    return tarball


def read_metadata(tarball: Path) -> list[dict]:
    """The package's icon list (name, figma_category, tags, ...), exported by its ES module."""
    module = tarball.with_suffix(".mjs")
    if not module.is_file():
        with tarfile.open(tarball) as archive:
            module.write_bytes(archive.extractfile("package/dist/index.mjs").read())
    source = json.dumps(module.resolve().as_uri())
    script = f"import {{ icons }} from {source}; console.log(JSON.stringify(icons))"
    printed = subprocess.run(
        ["node", "--input-type=module", "-e", script], check=True, capture_output=True, text=True
    )
    return json.loads(printed.stdout)


def choose_icons(metadata: list[dict]) -> pd.DataFrame:
    """One row per icon: its file stem, a title (its name and tags) and its category."""
    rows = [
        {
            "name": entry["name"],
            "title": " ".join([entry["name"].replace("-", " "), *(t for t in entry["tags"] if t != "*new*")]),
            "category": entry["figma_category"],
        }
        for entry in metadata
    ]
    return pd.DataFrame(rows).drop_duplicates("name").reset_index(drop=True)


def render_images(tarball: Path, style: str, names: set[str], out: Path) -> None:
    """Render the style's drawings of `names`, black on white at SIZE px, as out/<style>/<name>.png."""
    (out / style).mkdir(parents=True, exist_ok=True)
    suffix = "" if style == "regular" else f"-{style}"
    wanted = {f"package/assets/{style}/{name}{suffix}.svg": name for name in names}
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if m.name in wanted]
        for member in tqdm(members, desc=f"{style} icons", unit="img"):
            target = out / style / f"{wanted[member.name]}.png"
            if not target.exists():
                svg = archive.extractfile(member).read().decode()
                png = resvg_py.svg_to_bytes(svg_string=svg, width=SIZE, height=SIZE, background="#ffffff")
                target.write_bytes(bytes(png))


def build(out: Path, eval_fraction: float = 0.5, seed: int = 0) -> Path:
    """Fetch, select, split, render and write the catalogue; returns the CSV's path."""
    tarball = npm_package(out / "npm")
    icons = choose_icons(read_metadata(tarball))
    icons["role"] = split_by_item(icons, eval_fraction, val_fraction=0.1, seed=seed)
    for style in STYLES:
        render_images(tarball, style, set(icons["name"]), out / "images")
    rows = [
        {
            "item_id": f"{style}:{item['name']}",
            "image": f"images/{style}/{item['name']}.png",
            "title": item["title"],
            "category": item["category"],
            "split": {"eval": "gallery" if style == STYLES[0] else "query"}.get(item["role"], item["role"]),
            "style": style,
        }
        for style in STYLES
        for _, item in icons.iterrows()
        if (out / "images" / style / f"{item['name']}.png").is_file()
    ]
    return write_catalog(rows, out, "icon")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "icons")
    parser.add_argument("--eval-fraction", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build(args.out, args.eval_fraction)


if __name__ == "__main__":
    main()
