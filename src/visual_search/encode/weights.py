"""Shared handling of the `weights` / `pretrained` arguments of the encoders: local files, downloads that
cannot happen (one line naming the ways out, at once, instead of a library's retries), and where an
encoder's weights came from (`provenance`, recorded with every result)."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor

from visual_search.errors import UserError

RANDOM = "random"  # the provenance of weights nobody trained: announced, and marked in every output
REACH_TIMEOUT_S = 3.0


def file_provenance(path: str | Path) -> str:
    """`file:<name> <digest>` of a local weights file (its first 8 hex digits of blake2b)."""
    digest = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"file:{Path(path).name} {digest.hexdigest()[:8]}"


def reachable(host: str, timeout_s: float = REACH_TIMEOUT_S) -> bool:
    """Whether `host` accepts an HTTPS connection within `timeout_s` (name lookup included)."""
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def check_download(arg: str, value: str, host: str, cached: bool) -> None:
    """UserError now, in one line with the ways out, when `arg=value` names weights that must come from
    `host` and neither a cached copy nor the host is there (offline, a firewall)."""
    if cached or reachable(host):
        return
    raise UserError(
        f"encoder.{arg}={value}: these weights are downloaded from {host}, which cannot be reached, and no "
        f"copy is cached; give a local file (encoder.{arg}=/path/to/weights), encoder.{arg}=null for "
        "random weights, or an encoder whose weights ship with pip (encoder=efficientnet_lite0, "
        "or encoder=clip_effl0_minilm for an offline CLIP)"
    )


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
