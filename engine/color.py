"""Colour control from Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer" (2017).

Images here are 3×H×W float tensors in RGB 0–255.
"""

from __future__ import annotations

import torch
from torch import Tensor

_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                            [0.595716, -0.274453, -0.321263],
                            [0.211456, -0.522591, 0.311135]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _apply(matrix: Tensor, image: Tensor) -> Tensor:
    return torch.einsum("ij,jhw->ihw", matrix.to(image), image)


def to_yiq(image: Tensor) -> Tensor:
    return _apply(_RGB_TO_YIQ, image)


def to_rgb(yiq: Tensor) -> Tensor:
    return _apply(_YIQ_TO_RGB, yiq)


def luminance(image: Tensor, like: Tensor | None = None) -> Tensor:
    """The luminance Y as a 3-channel grey image; with `like`, Y's mean and std matched to like's Y
    (the paper's step so that the style's brightness distribution does not overrule the content's)."""
    y = to_yiq(image)[0]
    if like is not None:
        ref = to_yiq(like)[0]
        y = (y - y.mean()) / (y.std() + 1e-5) * ref.std() + ref.mean()
    return y.expand(3, -1, -1).clone()


def recombine(luma: Tensor, chroma_from: Tensor) -> Tensor:
    """Output luminance (channel mean of a grey result) with the I and Q channels of `chroma_from`."""
    yiq = to_yiq(chroma_from)
    yiq[0] = to_yiq(luma)[0]
    return to_rgb(yiq).clamp(0, 255)


def match_histogram(source: Tensor, target: Tensor, eps: float = 1e-2) -> Tensor:
    """Recolour `source` so its colour mean and covariance equal `target`'s: x' = A(x − μ_s) + μ_t with
    A = L_t L_s⁻¹ from the Cholesky factors of the covariances (so A Σ_s Aᵀ = Σ_t)."""
    src = source.reshape(3, -1).double()
    tgt = target.reshape(3, -1).double()
    mu_s, mu_t = src.mean(1, keepdim=True), tgt.mean(1, keepdim=True)
    eye = eps * torch.eye(3, dtype=src.dtype, device=src.device)
    chol_s = torch.linalg.cholesky(torch.cov(src) + eye)
    chol_t = torch.linalg.cholesky(torch.cov(tgt) + eye)
    a = chol_t @ torch.linalg.inv(chol_s)
    out = a @ (src - mu_s) + mu_t
    return out.reshape(source.shape).to(source.dtype).clamp(0, 255)
