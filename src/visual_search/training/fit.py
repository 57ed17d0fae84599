"""Fine-tuning as a config describes it: the module, data, callbacks, loggers and Trainer built from the
config, fitted, and the best checkpoint found (train.py and compare.py's fine-tuned approaches)."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from visual_search.data.items import ItemTable
from visual_search.data.transforms import eval_transform, train_transform
from visual_search.errors import UserError
from visual_search.training.module import RetrievalModule, trainable_summary

log = logging.getLogger(__name__)
BEST = "val/mAP_best"  # the best checkpoint's validation mAP: what a hyperparameter search optimises
# Frozen backbone blocks are kept in eval mode on purpose (their batch-norm statistics must not move).
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")


@dataclass(frozen=True)
class Fitted:
    """What fitting left: the trainer's last metrics, the best checkpoint ("" when none was kept), whether
    this process is the one that goes on (rank 0 under DDP), and the seconds it took."""

    metrics: dict[str, float]
    best: str
    is_global_zero: bool
    seconds: float


def plain(cfg: DictConfig) -> dict:
    """A config as plain Python (what the checkpoint keeps as hyperparameters)."""
    return OmegaConf.to_container(cfg, resolve=True)


def fit(cfg: DictConfig, items: ItemTable) -> Fitted:
    """Fine-tune `cfg.encoder` with `cfg.loss` and `cfg.model` on `items` (resuming `cfg.ckpt_path`)."""
    if cfg.ckpt_path is not None and not Path(cfg.ckpt_path).is_file():
        raise UserError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint to resume from")
    start = time.perf_counter()
    module: RetrievalModule = instantiate(
        cfg.model,
        _recursive_=False,  # the encoder and loss configs are built inside, and kept as given
        _convert_="all",
        encoder=plain(cfg.encoder),
        objective=plain(cfg.loss),
        class_names=items.classes,
    )
    log.info("%s: %s", cfg.approach, trainable_summary(module))
    preprocess = module.model.preprocess
    make_data = instantiate(cfg.datamodule, _partial_=True)  # objects can't pass through OmegaConf
    data = make_data(
        items=items,
        eval_transform=eval_transform(preprocess),
        train_transform=train_transform(preprocess, instantiate(cfg.augment)),
    )
    callbacks = [instantiate(callback) for callback in cfg.get("callbacks", {}).values()]
    loggers = [instantiate(logger) for logger in cfg.get("logger", {}).values()]
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    trainer.fit(module, datamodule=data, ckpt_path=cfg.ckpt_path)
    metrics = {key: float(value) for key, value in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best and trainer.is_global_zero:
        score = trainer.checkpoint_callback.best_model_score  # None after DDP spawn: kept by the workers
        if score is not None:
            metrics[BEST] = float(score)
        shown = "see log" if score is None else f"{float(score):.4f}"
        log.info("best checkpoint: %s (val/mAP %s)", best, shown)
    elif not best:
        log.info("no checkpoint was kept (fast_dev_run or no checkpoint callback): nothing to evaluate")
    return Fitted(metrics, best, trainer.is_global_zero, time.perf_counter() - start)
