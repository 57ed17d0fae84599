"""Shared handling of the `weights` / `pretrained` arguments of the encoders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor


def local_weights_file(value: str, arg: str, known_names: Iterable[str] = ()) -> Path:
    """Return `value` as an existing file, or raise an error naming the argument `arg`.

    A value that looks like a path (has a directory part or a suffix) gives FileNotFoundError;
    anything else is taken as an unknown weights name and gives ValueError listing `known_names`.
    """
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if path.suffix or len(path.parts) > 1:
        raise FileNotFoundError(f"{arg}={value!r}: no such weights file")
    names = ", ".join(repr(name) for name in known_names) or "none"
    raise ValueError(f"{arg}={value!r} is neither a known weights name (known: {names}) nor an existing file")


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Read a state dict saved by `torch.save`, bare or in a checkpoint dict under "state_dict"."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state dict, got {type(obj).__name__}")
    return dict(obj)


def without_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries of `state_dict` whose key does not start with `prefix` (e.g. a classifier head)."""
    return {key: value for key, value in state_dict.items() if not key.startswith(prefix)}
