"""Embeddings cached on disk, so evaluating again does not embed the gallery again.

An entry is one image's embedding, keyed by what it depends on:

- the model: the encoder's class, output size, inference precision and every weight and buffer (so a
  fine-tuned checkpoint, other pretrained weights or a random init are other models), and the image
  transform (input size, resize, normalisation); each model gets its own folder,
  `<cache_dir>/<Encoder>-<digest>/`;
- the image: its path, size in bytes and modification time (an edited or replaced file is embedded
  again; an unchanged one is read back), and the box it is cut to when it is cropped (with the squaring).

Entries are stored in shards (`shard-<digest>.npz`, at most `shard_size` embeddings each, written
atomically), one per chunk of work, so a run that dies loses at most the chunk it was embedding and the
next run embeds only what is missing. Entries of images that changed stay behind unused: delete a
model's folder (or the whole cache) to reclaim the space.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

KEY_BYTES = 16


def encoder_fingerprint(encoder: torch.nn.Module) -> str:
    """A digest of the encoder's class, output size, normalisation, inference precision and runtime, and
    every tensor of its state (weights, buffers)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(type(encoder).__qualname__.encode())
    settings = [getattr(encoder, name, None) for name in ("embed_dim", "normalize", "precision", "runtime")]
    digest.update(repr(settings).encode())
    for name, tensor in encoder.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def image_keys(
    paths: Sequence[str], boxes: Sequence[Sequence[int] | None] | None = None, square: bool = False
) -> np.ndarray:
    """One 16-byte key per image: its path, size and modification time (a missing file gets a key that
    is never stored: it cannot be embedded), and its crop box (None: the whole image) cut `square`."""
    keys = np.empty(len(paths), dtype=f"S{KEY_BYTES}")
    for i, path in enumerate(paths):
        try:
            stat = os.stat(path)
            state = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            state = "missing"
        box = None if boxes is None else boxes[i]
        region = "" if box is None else f"\0{list(box)}:{'square' if square else 'as is'}"
        keys[i] = hashlib.blake2b(f"{path}\0{state}{region}".encode(), digest_size=KEY_BYTES).digest()
    return keys


class EmbeddingCache:
    """The embeddings of one model (encoder + transform) under `root`, looked up by image key."""

    def __init__(
        self, root: str | Path, encoder: torch.nn.Module, transform: object, shard_size: int
    ) -> None:
        if shard_size < 1:
            raise ValueError(f"shard_size={shard_size}: expected a positive number of embeddings per shard")
        model = hashlib.blake2b(digest_size=8)
        model.update(encoder_fingerprint(encoder).encode())
        model.update(repr(transform).encode())
        self.folder = Path(root) / f"{type(encoder).__name__}-{model.hexdigest()}"
        self.shard_size = shard_size
        self.dim = int(getattr(encoder, "embed_dim", 0))

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found: bool per key, their embeddings in key order) from every shard of this model."""
        wanted = set(keys.tolist())
        stored: dict[bytes, np.ndarray] = {}
        for shard in sorted(self.folder.glob("shard-*.npz")):
            try:
                with np.load(shard) as contents:
                    shard_keys, shard_embeddings = contents["keys"], contents["embeddings"]
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:  # damaged: embed again
                log.warning("ignoring unreadable embedding cache shard %s (%s)", shard, error)
                continue
            for key, embedding in zip(shard_keys.tolist(), shard_embeddings, strict=True):
                if key in wanted:
                    stored.setdefault(key, embedding)
        found = np.array([key in stored for key in keys.tolist()], dtype=bool)
        vectors = [stored[key] for key in keys.tolist() if key in stored]
        return found, np.stack(vectors) if vectors else np.empty((0, self.dim), np.float32)

    def add(self, keys: np.ndarray, embeddings: np.ndarray) -> None:
        """Store embeddings, at most `shard_size` per shard, each shard written atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(keys), self.shard_size):
            chunk_keys = keys[start : start + self.shard_size]
            name = hashlib.blake2b(chunk_keys.tobytes(), digest_size=8).hexdigest()
            path = self.folder / f"shard-{name}.npz"
            partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
            np.savez(partial, keys=chunk_keys, embeddings=embeddings[start : start + self.shard_size])
            os.replace(partial, path)
