"""Inference runtimes for image encoders: the torch module as it is, or the same network converted once to
OpenVINO or ONNX Runtime (several times faster at batch 1 on a CPU) and cached on disk, keyed by a digest
of its weights, input size and precision. A network that fails to convert stays on torch, with one warning.

The converted encoder keeps everything but the image forward on its torch module: the text tower
(`encode_text`), the category head (`classify`), the preprocessing and the weights' provenance."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from visual_search.encode.base import Encoder
from visual_search.errors import UserError

log = logging.getLogger(__name__)
RUNTIMES = ("torch", "openvino", "onnxruntime")


class ImageForward(nn.Module):
    """The encoder's image forward in fp32 (what is converted: the runtime decides its own precision)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, images: Tensor) -> Tensor:
        return self.encoder._maybe_normalize(self.encoder.features(images).float())


def model_digest(encoder: Encoder, runtime: str, precision: str) -> str:
    """What a converted model depends on: every tensor of the encoder, its class, input size, precision."""
    digest = hashlib.blake2b(digest_size=10)
    size = encoder.preprocess.input_size
    digest.update(f"{type(encoder).__qualname__}:{runtime}:{precision}:{size}:{encoder.normalize}".encode())
    for name, tensor in encoder.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class ConvertedEncoder(Encoder):
    """`encoder` whose image forward runs on a converted network (`run`: batch of images -> embeddings)."""

    def __init__(self, encoder: Encoder, runtime: str, run: object) -> None:
        super().__init__(encoder.preprocess, encoder.embed_dim, encoder.normalize)
        self.encoder, self.runtime, self._run = encoder, runtime, run
        self.precision, self.weights = encoder.precision, encoder.weights
        self.has_text_tower = encoder.has_text_tower

    def features(self, images: Tensor) -> Tensor:
        raise NotImplementedError("a converted encoder computes whole embeddings (forward)")

    def forward(self, images: Tensor) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(self._run(images.float().contiguous().numpy())))

    def backbone(self) -> nn.Module:
        return self.encoder.backbone()

    def encode_text(self, texts: list[str]) -> Tensor:
        return self.encoder.encode_text(texts)

    def __getattr__(self, name: str) -> object:  # the category head and class names of a fine-tuned one
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("encoder"), name)


@contextmanager
def written_atomically(path: Path) -> Iterator[Path]:
    """A path in a private folder beside `path` to write to; on success it replaces `path`, so processes
    converting the same model at once never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    try:
        partial = folder / path.name
        yield partial
        os.replace(partial, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def root_logger_kept() -> Iterator[None]:
    """Undo what a converter does to the root logger (OpenVINO's sets its level and adds a filter and a
    handler, which would silence this program's own records from then on)."""
    root = logging.getLogger()
    level, filters, handlers = root.level, list(root.filters), list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.filters[:] = filters
        root.handlers[:] = handlers


def openvino_runner(encoder: Encoder, path: Path, precision: str) -> object:
    """The encoder as a compiled OpenVINO model (converted and saved to `path` once)."""
    import openvino as ov

    core = ov.Core()
    if path.is_file():
        model = core.read_model(path)
    else:
        size = encoder.preprocess.input_size
        with root_logger_kept():
            model = ov.convert_model(
                ImageForward(encoder).eval(),
                example_input=torch.zeros(1, 3, size, size),
                input=[ov.PartialShape([-1, 3, size, size])],
            )
        with written_atomically(path) as partial:
            ov.save_model(model, partial)
            os.replace(partial.with_suffix(".bin"), path.with_suffix(".bin"))  # the weights, then the graph
    hint = "bf16" if precision == "bf16" else "f32"
    compiled = core.compile_model(
        model, "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    )
    request = compiled.create_infer_request()
    return lambda images: request.infer({0: images})[compiled.output(0)]


def onnxruntime_runner(encoder: Encoder, path: Path, precision: str) -> object:
    """The encoder as an ONNX Runtime session (exported to `path` once)."""
    import onnxruntime as ort

    if not path.is_file():
        size = encoder.preprocess.input_size
        with written_atomically(path) as partial:
            torch.onnx.export(
                ImageForward(encoder).eval(),
                (torch.zeros(1, 3, size, size),),
                str(partial),
                input_names=["images"],
                output_names=["embeddings"],
                dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
                dynamo=False,
            )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda images: session.run(None, {"images": images})[0]


def convert(encoder: Encoder, runtime: str, cache_dir: str | Path | None) -> Encoder:
    """`encoder` on `runtime` (torch: as it is), converted once into `cache_dir`; on a conversion error,
    `encoder` itself, with one warning."""
    if runtime not in RUNTIMES:
        raise UserError(f"inference.runtime={runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime == "torch":
        return encoder
    if cache_dir is None:
        raise UserError(
            f"inference.runtime={runtime} needs inference.cache_dir (where converted models live)"
        )
    suffix = "xml" if runtime == "openvino" else "onnx"
    path = (
        Path(cache_dir)
        / f"{type(encoder).__name__}-{model_digest(encoder, runtime, encoder.precision)}.{suffix}"
    )
    reused = path.is_file()
    try:
        with torch.inference_mode(False), torch.no_grad():
            run = (openvino_runner if runtime == "openvino" else onnxruntime_runner)(
                encoder, path, encoder.precision
            )
    except Exception as error:  # any converter failure: the torch module still works
        log.warning(
            "cannot run %s on %s (%s: %s); running it on torch",
            type(encoder).__name__, runtime, type(error).__name__, " ".join(str(error).split())[:200],
        )  # fmt: skip
        return encoder
    log.info(
        "%s on %s (%s %s)", type(encoder).__name__, runtime, "reused" if reused else "converted to", path
    )
    return ConvertedEncoder(encoder, runtime, run)
