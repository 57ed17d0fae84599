"""Training a torchvision detector with Lightning: box datasets, the DataModule and the LightningModule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.ops import box_area, box_iou
from torchvision.transforms import v2 as T

from visual_search.data.images import load_rgb
from visual_search.detect.annotations import BoxSample

Target = dict[str, Tensor]


@dataclass(frozen=True)
class DetectionAugment:
    """Training augmentation (boxes follow the image): flip, colour jitter, zoom out onto a larger canvas."""

    hflip: float = 0.5
    color_jitter: float = 0.2
    zoom_out: float = 0.0  # probability of shrinking the image onto a canvas up to 2x its side


def box_transform(image_size: int, augment: DetectionAugment | None) -> T.Compose:
    """Image + boxes -> float tensor of `image_size` square and its boxes (augmented when given)."""
    steps: list[nn.Module] = []
    if augment is not None:
        if augment.zoom_out > 0:
            steps.append(T.RandomZoomOut(fill=255, side_range=(1.0, 2.0), p=augment.zoom_out))
        jitter = augment.color_jitter
        steps += [T.RandomHorizontalFlip(augment.hflip), T.ColorJitter(jitter, jitter, jitter)]
    steps += [
        T.Resize((image_size, image_size), antialias=True),
        T.ToImage(),
        T.ToDtype(torch.float32, scale=True),
        T.SanitizeBoundingBoxes(),
    ]
    return T.Compose(steps)


class BoxImages(Dataset):
    """Annotated images as (image tensor, {"boxes", "labels"}) at a fixed square size."""

    def __init__(self, samples: Sequence[BoxSample], transform: T.Compose) -> None:
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, Target]:
        sample = self.samples[index]
        image = load_rgb(sample.image)
        boxes = tv_tensors.BoundingBoxes(
            torch.tensor(sample.boxes, dtype=torch.float32).reshape(-1, 4),
            format="XYXY",
            canvas_size=(image.height, image.width),
        )
        labels = torch.tensor(sample.labels, dtype=torch.int64)
        image, target = self.transform(image, {"boxes": boxes, "labels": labels})
        return image, {"boxes": target["boxes"].as_subclass(Tensor), "labels": target["labels"]}


def collate_boxes(batch: list[tuple[Tensor, Target]]) -> tuple[list[Tensor], list[Target]]:
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


class BoxDataModule(pl.LightningDataModule):
    """Train and validation loaders over box annotations."""

    def __init__(
        self,
        train: Sequence[BoxSample],
        val: Sequence[BoxSample],
        image_size: int,
        augment: DetectionAugment,
        batch_size: int = 8,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.train_set = BoxImages(train, box_transform(image_size, augment))
        self.val_set = BoxImages(val, box_transform(image_size, None))
        self.batch_size = batch_size
        self.num_workers = num_workers

    def _loader(self, dataset: BoxImages, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(dataset) > self.batch_size,  # no batch of one for batch norm
            num_workers=self.num_workers,
            collate_fn=collate_boxes,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)


def largest(boxes: Tensor) -> Tensor:
    """The largest box, (1, 4); (0, 4) when there is none."""
    return boxes[box_area(boxes).argmax()][None] if len(boxes) else boxes[:0]


def largest_box_iou(predicted: Tensor, scores: Tensor, truth: Tensor, score_threshold: float) -> float:
    """IoU of the largest confident predicted box with the largest true box (what `largest` crops)."""
    mine, theirs = largest(predicted[scores >= score_threshold]), largest(truth)
    if len(mine) == 0 or len(theirs) == 0:
        return float(len(mine) == len(theirs))
    return float(box_iou(mine, theirs)[0, 0])


class DetectorModule(pl.LightningModule):
    """A torchvision detection model trained on its own summed losses (AdamW, one-cycle schedule).

    `frozen`: submodules kept fixed (no gradients, batch-norm statistics frozen). Validation reports
    `val/largest_iou`: mean IoU of the largest detected box with the largest true box.
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        warmup: float = 0.15,
        score_threshold: float = 0.3,
        frozen: Sequence[nn.Module] = (),
    ) -> None:
        super().__init__()
        self.model = model
        self.lr, self.weight_decay, self.warmup = lr, weight_decay, warmup
        self.score_threshold = score_threshold
        self.frozen = list(frozen)
        for module in self.frozen:
            module.requires_grad_(False)
        self.train()  # Lightning keeps the modes modules start in: models are built in eval mode

    def train(self, mode: bool = True) -> DetectorModule:
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def training_step(self, batch: tuple[list[Tensor], list[Target]], batch_idx: int) -> Tensor:
        images, targets = batch
        losses = self.model(images, targets)
        loss = sum(losses.values())
        self.log("train/loss", loss, prog_bar=True, batch_size=len(images))
        return loss

    def validation_step(self, batch: tuple[list[Tensor], list[Target]], batch_idx: int) -> None:
        images, targets = batch
        outputs = self.model(images)
        ious = [
            largest_box_iou(out["boxes"], out["scores"], target["boxes"], self.score_threshold)
            for out, target in zip(outputs, targets, strict=True)
        ]
        self.log("val/largest_iou", sum(ious) / len(ious), prog_bar=True, batch_size=len(images))

    def configure_optimizers(self) -> dict:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        steps = max(int(self.trainer.estimated_stepping_batches), 1)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=self.lr, total_steps=steps, pct_start=min(self.warmup, 1 - 1 / steps)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def split_samples(samples: Sequence[BoxSample], val_share: float) -> tuple[list[BoxSample], list[BoxSample]]:
    """(train, val): every n-th sample goes to validation (at least one when there are two or more)."""
    if val_share <= 0 or len(samples) < 2:
        return list(samples), []
    step = max(2, math.floor(1 / val_share))
    val = list(samples[step - 1 :: step])
    return [s for i, s in enumerate(samples) if (i + 1) % step], val
