"""Gatys et al.'s objective, normalised so one set of weights means the same at any size and for any pair.

With F the C×M activations of a layer (M = H·W pixels):
- Gram:     G = F Fᵀ / (C·M)                            (the paper's FFᵀ, divided by C·M)
- content:  L_c = ‖F − P‖² / ‖P‖²                        (relative error of the photo's activations)
- style:    L_s = Σ_l w_l · ‖G_l − A_l‖² / ‖A_l‖²         (relative error of each layer's Gram; equal w_l by
            default, summing to 1, so style_weight means the same with any layer weights)
- guided:   G = (F·g)(F·g)ᵀ / (C·Σg²) for a region's guide g (Gatys et al. 2017): with a 0/1 guide,
            the plain Gram of the region's pixels; a feathered guide weighs each pixel by g²
- TV:       L_tv = mean(Δx²) + mean(Δy²) with pixels in 0–1 (squared-difference smoothness)
Relative errors make the terms independent of resolution and of how strong a painting's or a photo's
activations are: the Grams of a high-contrast woodcut are 10–20× larger than a pale seascape's and, per
layer, relu4_1's are 10⁴× relu5_1's, so with absolute errors one or two layers carried the style term and
a weight meant more for some paintings. (How stylized a pair ends up at one weight also depended on L-BFGS
scoring pictures outside 0–255, see transfer.in_range; bench/frontier.py measures the spread, README.)
"""

from __future__ import annotations

import torch
from torch import Tensor


def gram(features: Tensor) -> Tensor:
    """Normalised Gram matrix, N×C×C, of N×C×H×W activations."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def guided_gram(features: Tensor, guide: Tensor) -> Tensor:
    """Normalised Gram matrix of N×C×H×W activations seen through an H×W guide (0–1)."""
    n, c, h, w = features.shape
    flat = (features * guide).reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * guide.square().sum())


def relative_error(value: Tensor, target: Tensor) -> Tensor:
    """‖value − target‖² / ‖target‖² (a target of all zeros counts as tiny, not as a division by zero)."""
    return (value - target).square().sum() / target.square().sum().clamp_min(1e-12)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    return relative_error(features, target)


def style_loss(grams: dict[str, Tensor], targets: dict[str, Tensor], weights: Tensor | None = None) -> Tensor:
    """Mean over layers (weighted by `weights`, summing to 1, if given) of the Grams' relative errors."""
    per_layer = torch.stack([relative_error(grams[k], targets[k]) for k in targets])
    return per_layer.mean() if weights is None else per_layer @ weights


def tv_loss(image: Tensor) -> Tensor:
    """Total variation of an N×3×H×W image in 0–255, measured in 0–1 units."""
    x = image / 255
    return (x[..., 1:, :] - x[..., :-1, :]).square().mean() + (x[..., 1:] - x[..., :-1]).square().mean()
