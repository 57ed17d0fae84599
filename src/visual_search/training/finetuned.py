"""The fine-tuned encoder: a base encoder, an optional learned projection and the training objective's
head; it is what evaluate.py and serve.py load from a training checkpoint."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from visual_search.encoders.base import Encoder
from visual_search.training.objectives import Objective


class FineTunedEncoder(Encoder):
    """`encoder`'s features, projected to `projection_dim` when set (a learned alternative to PCA), then
    L2-normalised like the base encoder's. `objective` travels with it: its category head (if any)
    predicts categories (`classify`), named by `class_names`."""

    def __init__(
        self,
        encoder: Encoder,
        objective: Objective,
        class_names: list[str],
        projection_dim: int | None = None,
    ) -> None:
        embed_dim = projection_dim or encoder.embed_dim
        super().__init__(encoder.preprocess, embed_dim, encoder.normalize)
        self.encoder = encoder
        self.projection = nn.Linear(encoder.embed_dim, projection_dim) if projection_dim else nn.Identity()
        self.objective = objective
        self.class_names = list(class_names)
        self.has_text_tower = encoder.has_text_tower

    def features(self, images: Tensor) -> Tensor:
        return self.projection(self.encoder.features(images))

    def backbone(self) -> nn.Module:
        return self.encoder.backbone()

    def encode_text(self, texts: list[str]) -> Tensor:
        """Text embeddings from the base encoder's text tower."""
        return self.encoder.encode_text(texts)

    @property
    def logit_scale(self) -> Tensor:
        """The image-text temperature of a CLIP base encoder."""
        return self.encoder.model.logit_scale

    @property
    def can_classify(self) -> bool:
        """True when the objective has a category head."""
        return self.objective.logits(torch.zeros(1, self.embed_dim)) is not None

    @torch.inference_mode()
    def classify(self, embeddings: np.ndarray) -> np.ndarray:
        """Index into `class_names` of the most likely category of each embedding (needs a head)."""
        logits = self.objective.logits(torch.from_numpy(np.asarray(embeddings, dtype=np.float32)))
        if logits is None:
            raise ValueError(f"{type(self.objective).__name__} has no category head")
        return logits.argmax(dim=1).numpy()
