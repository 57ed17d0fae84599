"""Training objectives: what a batch's embeddings are optimised for (the `loss` config group).

Each objective is built with the embedding size and the number of categories and may own trainable
parameters (a category head, ArcFace's class centres). Objectives with class centres hand them over
(`class_centres`): the checkpoint keeps them as the fine-tuned encoder's category head, which powers
`filter=predicted` after fine-tuning.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from torch import Tensor, nn

Batch = dict[str, Any]


class Objective(nn.Module):
    """Base class: `forward(embeddings, batch, model)` returns the loss of a batch."""

    uses_text = False  # True when the loss needs the items' titles and the model's text tower

    def class_centres(self) -> Tensor | None:
        """The (num_classes, embed_dim) class centres of the objective's category head, else None."""
        return None


class CategoryCrossEntropy(Objective):
    """Cross-entropy on the product category through a normalised-softmax head (cosine logits over a
    temperature; Zhai & Wu, "Classification is a strong baseline for deep metric learning", 2019), so
    the embedding itself is what the classifier separates."""

    def __init__(
        self, embed_dim: int, num_classes: int, temperature: float = 0.05, label_smoothing: float = 0.0
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, embed_dim) * embed_dim**-0.5)
        self.temperature = temperature
        self.label_smoothing = label_smoothing

    def logits(self, embeddings: Tensor) -> Tensor:
        return F.normalize(embeddings, dim=-1) @ F.normalize(self.weight, dim=-1).T / self.temperature

    def class_centres(self) -> Tensor:
        return self.weight

    def forward(self, embeddings: Tensor, batch: Batch, model: nn.Module) -> Tensor:
        return F.cross_entropy(self.logits(embeddings), batch["label"], label_smoothing=self.label_smoothing)


class MetricLoss(Objective):
    """A pytorch-metric-learning loss on the embeddings and category labels, with an optional miner.
    A `criterion` given as a partial (ArcFace, CosFace, ...) is completed with `num_classes` and
    `embedding_size`; such a loss's class weights `W` (embedding_size, num_classes) are its class centres."""

    def __init__(
        self,
        embed_dim: int,
        num_classes: int,
        criterion: nn.Module | functools.partial,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if isinstance(criterion, functools.partial):
            criterion = criterion(num_classes=num_classes, embedding_size=embed_dim)
        self.criterion = criterion
        self.miner = miner

    def class_centres(self) -> Tensor | None:
        weights = getattr(self.criterion, "W", None)
        return weights.T if weights is not None and hasattr(self.criterion, "get_logits") else None

    def forward(self, embeddings: Tensor, batch: Batch, model: nn.Module) -> Tensor:
        labels = batch["label"]
        pairs = self.miner(embeddings, labels) if self.miner is not None else None
        return self.criterion(embeddings, labels, pairs)


class Combined(Objective):
    """Two objectives on the same embeddings, summed: `first` + `weight` x `second`. E.g. a category
    head with a metric loss (the head shapes the classes, the metric loss the distances within and between
    them), or a category head beside CLIP's image-title loss (what the titles teach, without losing the
    categories). The class centres are the first that has them (`filter=predicted`). Both are given as
    partials awaiting the embedding size and the number of classes (the other loss configs)."""

    def __init__(
        self,
        embed_dim: int,
        num_classes: int,
        first: functools.partial,
        second: functools.partial,
        weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.first = first(embed_dim=embed_dim, num_classes=num_classes)
        self.second = second(embed_dim=embed_dim, num_classes=num_classes)
        self.weight = weight
        self.uses_text = self.first.uses_text or self.second.uses_text

    def class_centres(self) -> Tensor | None:
        centres = self.first.class_centres()
        return centres if centres is not None else self.second.class_centres()

    def forward(self, embeddings: Tensor, batch: Batch, model: nn.Module) -> Tensor:
        return self.first(embeddings, batch, model) + self.weight * self.second(embeddings, batch, model)


class ImageTextContrastive(Objective):
    """CLIP's symmetric InfoNCE between each image and its title, with the model's learnable temperature
    (`logit_scale`); under DDP the features of every process are gathered (with gradients)."""

    uses_text = True

    def __init__(self, embed_dim: int, num_classes: int) -> None:
        super().__init__()

    def forward(self, embeddings: Tensor, batch: Batch, model: nn.Module) -> Tensor:
        text = F.normalize(model.encode_text(batch["title"]), dim=-1)
        dist = torch.distributed
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        loss = ClipLoss(gather_with_grad=True, rank=rank, world_size=world)
        scale = model.encoder.model.logit_scale.exp().clamp(max=100)  # the CLIP base encoder's temperature
        return loss(F.normalize(embeddings, dim=-1), text, scale)
