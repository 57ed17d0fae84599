"""Inference runtimes: a torch network as it is, or the same network converted once to OpenVINO or ONNX
Runtime (several times faster at batch 1 on a CPU) and cached on disk, keyed by a digest of its weights,
input shape and precision. A network that fails to convert stays on torch, with one warning.

`compiled` is the one converter (encoders' image and text towers here, detectors' backbones in
`detect`); `convert` puts an encoder on a runtime. The converted encoder keeps on its torch module all
but the networks: the tokenizer, the category head (`classify`), the preprocessing and the weights'
provenance."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from visual_search.encode.base import Encoder
from visual_search.errors import UserError

log = logging.getLogger(__name__)
RUNTIMES = ("torch", "openvino", "onnxruntime")
CACHE_FORMAT = 2  # 2: OpenVINO weights saved as converted (1 compressed them to fp16 on disk)
Runner = Callable[[np.ndarray], list[np.ndarray]]  # a compiled network: input array -> its output arrays


class ImageForward(nn.Module):
    """The encoder's image forward in fp32 (what is converted: the runtime decides its own precision)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, images: Tensor) -> Tensor:
        return self.encoder._maybe_normalize(self.encoder.features(images).float())


class TextForward(nn.Module):
    """The encoder's text tower on token ids, in fp32."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, tokens: Tensor) -> Tensor:
        return self.encoder.encode_tokens(tokens).float()


def network_digest(module: nn.Module, runtime: str, precision: str, example: Tensor, tag: str = "") -> str:
    """What a converted network depends on: every tensor of `module`, its class, the input's shape and
    type, the runtime and precision, and `tag` (settings that are not tensors)."""
    digest = hashlib.blake2b(digest_size=10)
    shape = f"{tuple(example.shape)}:{example.dtype}"
    digest.update(f"{CACHE_FORMAT}:{type(module).__qualname__}:{runtime}:{precision}:{shape}:{tag}".encode())
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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


def dynamic_shape(example: Tensor, dynamic: tuple[int, ...]) -> list[int]:
    """The input shape with the `dynamic` dimensions left free (-1)."""
    return [-1 if i in dynamic else n for i, n in enumerate(example.shape)]


@functools.cache
def openvino_core() -> object:
    """The process's one OpenVINO Core. Its CPU plugin installs its own alternate signal stack on the
    thread that loads it and puts back the previous one when it is unloaded: with a Core per model, freed
    in any order, the thread was left with an unmapped signal stack, and the next signal it handled (a
    child process exiting) killed the process with SIGSEGV."""
    import openvino as ov

    return ov.Core()


def openvino_runner(
    module: nn.Module, example: Tensor, dynamic: tuple[int, ...], path: Path, precision: str
) -> Runner:
    """`module` as a compiled OpenVINO model (converted and saved to `path` once)."""
    import openvino as ov

    core = openvino_core()
    if not path.is_file():
        with root_logger_kept():
            converted = ov.convert_model(
                module, example_input=example, input=[ov.PartialShape(dynamic_shape(example, dynamic))]
            )
        with written_atomically(path) as partial:
            ov.save_model(converted, partial, compress_to_fp16=False)  # the weights as converted
            os.replace(partial.with_suffix(".bin"), path.with_suffix(".bin"))  # the weights, then the graph
    model = core.read_model(path)  # the first process computes as every later one (the same file)
    hint = "bf16" if precision == "bf16" else "f32"
    compiled = core.compile_model(
        model, "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    )
    request = compiled.create_infer_request()
    outputs = compiled.outputs

    def run(inputs: np.ndarray) -> list[np.ndarray]:
        results = request.infer({0: inputs})
        return [results[output] for output in outputs]

    return run


def onnxruntime_runner(
    module: nn.Module, example: Tensor, dynamic: tuple[int, ...], path: Path, precision: str
) -> Runner:
    """`module` as an ONNX Runtime session (exported to `path` once; fp32)."""
    import onnxruntime as ort

    if not path.is_file():
        # with gradients on, attention layers trace as plain operators (their inference fast path has no
        # ONNX export); a module made in inference mode cannot take part in autograd, and has no choice
        grad = not any(p.is_inference() for p in module.parameters())
        with written_atomically(path) as partial, torch.set_grad_enabled(grad):
            torch.onnx.export(
                module,
                (example,),
                str(partial),
                input_names=["input"],
                dynamic_axes={"input": {i: f"d{i}" for i in dynamic}},
                dynamo=False,
            )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda inputs: session.run(None, {"input": inputs})


def compiled(
    module: nn.Module,
    example: Tensor,
    runtime: str,
    cache_dir: str | Path,
    precision: str,
    name: str,
    dynamic: tuple[int, ...] = (0,),
    tag: str = "",
) -> Runner | None:
    """`module` (eval mode) compiled for `runtime` (openvino or onnxruntime) on inputs like `example`
    whose `dynamic` dimensions may vary, converted once into `cache_dir` (file named by `name` and a
    digest); None, with one warning naming `name`, when it cannot be converted."""
    module = module.eval()
    suffix = "xml" if runtime == "openvino" else "onnx"
    path = Path(cache_dir) / f"{name}-{network_digest(module, runtime, precision, example, tag)}.{suffix}"
    reused = path.is_file()
    try:
        with torch.inference_mode(False), torch.no_grad():
            run = (openvino_runner if runtime == "openvino" else onnxruntime_runner)(
                module, example, dynamic, path, precision
            )
    except Exception as error:  # any converter failure: the torch module still works
        log.warning(
            "cannot run %s on %s (%s: %s); running it on torch",
            name, runtime, type(error).__name__, " ".join(str(error).split())[:200],
        )  # fmt: skip
        return None
    log.info("%s on %s (%s %s)", name, runtime, "reused" if reused else "converted to", path)
    return run


def check_runtime(runtime: str, cache_dir: str | Path | None) -> None:
    """A UserError for an unknown runtime, or a converting one without a cache folder."""
    if runtime not in RUNTIMES:
        raise UserError(f"inference.runtime={runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime != "torch" and cache_dir is None:
        raise UserError(
            f"inference.runtime={runtime} needs inference.cache_dir (where converted models live)"
        )


class ConvertedEncoder(Encoder):
    """`encoder` whose image forward (and text tower, when `text` is given) runs on compiled networks."""

    def __init__(self, encoder: Encoder, runtime: str, image: Runner, text: Runner | None = None) -> None:
        super().__init__(encoder.preprocess, encoder.embed_dim, encoder.normalize)
        self.encoder, self.runtime, self._image, self._text = encoder, runtime, image, text
        self.precision, self.weights = encoder.precision, encoder.weights
        self.has_text_tower = encoder.has_text_tower

    def features(self, images: Tensor) -> Tensor:
        raise NotImplementedError("a converted encoder computes whole embeddings (forward)")

    def forward(self, images: Tensor) -> Tensor:
        return as_tensor(self._image(images.float().contiguous().numpy())[0])

    def backbone(self) -> nn.Module:
        return self.encoder.backbone()

    def tokenize(self, texts: list[str]) -> Tensor:
        return self.encoder.tokenize(texts)

    def encode_tokens(self, tokens: Tensor) -> Tensor:
        if self._text is None:
            return self.encoder.encode_tokens(tokens)
        return as_tensor(self._text(tokens.contiguous().numpy())[0])

    def __getattr__(self, name: str) -> object:  # the category head and class names of a fine-tuned one
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("encoder"), name)


def as_tensor(array: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def convert(encoder: Encoder, runtime: str, cache_dir: str | Path | None) -> Encoder:
    """`encoder` on `runtime` (torch: as it is): its image network, and its text tower when it has one,
    converted once into `cache_dir`; on a conversion error, the torch network, with one warning."""
    check_runtime(runtime, cache_dir)
    if runtime == "torch":
        return encoder
    assert cache_dir is not None
    name, size = type(encoder).__name__, encoder.preprocess.input_size
    settings = (runtime, cache_dir, encoder.precision)
    image = compiled(
        ImageForward(encoder), torch.zeros(1, 3, size, size), *settings, name, tag=str(encoder.normalize)
    )
    if image is None:
        return encoder
    text = None
    if encoder.has_text_tower:
        tokens = encoder.tokenize(["a photo"]).cpu()
        text = compiled(TextForward(encoder), tokens, *settings, f"{name}-text", tag=str(encoder.normalize))
    return ConvertedEncoder(encoder, runtime, image, text)
