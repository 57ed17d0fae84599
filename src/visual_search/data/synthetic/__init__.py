"""Deterministic synthetic fashion-product dataset in the on-disk layout of Polyvore Outfits.

Each item is a product silhouette (t-shirt, sneaker, handbag, ...) drawn with PIL primitives on a white
background. Category is carried by *shape* only: colour and pattern are assigned with the same balanced
distribution in every category, so a colour histogram cannot tell categories apart, while the pose, size,
proportions, pattern and outline vary within a category. The writer produces the same files as the real
``polyvore_outfits/`` folder (``images/``, ``polyvore_item_metadata.json``, ``categories.csv``,
``{nondisjoint,disjoint}/{train,valid,test}.json``) plus detector scenes (``scenes/``, ``scenes.json``).

The same :class:`SyntheticSpec` always produces byte-identical files.
"""

from .catalogue import PALETTE
from .categories import TEMPLATES
from .spec import SyntheticSpec, spec_hash
from .writer import ensure_synthetic, generate

__all__ = ["PALETTE", "TEMPLATES", "SyntheticSpec", "ensure_synthetic", "generate", "spec_hash"]
