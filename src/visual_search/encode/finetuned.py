"""The fine-tuned encoder as inference uses it: a base encoder, an optional learned projection and, when
its training objective had one, a category head (class centres); no training state."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from visual_search.encode.base import Encoder


class CategoryHead(nn.Module):
    """A cosine classifier: the class whose centre is closest in angle to the embedding. What a category
    head (normalised softmax) or ArcFace's class centres predict: their logits are scaled cosines."""

    def __init__(self, centres: Tensor) -> None:
        super().__init__()
        self.register_buffer("centres", F.normalize(centres.detach().float(), dim=-1))

    def forward(self, embeddings: Tensor) -> Tensor:
        """Cosine of each embedding (B, D) with each class centre: (B, num_classes)."""
        return F.normalize(embeddings, dim=-1) @ self.centres.T


class FineTunedEncoder(Encoder):
    """`encoder`'s features, projected to `projection_dim` when set (a learned alternative to PCA), then
    L2-normalised like the base encoder's. `head` (class centres over `class_names`, when the training
    objective had them) predicts categories (`classify`)."""

    def __init__(
        self,
        encoder: Encoder,
        class_names: list[str],
        projection_dim: int | None = None,
        head: CategoryHead | None = None,
    ) -> None:
        embed_dim = projection_dim or encoder.embed_dim
        super().__init__(encoder.preprocess, embed_dim, encoder.normalize)
        self.encoder = encoder
        self.projection = nn.Linear(encoder.embed_dim, projection_dim) if projection_dim else nn.Identity()
        self.class_names = list(class_names)
        self.head = head
        self.has_text_tower = encoder.has_text_tower

    def features(self, images: Tensor) -> Tensor:
        return self.projection(self.encoder.features(images))

    def backbone(self) -> nn.Module:
        return self.encoder.backbone()

    def tokenize(self, texts: list[str]) -> Tensor:
        return self.encoder.tokenize(texts)

    def encode_tokens(self, tokens: Tensor) -> Tensor:
        """Text embeddings from the base encoder's text tower."""
        return self.encoder.encode_tokens(tokens)

    @property
    def can_classify(self) -> bool:
        """True when the encoder has a category head."""
        return self.head is not None

    @torch.inference_mode()
    def classify(self, embeddings: np.ndarray) -> np.ndarray:
        """Index into `class_names` of the most likely category of each embedding (needs a head)."""
        if self.head is None:
            raise ValueError("this fine-tuned encoder has no category head")
        return self.head(torch.from_numpy(np.asarray(embeddings, dtype=np.float32))).argmax(dim=1).numpy()
