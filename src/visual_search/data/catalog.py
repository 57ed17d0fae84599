"""Catalogue CSV loader for any shop: columns image,title,category (+ optional item_id, split,
description, semantic_category, and any extra metadata, which is kept for filtering).

Image paths are relative to the CSV. Splits come from a `split` column, from one CSV per split, or
from the seed protocol when neither is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from visual_search.data.items import SPLITS, ItemTable, LoadReport
from visual_search.data.splits import SplitSpec, column_protocol, seed_protocol
from visual_search.errors import UserError

REQUIRED = ("image", "title", "category")
LABELS = ("category", "semantic_category")


def read_csv(path: Path) -> pd.DataFrame:
    """Read one catalogue CSV as strings; undecodable bytes become U+FFFD instead of failing."""
    if not path.is_file():
        raise UserError(f"catalogue CSV not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding_errors="replace")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as e:
        raise UserError(f"cannot parse catalogue CSV {path}: {str(e).splitlines()[0]}") from e
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(frame.columns)}")
    relative = frame["image"].str.strip()
    if "item_id" not in frame.columns:
        frame["item_id"] = relative  # the image path is the most stable id a catalogue without ids has
    frame["image"] = [str((path.parent / p).resolve()) if p else "" for p in relative]
    frame["folder"] = str(path.parent.resolve())  # where its images must lie (unless allowed outside)
    for optional in ("description", "semantic_category"):
        if optional not in frame.columns:
            frame[optional] = ""
    frame["source_row"] = [f"{path.name}:{i + 2}" for i in range(len(frame))]
    return frame


def _read_sources(path: str | Path | Mapping[str, str]) -> pd.DataFrame:
    """One CSV, or {split: csv} whose rows get that split."""
    if isinstance(path, Mapping):
        unknown = set(path) - set(SPLITS)
        if unknown:
            raise UserError(
                f"dataset.path has unknown split(s) {sorted(unknown)}; allowed: {', '.join(SPLITS)}"
            )
        frames = [read_csv(Path(p).expanduser()).assign(split=name) for name, p in path.items()]
        return pd.concat(frames, ignore_index=True)
    return read_csv(Path(path).expanduser())


def csv_folder(path: str | Path | Mapping[str, str]) -> Path:
    """The folder of the catalogue's CSV (the common folder of several): where its images lie."""
    sources = path.values() if isinstance(path, Mapping) else [path]
    return Path(os.path.commonpath([str(Path(p).expanduser().resolve().parent) for p in sources]))


def clean_rows(frame: pd.DataFrame, report: LoadReport, allow_outside: bool = False) -> pd.DataFrame:
    """Drop rows without an image file, a category or a unique item_id, and (unless `allow_outside`) rows
    whose image lies outside the CSV's folder (an absolute path, `..` or a symlink out of it); report each
    by reason."""
    frame = frame.map(str.strip)
    keep = []
    seen: set[str] = set()
    for row in frame.itertuples(index=False):
        if not row.category:
            report.skip("empty category", row.source_row)
        elif not row.image:
            report.skip("empty image path", row.source_row)
        elif not allow_outside and not Path(row.image).is_relative_to(row.folder):
            report.skip("image outside the catalogue's folder (dataset.allow_outside=true)", row.source_row)
        elif not Path(row.image).is_file():
            report.skip("missing image", row.image)
        elif not row.item_id or row.item_id in seen:
            report.skip("empty or duplicate item_id", f"{row.source_row} ({row.item_id or 'empty'})")
        else:
            seen.add(row.item_id)
            keep.append(True)
            continue
        keep.append(False)
    return frame[keep]


def load_catalog(
    path: str | Path | Mapping[str, str],
    split: SplitSpec,
    label: str = "category",
    name: str = "catalog",
    allow_outside: bool = False,
) -> ItemTable:
    """Load a catalogue (one CSV, or one CSV per split) into an item table; its images must lie in the
    folder of their CSV unless `allow_outside`."""
    if label not in LABELS:
        raise UserError(f"dataset.label={label!r}; choose one of {', '.join(LABELS)}")
    report = LoadReport()
    frame = clean_rows(_read_sources(path), report, allow_outside).drop(columns=["folder"])
    if frame.empty:
        raise UserError(f"{name}: no usable rows in {path} ({'; '.join(report.lines()) or 'empty file'})")
    if label == "semantic_category" and (frame["semantic_category"] == "").all():
        raise UserError(f"dataset.label=semantic_category but {path} has no semantic_category values")
    frame = frame.assign(
        category_id=frame["category"],
        semantic_category=frame["semantic_category"].mask(
            frame["semantic_category"] == "", frame["category"]
        ),
    )
    items = frame.drop(columns=["source_row"]).set_index("item_id").sort_index()
    labels = items[label]
    if "split" in items.columns:
        splits = column_protocol(labels, items.pop("split"), split)
    elif split.protocol == "column":
        raise UserError(f"dataset.split=column but {path} has no split column (use split=seed)")
    else:
        splits = seed_protocol(labels, split)
    report.log(name)
    return ItemTable(
        name=name, items=items, splits=splits, label_field=label, report=report, root=csv_folder(path)
    )
