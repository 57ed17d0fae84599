"""Box annotations to train a detector on: COCO-format JSON files, or the training half of the synthetic
outfit scenes (the other half are the evaluation's scene queries: see `data.scenes`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from visual_search.data.scenes import SCENES_FILE, is_query_scene, read_scene_records
from visual_search.errors import UserError

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
