"""Box annotations to train a detector on: COCO-format JSON files, or the synthetic outfit scenes.

Synthetic scenes (`scenes.json` beside `scenes/`; each scene lists its items with `box` = x0, y0, x1, y1
in scene pixels and names the largest as `target_item_id`) are split once and for all by a hash of their
id: half train detectors, the other half are the scene queries of the evaluation, so a trained detector
never sees the scenes it is evaluated on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from visual_search.errors import UserError

SCENES_FILE = "scenes.json"
QUERY_SHARE = 0.5  # share of the scenes kept out of detector training: the evaluation's scene queries
OBJECT = "object"  # the one class of a class-agnostic detector


@dataclass(frozen=True)
class BoxSample:
    """One image and its objects: pixel boxes `x0, y0, x1, y1` and class labels (1-based; 0 = background)."""

    key: str
    image: Path
    boxes: list[list[float]]
    labels: list[int]


@dataclass(frozen=True)
class BoxAnnotations:
    """Annotated images, the class names (`classes[label]`, `classes[0]` = background) and the file read."""

    samples: list[BoxSample]
    classes: list[str]
    source: Path

    def fingerprint(self) -> str:
        """Digest of the annotation file's bytes (what a cached detector was trained on)."""
        return hashlib.sha256(self.source.read_bytes()).hexdigest()[:16]


def is_query_scene(scene_id: str) -> bool:
    """Whether a scene is an evaluation query (never used to train a detector): a stable hash of its id."""
    digest = int(hashlib.sha256(scene_id.encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < QUERY_SHARE


def read_scene_records(root: str | Path) -> list[dict]:
    """The scene records of a synthetic dataset folder; UserError when it has none."""
    path = Path(root) / SCENES_FILE
    if not path.is_file():
        raise UserError(f"{path} not found: scene queries and detector training need the synthetic scenes")
    return json.loads(path.read_text(encoding="utf-8"))


def read_scenes(root: str | Path, class_agnostic: bool = True) -> BoxAnnotations:
    """The training scenes (not the query scenes) of a synthetic dataset folder as box annotations;
    classes are the item categories, or one `object` class when `class_agnostic`."""
    root = Path(root)
    records = [r for r in read_scene_records(root) if not is_query_scene(r["scene_id"])]
    names = sorted({item["category_id"] for r in records for item in r["items"]})
    classes = ["background", OBJECT] if class_agnostic else ["background", *names]
    samples = [
        BoxSample(
            key=r["scene_id"],
            image=root / r["image"],
            boxes=[[float(v) for v in item["box"]] for item in r["items"]],
            labels=[1 if class_agnostic else classes.index(item["category_id"]) for item in r["items"]],
        )
        for r in records
    ]
    return BoxAnnotations(samples, classes, root / SCENES_FILE)


def read_coco(
    path: str | Path, images: str | Path | None = None, class_agnostic: bool = True
) -> BoxAnnotations:
    """A COCO-format detection file (`images`, `annotations` with `bbox` = x, y, w, h, `categories`);
    image `file_name`s are relative to `images` (default: the file's folder). Crowd boxes are skipped;
    images without boxes are kept as negatives."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"COCO annotation file not found: {path}")
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
        categories = sorted(coco["categories"], key=lambda c: c["id"])
        image_rows, annotations = coco["images"], coco["annotations"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a COCO detection file ({type(e).__name__}: {e})") from e
    folder = Path(images).expanduser() if images is not None else path.parent
    classes = ["background", OBJECT] if class_agnostic else ["background", *(c["name"] for c in categories)]
    label_of = {c["id"]: 1 if class_agnostic else i + 1 for i, c in enumerate(categories)}
    boxes: dict[int, list[tuple[list[float], int]]] = {row["id"]: [] for row in image_rows}
    for a in annotations:
        x, y, w, h = (float(v) for v in a["bbox"])
        if not a.get("iscrowd", 0) and w > 0 and h > 0 and a["category_id"] in label_of:
            boxes.setdefault(a["image_id"], []).append(([x, y, x + w, y + h], label_of[a["category_id"]]))
    samples = [
        BoxSample(
            key=str(row["id"]),
            image=folder / row["file_name"],
            boxes=[b for b, _ in boxes[row["id"]]],
            labels=[label for _, label in boxes[row["id"]]],
        )
        for row in image_rows
    ]
    if not samples:
        raise UserError(f"{path}: no images")
    return BoxAnnotations(samples, classes, path)
