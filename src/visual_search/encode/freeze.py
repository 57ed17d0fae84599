"""Freeze all but the last N blocks of a backbone (the seed's "last N layers unfrozen").

A *block* is a child module with parameters, in forward (registration) order, where containers
(`nn.Sequential`, `nn.ModuleList`) and single-child wrappers are opened up recursively. So:

- torchvision ResNet-50: conv1, bn1, then its 16 bottlenecks (layer1: 3, layer2: 4, layer3: 6, layer4: 3)
  = 18 blocks. The seed unfroze the last 75 of Keras' 175 ResNet-50 layers, i.e. conv5 and the last four
  blocks of conv4: `unfreeze_last=7` here (layer3[2:] + layer4).
- timm tf_efficientnet_lite0: conv_stem, bn1, 16 inverted-residual blocks, conv_head, bn2 = 20 blocks.
- open_clip ViT: conv1, ln_pre, the transformer's residual blocks, ln_post; its loose parameters
  (class/positional embeddings, projection) train whenever any block does.
"""

from __future__ import annotations

from torch import nn


def _has_parameters(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def _opens_up(module: nn.Module) -> bool:
    """Containers, and wrappers holding a single parameterised child and no parameters of their own."""
    if isinstance(module, (nn.Sequential, nn.ModuleList)):
        return True
    own = next(module.parameters(recurse=False), None)
    return own is None and sum(_has_parameters(child) for child in module.children()) == 1


def blocks(module: nn.Module) -> list[nn.Module]:
    """The blocks of `module` in forward order (see the module docstring)."""
    out: list[nn.Module] = []
    for child in module.children():
        if _has_parameters(child):
            out.extend(blocks(child) if _opens_up(child) else [child])
    return out


def unfreeze_last(module: nn.Module, n: int) -> list[nn.Module]:
    """Make only the last `n` blocks trainable (n < 0: all; 0: none). Parameters `module` holds itself
    (embeddings, projections) train whenever n != 0. Returns the frozen blocks: keep them in eval mode so
    their batch-norm statistics stay put."""
    found = blocks(module)
    n = len(found) if n < 0 else min(n, len(found))
    module.requires_grad_(n > 0)
    frozen = found[: len(found) - n]
    for block in frozen:
        block.requires_grad_(False)
    return frozen
