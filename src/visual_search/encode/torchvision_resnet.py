"""torchvision ResNet-family encoders: global-average-pooled features (2048-d for ResNet-50)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models import WeightsEnum

from visual_search.data.transforms import Preprocess
from visual_search.encode.base import Encoder
from visual_search.encode.weights import (
    RANDOM,
    check_download,
    file_provenance,
    local_weights_file,
    read_state_dict,
    without_prefix,
)


class TorchvisionResNetEncoder(Encoder):
    """A torchvision model with an `fc` head (ResNet, ResNeXt, Wide ResNet) whose `fc` is an Identity.

    `weights`: None = random init; a torchvision weights name of `arch` such as "IMAGENET1K_V2" or
    "DEFAULT" (downloaded by torchvision, needs network); anything else = a local file holding a state
    dict of the model (with or without the `fc` keys) or a checkpoint with it under "state_dict". Both
    kinds go through the same strict `load_state_dict`. `input_size` (None: 224 or the weights' crop)
    keeps the resize/crop ratio. The encoder is constructed in eval mode.
    """

    def __init__(
        self,
        arch: str = "resnet50",
        weights: str | None = None,
        input_size: int | None = None,
        normalize: bool = True,
    ) -> None:
        model = create_backbone(arch)
        embed_dim = model.fc.in_features
        model.fc = nn.Identity()
        preprocess, provenance = (
            (Preprocess(), RANDOM) if weights is None else load_weights(model, arch, weights)
        )
        super().__init__(preprocess.with_input_size(input_size), embed_dim=embed_dim, normalize=normalize)
        self.model = model
        self.weights = provenance
        self.eval()

    def features(self, images: Tensor) -> Tensor:
        """Globally average-pooled features of the last stage."""
        return self.model(images)


def create_backbone(arch: str) -> nn.Module:
    """A randomly initialised torchvision `arch` with its `fc` linear head."""
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(f"arch={arch!r} is not a torchvision classification model")
    model = torchvision.models.get_model(arch, weights=None)
    if not isinstance(getattr(model, "fc", None), nn.Linear):
        raise ValueError(f"arch={arch!r} has no `fc` linear head (use a ResNet-family model)")
    return model


def load_weights(model: nn.Module, arch: str, weights: str) -> tuple[Preprocess, str]:
    """Load `weights` strictly into `model` (any `fc` keys dropped); return the preprocessing they expect
    and where they came from (the torchvision name, or the file)."""
    source = resolve_weights(arch, weights)
    if isinstance(source, WeightsEnum):
        cached = (Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(source.url).path).name).is_file()
        check_download("weights", weights, urlparse(source.url).hostname or "", cached)
        state_dict, preprocess = source.get_state_dict(progress=False), preprocess_from_weights(source)
        provenance = f"{arch} {source.name} (torchvision)"
    else:
        state_dict, preprocess, provenance = read_state_dict(source), Preprocess(), file_provenance(source)
    model.load_state_dict(without_prefix(state_dict, "fc."))
    return preprocess, provenance


def resolve_weights(arch: str, weights: str) -> WeightsEnum | Path:
    """The torchvision weights named `weights` for `arch`, or else the local file it names."""
    known = torchvision.models.get_model_weights(arch)
    if weights in known.__members__:
        return known[weights]
    return local_weights_file(weights, "weights", known.__members__)


def preprocess_from_weights(weights: WeightsEnum) -> Preprocess:
    """`Preprocess` matching the evaluation transforms published with torchvision weights."""
    transforms = weights.transforms()
    return Preprocess(
        input_size=transforms.crop_size[0],
        resize_size=transforms.resize_size[0],
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        interpolation=transforms.interpolation.value,
    )
