"""Encoders on OpenVINO and ONNX Runtime: the same embeddings as torch (cosine >= 0.999), any batch size,
converted once and reused from the cache, the fine-tuned head and the text tower kept, and a network that
cannot be converted left on torch with one warning."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from visual_search.encode.finetuned import CategoryHead, FineTunedEncoder
from visual_search.encode.open_clip_encoder import OpenClipEncoder
from visual_search.encode.runtime import ConvertedEncoder, convert
from visual_search.encode.timm_encoder import TimmEncoder
from visual_search.errors import UserError

RUNTIMES = ("openvino", "onnxruntime")


def cosines(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.cosine_similarity(a, b, dim=1).numpy()


@torch.inference_mode()
def embed(encoder: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    return encoder(images)


@pytest.fixture(scope="module")
def timm_encoder() -> TimmEncoder:
    return TimmEncoder(input_size=96).eval()  # the pip ImageNet weights: real features


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_same_embeddings_at_any_batch_size(timm_encoder, runtime, tmp_path):
    converted = convert(timm_encoder, runtime, tmp_path)
    assert isinstance(converted, ConvertedEncoder) and converted.runtime == runtime
    images = torch.randn(5, 3, 96, 96)
    expected = embed(timm_encoder, images)
    assert cosines(embed(converted, images), expected).min() >= 0.999
    assert cosines(embed(converted, images[:1]), expected[:1]).min() >= 0.999  # dynamic batch
    assert converted.weights == timm_encoder.weights and converted.preprocess == timm_encoder.preprocess


def test_a_converted_model_is_reused_from_the_cache(timm_encoder, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="visual_search.encode.runtime")
    images = torch.randn(3, 3, 96, 96)
    first = embed(convert(timm_encoder, "openvino", tmp_path), images)
    (saved,) = tmp_path.glob("*.xml")
    written = saved.stat().st_mtime_ns
    again = embed(convert(timm_encoder, "openvino", tmp_path), images)
    assert "converted to" in caplog.text and f"reused {saved}" in caplog.text
    assert saved.stat().st_mtime_ns == written
    assert torch.equal(first, again)  # the file holds the weights as converted, not rounded to fp16
    with torch.no_grad():
        next(timm_encoder.parameters()).mul_(1.0)  # the same weights: the same file
    other = TimmEncoder(weights=None, input_size=96).eval()  # other weights: another model
    convert(other, "openvino", tmp_path)
    assert len(list(tmp_path.glob("*.xml"))) == 2


def test_a_fine_tuned_encoder_keeps_its_head(timm_encoder, tmp_path):
    tuned = FineTunedEncoder(
        timm_encoder, ["a", "b"], projection_dim=16, head=CategoryHead(torch.randn(2, 16))
    )
    tuned.eval()
    converted = convert(tuned, "openvino", tmp_path)
    images = torch.randn(3, 3, 96, 96)
    expected = embed(tuned, images)
    got = embed(converted, images)
    assert cosines(got, expected).min() >= 0.999 and converted.can_classify
    assert converted.classify(got.numpy()).tolist() == tuned.classify(expected.numpy()).tolist()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_both_towers_of_a_clip_model_are_converted(runtime, tmp_path):
    clip = OpenClipEncoder("ViT-S-32", input_size=64)  # random init: the plumbing
    converted = convert(clip, runtime, tmp_path)
    images = torch.randn(2, 3, 64, 64)
    assert cosines(embed(converted, images), embed(clip, images)).min() >= 0.999
    texts = ["a hat", "a red leather handbag with a gold clasp", "shoes"]  # any batch, any length
    with torch.inference_mode():
        assert cosines(converted.encode_text(texts), clip.encode_text(texts)).min() >= 0.999
        assert cosines(converted.encode_text(texts[:1]), clip.encode_text(texts[:1])).min() >= 0.999
    assert converted.has_text_tower and converted._text is not None


class Untraceable(TimmEncoder):
    """An encoder no converter can trace."""

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            raise RuntimeError("this network cannot be traced")
        return super().features(images)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_network_that_cannot_be_converted_stays_on_torch(runtime, tmp_path, caplog):
    encoder = Untraceable(weights=None, input_size=64).eval()
    assert convert(encoder, runtime, tmp_path) is encoder
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name.endswith("runtime")]
    assert len(warnings) == 1 and f"cannot run Untraceable on {runtime}" in warnings[0].getMessage()


def test_bad_runtime_settings_are_user_errors(timm_encoder, tmp_path):
    assert convert(timm_encoder, "torch", None) is timm_encoder
    with pytest.raises(UserError, match=r"inference\.runtime='tensorrt'"):
        convert(timm_encoder, "tensorrt", tmp_path)
    with pytest.raises(UserError, match=r"needs inference\.cache_dir"):
        convert(timm_encoder, "openvino", None)


def test_models_freed_in_any_order_leave_signal_handling_intact(tmp_path):
    """OpenVINO's CPU plugin swaps the thread's alternate signal stack when it loads and swaps it back
    when it unloads: with a Core per model, freeing two models in creation order left an unmapped stack,
    and the next SIGCHLD killed the process (as it killed the test suite). Its own process: a crash
    here must not take pytest with it."""
    script = textwrap.dedent(f"""
        import faulthandler, gc, signal, subprocess, sys
        from visual_search.encode.runtime import ConvertedEncoder, convert
        from visual_search.encode.timm_encoder import TimmEncoder
        faulthandler.enable()  # an alternate signal stack, as pytest installs
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, as torch's DataLoader installs
        first = convert(TimmEncoder(weights=None, input_size=32).eval(), "openvino", {str(tmp_path)!r})
        second = convert(TimmEncoder(weights=None, input_size=48).eval(), "openvino", {str(tmp_path)!r})
        assert isinstance(first, ConvertedEncoder) and isinstance(second, ConvertedEncoder)
        del first; gc.collect()
        del second; gc.collect()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        print("survived")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "survived" in done.stdout, done.stderr[-2000:]
