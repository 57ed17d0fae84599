"""Fine-tuned encoders in training checkpoints: what train.py's checkpoints hold for inference, and how
an inference model is rebuilt from one (without the training objective or optimiser)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import Tensor

from visual_search.encode.finetuned import CategoryHead, FineTunedEncoder
from visual_search.errors import UserError

MODEL_PREFIX = "model."  # the training module's inference model (its state dict keys)
CENTRES = "category_centres"  # checkpoint entry: the class centres of the objective's category head
WEIGHT_KEYS = ("weights", "pretrained", "image_weights")  # encoder arguments naming initial weights
# Where checkpoints written before CENTRES existed kept them: the objective inside the model.
LEGACY_CENTRES = {"model.objective.weight": False, "model.objective.criterion.W": True}  # key: transposed


def load_finetuned(path: str | Path) -> FineTunedEncoder:
    """The fine-tuned encoder of a training checkpoint (eval mode), rebuilt from the checkpoint alone:
    the base encoder is created without its initial weights, then every weight comes from the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint={path}: no such file (train.py writes them under outputs/train/)")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    if "encoder" not in hparams or "state_dict" not in checkpoint:
        raise UserError(f"checkpoint={path} is not a visual-search training checkpoint")
    base = instantiate({**hparams["encoder"], **{k: None for k in WEIGHT_KEYS if k in hparams["encoder"]}})
    model = FineTunedEncoder(base, hparams["class_names"], hparams.get("projection_dim"))
    model.load_state_dict(model_weights(checkpoint["state_dict"]))
    centres = checkpoint.get(CENTRES)
    if centres is None:
        centres = legacy_centres(checkpoint["state_dict"])
    if centres is not None:
        model.head = CategoryHead(centres)
    run = path.parent.parent.name if path.parent.name == "checkpoints" else path.parent.name
    model.weights = f"checkpoint:{run}/{path.name}"
    return model.eval()


def model_weights(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The inference model's weights in a training module's state dict."""
    return {
        key.removeprefix(MODEL_PREFIX): value
        for key, value in state_dict.items()
        if key.startswith(MODEL_PREFIX) and not key.startswith(f"{MODEL_PREFIX}objective.")
    }


def legacy_centres(state_dict: Mapping[str, Any]) -> Tensor | None:
    """Class centres of a checkpoint whose model still carried its training objective."""
    for key, transposed in LEGACY_CENTRES.items():
        if key in state_dict:
            return state_dict[key].T if transposed else state_dict[key]
    return None
