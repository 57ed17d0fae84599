"""Embedding crops: detect (or take the user's box), crop, then embed, for the gallery and the queries.

Batch-offline for a catalogue: every image is detected once while indexing and its box kept beside the
item (`boxes.csv` in the run folder). On demand for queries: `CropTransform` detects and crops inside the
per-query transform, so the one-at-a-time timing pays for detection as a user's query would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.ops import box_iou
from tqdm.auto import tqdm

from visual_search.data.datamodule import ItemImages, RetrievalDataModule, collate_skipping
from visual_search.data.images import ImageLoadError, load_rgb
from visual_search.data.items import ItemTable
from visual_search.data.transforms import Transform
from visual_search.detection import boxes as B
from visual_search.detection.base import Detections, Detector, NoDetector
from visual_search.detection.crop import check_policy, crop, cut, select_boxes
from visual_search.detection.scenes import QUERY_SOURCES, dataset_folder, scene_queries
from visual_search.encoders.base import Encoder
from visual_search.errors import UserError
from visual_search.evaluation.embed import Embedded, embed_loader, embed_split

log = logging.getLogger(__name__)

BOX_COLUMNS = ("x0", "y0", "x1", "y1")
USER_BOXES = (None, "ground_truth")


@dataclass(frozen=True)
class CropSettings:
    """How boxes become crops: `policy`, `padding` (share of the box added on each side), `square` (pad
    crops to squares), whether the gallery is cropped too, and `user_box` (ground_truth: each scene
    query's true target box)."""

    policy: str = "largest"
    padding: float = 0.0
    square: bool = True
    gallery: bool = False
    user_box: str | None = None

    def __post_init__(self) -> None:
        check_policy(self.policy)
        if self.policy == "all":
            raise UserError(
                "crop.policy=all (one query per object) is for serving; evaluate one crop per query"
            )
        if self.user_box not in USER_BOXES:
            raise UserError(f"crop.user_box={self.user_box!r}; choose null or ground_truth")

    def check_queries(self, queries: str) -> None:
        """UserError unless `queries` names a query source these settings can crop."""
        if queries not in QUERY_SOURCES:
            raise UserError(f"queries={queries!r}; choose one of {', '.join(QUERY_SOURCES)}")
        if self.user_box and queries != "scenes":
            raise UserError(f"crop.user_box={self.user_box} needs queries=scenes (their boxes are known)")

    def describe(self, detector: Detector) -> str:
        """One line for the leaderboard: detector, policy, padding, what is cropped."""
        cropped = [] if isinstance(detector, NoDetector) else [self.policy, f"padding {self.padding}"]
        if cropped and self.gallery:
            cropped.append("gallery cropped")
        if self.user_box:
            cropped.append(f"user box: {self.user_box}, padding {self.padding}")
        return ", ".join([detector.name, *cropped])


def detect_frame(
    detector: Detector,
    paths: Sequence[str],
    settings: CropSettings,
    user_boxes: Sequence[Sequence[float] | None] | None = None,
    batch_size: int = 32,
    desc: str = "detect",
) -> pd.DataFrame:
    """One crop box per image (`x0, y0, x1, y1` in pixels, `source`: user | detected | whole, and the
    image's `width` and `height`), detected in batches; unreadable images get no box (the embedding step
    skips and reports them)."""
    rows: list[dict[str, Any]] = [{"source": "unreadable"} for _ in paths]
    with tqdm(total=len(paths), desc=desc, unit="img", dynamic_ncols=True) as bar:
        for start in range(0, len(paths), batch_size):
            images: dict[int, Image.Image] = {}
            for i in range(start, min(start + batch_size, len(paths))):
                try:
                    images[i] = load_rgb(paths[i])
                except ImageLoadError:
                    continue
            wanted = [i for i in images if user_boxes is None or user_boxes[i] is None]
            found = dict(zip(wanted, detector.detect_batch([images[i] for i in wanted]), strict=True))
            for i, image in images.items():
                user_box = None if user_boxes is None else user_boxes[i]
                detections = found.get(i, Detections())
                boxes, source = select_boxes(
                    detections, *image.size, settings.policy, settings.padding, user_box
                )
                box = dict(zip(BOX_COLUMNS, boxes[0], strict=True))
                rows[i] = box | {"source": source, "width": image.width, "height": image.height}
            bar.update(min(batch_size, len(paths) - start))
    return pd.DataFrame(rows, columns=[*BOX_COLUMNS, "source", "width", "height"])


def _crop_then(image: Image.Image, box: tuple[int, ...], square: bool, transform: Transform) -> torch.Tensor:
    return transform(cut(image, box, square))


class CroppedImages(ItemImages):
    """`ItemImages` (same samples) with each image cropped to its row's box before the transform."""

    def __init__(
        self, frame: pd.DataFrame, boxes: pd.DataFrame, transform: Transform, square: bool = False
    ) -> None:
        super().__init__(frame, transform)
        self.square = square
        self.boxes = [tuple(int(v) for v in row) for row in boxes[list(BOX_COLUMNS)].fillna(0).to_numpy()]
        self.final_transform = transform

    def __getitem__(self, index: int) -> dict[str, Any]:
        box = self.boxes[index]
        self.transform = partial(_crop_then, box=box, square=self.square, transform=self.final_transform)
        return super().__getitem__(index)


def embed_cropped(
    encoder: Encoder,
    frame: pd.DataFrame,
    detector: Detector,
    settings: CropSettings,
    transform: Transform,
    batch_size: int = 32,
    num_workers: int = 0,
    user_boxes: Sequence[Sequence[float] | None] | None = None,
    desc: str = "query",
) -> tuple[Embedded, pd.DataFrame]:
    """Detect, crop and embed the images of `frame` (timed together); returns the embedded rows and every
    row's crop box."""
    start = time.perf_counter()
    paths = frame["image"].tolist()
    boxes = detect_frame(detector, paths, settings, user_boxes, batch_size, f"{desc} ({detector.name})")
    boxes.index = frame.index
    loader = DataLoader(
        CroppedImages(frame, boxes, transform, settings.square),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_skipping,
    )
    embeddings, rows = embed_loader(encoder, loader, desc)
    seconds = time.perf_counter() - start
    return Embedded(frame.iloc[rows.numpy()], embeddings.numpy(), seconds), boxes


class CropTransform:
    """Detect, crop, then apply `transform`: the on-demand path of one query (image -> encoder input)."""

    def __init__(self, detector: Detector, settings: CropSettings, transform: Transform) -> None:
        self.detector, self.settings, self.transform = detector, settings, transform

    def __call__(self, image: Image.Image) -> torch.Tensor:
        settings = self.settings
        detections = self.detector.detect(image)
        (region, *_) = crop(image, detections, settings.policy, settings.padding, square=settings.square)
        return self.transform(region.image)


def crop_transform(detector: Detector, settings: CropSettings, transform: Transform) -> Callable:
    """`transform` alone without a detector, else `CropTransform`."""
    return transform if isinstance(detector, NoDetector) else CropTransform(detector, settings, transform)


def embed_for_evaluation(
    encoder: Encoder,
    data: RetrievalDataModule,
    items: ItemTable,
    detector: Detector,
    settings: CropSettings,
    queries: str,
    dataset_cfg: DictConfig,
) -> tuple[Embedded, Embedded, pd.DataFrame]:
    """The gallery and the queries as evaluate.py embeds them, and every crop box (`split` column).

    `queries`: items (the query split) or scenes (the synthetic outfit scenes, see `scenes.py`). With a
    detector the gallery is cropped too when `settings.gallery` (batch-offline), and so are the queries.
    """
    settings.check_queries(queries)
    options = {
        "transform": data.eval_transform,
        "batch_size": data.batch_size,
        "num_workers": data.num_workers,
    }
    boxes = {}
    if isinstance(detector, NoDetector) or not settings.gallery:
        gallery = embed_split(encoder, data, "gallery")
    else:
        gallery, boxes["gallery"] = embed_cropped(
            encoder, data.frame("gallery"), detector, settings, desc="gallery", **options
        )
    if queries == "items" and isinstance(detector, NoDetector):
        return gallery, embed_split(encoder, data, "query"), pd.DataFrame()
    frame = data.frame("query")
    if queries == "scenes":
        folder = dataset_folder(dataset_cfg)
        if folder is None:
            raise UserError("queries=scenes needs a dataset folder with synthetic scenes (dataset=synthetic)")
        frame = scene_queries(folder, items)
    user_boxes = frame["box"].tolist() if settings.user_box == "ground_truth" else None
    query, boxes["query"] = embed_cropped(
        encoder, frame, detector, settings, user_boxes=user_boxes, desc=f"{queries} queries", **options
    )
    return gallery, query, pd.concat(boxes, names=["split"]).reset_index()


def crop_quality(boxes: pd.DataFrame, queries: pd.DataFrame, padding: float) -> dict[str, float]:
    """How well the query crops found the scene targets: mean IoU of each crop with the target's true box
    padded alike (1 = the true box exactly), and the share of crops with IoU >= 0.5. Empty without true
    boxes (item queries)."""
    if "box" not in queries or "split" not in boxes:
        return {}
    crops = boxes[boxes["split"] == "query"].set_index("item_id").loc[queries.index]
    truth = torch.cat(
        [
            B.pad(box, padding, width, height)
            for box, width, height in zip(queries["box"], crops["width"], crops["height"], strict=True)
        ]
    )
    iou = box_iou(torch.tensor(crops[list(BOX_COLUMNS)].to_numpy(dtype="float32")), truth).diagonal()
    found = {"crop_iou": float(iou.mean()), "crop_iou>=0.5": float((iou >= 0.5).float().mean())}
    log.info(
        "query crops vs the true target boxes: mean IoU %.4f, %.1f%% with IoU >= 0.5",
        found["crop_iou"], 100 * found["crop_iou>=0.5"],
    )  # fmt: skip
    return found
