"""open_clip (CLIP-family) image encoders, with the text tower available through `encode_text`."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import open_clip
from torch import Tensor

from visual_search.encoders.base import Encoder, Preprocess
from visual_search.encoders.weights import local_weights_file


class OpenClipEncoder(Encoder):
    """Image embeddings of an open_clip model (`encode_image`), e.g. 512-d for ViT-B-32.

    `pretrained`: None = random init; an open_clip tag of `model_name` such as "laion2b_s34b_b79k"
    (downloaded, needs network); anything else = a local checkpoint file, which open_clip loads through
    the same strict path as a downloaded one (`require_pretrained=True`, so nothing loads silently).

    `input_size` (None: the model's native size) rebuilds the image tower for that size
    (`force_image_size`): ViT positional embeddings are interpolated by open_clip when pretrained weights
    load; ModifiedResNet models (RN50, ...) only load pretrained weights at their native size.
    `preprocess` is open_clip's evaluation transform: resize the shorter side to `input_size`, then
    centre-crop (models whose `resize_mode` is "squash" or "longest" are approximated by that).
    The encoder is constructed in eval mode.
    """

    has_text_tower = True

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = None,
        input_size: int | None = None,
        normalize: bool = True,
    ) -> None:
        config = model_config(model_name)
        check_input_size(model_name, config, pretrained, input_size)
        model = open_clip.create_model(
            model_name,
            pretrained=resolve_pretrained(model_name, pretrained),
            force_image_size=input_size,
            require_pretrained=pretrained is not None,
        )
        super().__init__(preprocess_from_cfg(model.visual.preprocess_cfg), config["embed_dim"], normalize)
        self.model_name = model_name
        self.model = model
        self.eval()

    def features(self, images: Tensor) -> Tensor:
        """Unnormalised image embeddings (`encode_image`)."""
        return self.model.encode_image(images)

    def encode_text(self, texts: list[str]) -> Tensor:
        """Text embeddings (B, embed_dim) in the image embedding space, L2-normalised when `normalize`."""
        device = next(self.parameters()).device
        return self._maybe_normalize(self.model.encode_text(self.tokenizer(texts).to(device)))

    @cached_property
    def tokenizer(self) -> Any:
        """open_clip's tokenizer for the model (made on first use: CLIP's ships its vocabulary)."""
        return open_clip.get_tokenizer(self.model_name)


def model_config(model_name: str) -> dict[str, Any]:
    """open_clip's built-in configuration of `model_name`."""
    config = open_clip.get_model_config(model_name)
    if config is None:
        raise ValueError(f"model_name={model_name!r} is not an open_clip model (see open_clip.list_models())")
    return config


def resolve_pretrained(model_name: str, pretrained: str | None) -> str | None:
    """`pretrained` as open_clip takes it: a known tag as is, otherwise an existing local file path."""
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if pretrained is None or pretrained in tags:
        return pretrained
    return str(local_weights_file(pretrained, "pretrained", tags))


def check_input_size(
    model_name: str, config: dict[str, Any], pretrained: str | None, size: int | None
) -> None:
    """Refuse a non-native `size` for pretrained ModifiedResNet towers (their attention pool is fixed)."""
    native = config["vision_cfg"].get("image_size")
    is_modified_resnet = isinstance(config["vision_cfg"].get("layers"), (list, tuple))
    if pretrained is not None and is_modified_resnet and size not in (None, native):
        raise ValueError(f"input_size={size}: pretrained {model_name} only loads at its native size {native}")


def preprocess_from_cfg(cfg: dict[str, Any]) -> Preprocess:
    """`Preprocess` from open_clip's `visual.preprocess_cfg` (resize shorter side to the crop size)."""
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][-1]
    return Preprocess(
        input_size=size,
        resize_size=size,
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        interpolation=cfg["interpolation"],
    )
