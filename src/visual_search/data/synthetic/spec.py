"""The dataset specification: :class:`SyntheticSpec`, its validation and its stable hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .categories import TEMPLATES

_FORMAT_VERSION = 1  # bump when the generator's output changes, so cached datasets are regenerated


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and seed of a synthetic dataset; every field is validated on construction."""

    num_categories: int = 20
    items_per_category: int = 150
    image_size: int = 128
    num_outfits: int = 600
    num_scenes: int = 200
    scene_size: int = 256
    seed: int = 0
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        bounds = {
            "num_categories": (2, len(TEMPLATES)),
            "items_per_category": (1, 100_000),
            "image_size": (32, 2048),
            "num_outfits": (0, 1_000_000),
            "num_scenes": (0, 1_000_000),
            "scene_size": (64, 4096),
            "seed": (0, 2**63 - 1),
            "jpeg_quality": (1, 100),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"SyntheticSpec.{name} must be an integer in [{low}, {high}], got {value!r}")


def as_spec(spec: SyntheticSpec | Mapping[str, Any]) -> SyntheticSpec:
    if isinstance(spec, SyntheticSpec):
        return spec
    if isinstance(spec, Mapping):
        return SyntheticSpec(**dict(spec))
    raise TypeError(f"spec must be a SyntheticSpec or a mapping of its fields, got {type(spec).__name__}")


def spec_hash(spec: SyntheticSpec) -> str:
    """Short stable hash of the spec's fields (and the generator's format version)."""
    payload = json.dumps({"format_version": _FORMAT_VERSION, **dataclasses.asdict(spec)}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]
