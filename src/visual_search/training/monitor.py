"""Watching a fine-tune: training speed (images per second of the training steps) and the training
curves (validation mAP and loss per epoch) drawn to a PNG in the run folder and sent to W&B."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import matplotlib
import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

CURVES = "curves.png"


class TrainingSpeed(pl.Callback):
    """Logs `train/images_per_s` after every epoch: the images of every training step so far over the
    seconds spent in them (forward, backward, optimiser; loading and validation left out). Over the run,
    not the epoch: a last epoch cut short by `trainer.max_time` is a few steps, not a figure."""

    def __init__(self) -> None:
        self._images, self._seconds, self._start = 0, 0.0, 0.0

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._seconds += time.perf_counter() - self._start
        self._images += len(batch["image"])

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._seconds > 0:
            pl_module.log("train/images_per_s", self._images / self._seconds, sync_dist=True)


class TrainingCurves(pl.Callback):
    """Validation mAP (before training, then after every epoch) and the mean training loss per epoch,
    drawn to `<run folder>/curves.png` after every epoch (a crash keeps the curves so far) and logged to
    W&B as `train/curves` when training ends."""

    def __init__(self, filename: str = CURVES) -> None:
        self.filename = filename
        self.val_map: dict[int, float] = {}  # epochs done: validation mAP
        self.loss: dict[int, float] = {}  # epoch (1-based): mean training loss
        self._loss_sum, self._loss_count = 0.0, 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._loss_sum, self._loss_count = 0.0, 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._loss_sum += float(loss.detach())
            self._loss_count += 1

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = getattr(pl_module, "val_map", None)
        if value is not None:
            done = 0 if trainer.sanity_checking else trainer.current_epoch + 1
            self.val_map[done] = float(value)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._loss_count:
            self.loss[trainer.current_epoch + 1] = self._loss_sum / self._loss_count
        if trainer.is_global_zero:
            self.draw(self.path(trainer))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or not (self.val_map or self.loss):
            return
        path = self.draw(self.path(trainer))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("train/curves", [str(path)])

    def path(self, trainer: pl.Trainer) -> Path:
        return Path(trainer.default_root_dir) / self.filename

    def draw(self, path: Path) -> Path:
        """The two curves side by side, by epochs done."""
        figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
        panels = ((left, self.val_map, "validation mAP"), (right, self.loss, "training loss"))
        for axes, values, title in panels:
            epochs = sorted(values)
            axes.plot(epochs, [values[e] for e in epochs], marker="o")
            axes.set(title=title, xlabel="epochs done")
            axes.grid(alpha=0.3)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=110)
        plt.close(figure)
        return path
