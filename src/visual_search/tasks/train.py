"""`train.py`: fine-tune an encoder with Lightning, keep the best checkpoint, then evaluate it as
evaluate.py evaluates (the same Pipeline and evaluation)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from visual_search.data.build import build_items
from visual_search.data.transforms import eval_transform, train_transform
from visual_search.errors import UserError
from visual_search.evaluation.run import check_settings, evaluate_pipeline
from visual_search.pipeline import Pipeline
from visual_search.training.module import RetrievalModule, trainable_summary

log = logging.getLogger(__name__)
# Frozen backbone blocks are kept in eval mode on purpose (their batch-norm statistics must not move).
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")


def plain(cfg: DictConfig) -> dict:
    """A config as plain Python (what the checkpoint keeps as hyperparameters)."""
    return OmegaConf.to_container(cfg, resolve=True)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, then (with `evaluate_after`) evaluate the best checkpoint; returns the final metrics."""
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.evaluate_after:
        check_settings(cfg)  # before any slow work
    if cfg.ckpt_path is not None and not Path(cfg.ckpt_path).is_file():
        raise UserError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint to resume from")
    items = build_items(cfg)
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
    if not trainer.is_global_zero:
        return metrics
    if not best:
        log.info("no checkpoint was kept (fast_dev_run or no checkpoint callback): nothing to evaluate")
        return metrics
    score = trainer.checkpoint_callback.best_model_score  # None after DDP spawn: kept by the workers
    log.info("best checkpoint: %s (val/mAP %s)", best, "see log" if score is None else f"{float(score):.4f}")
    if not cfg.evaluate_after:
        return metrics
    with open_dict(cfg):
        cfg.checkpoint = best
        cfg.task_name = "evaluate"  # what the loggers call the evaluation's runs
    with Pipeline.from_config(cfg, items) as pipeline:
        return metrics | evaluate_pipeline(pipeline, cfg)
