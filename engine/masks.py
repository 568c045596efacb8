"""Spatial and scale control from Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer"
(CVPR 2017).

A mask picture's colours name regions. Each region takes its own style through guided Gram matrices
(the region's guide, carried down to every layer's resolution, weighs the features), or stays the photo
(composited in pixel space). `fine_style` takes the fine layers' Grams (relu1_*, relu2_*) from one
style and the coarser layers' from the others: one painting's brushwork, another's composition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .params import COLOURS, ParamError, Settings

ASPECT_TOLERANCE = 0.02  # a mask more than 2 % off the photo's aspect ratio is refused, not stretched
COLOUR_TOLERANCE = 100.0  # RGB distance (0–255) within which a pixel counts as a listed colour (JPEG noise)
UNMATCHED_LIMIT = 0.05  # share of pixels allowed outside every listed colour (anti-aliased edges)
FINE_BLOCKS = (1, 2)  # VGG blocks whose layers `fine_style` paints


@dataclass(frozen=True)
class Region:
    """One colour of the mask and what it becomes: a style number ('1', '2', …), 'photo' or 'blend'."""

    colour: str
    target: str


def plan(settings: Settings, styles: int, masked: bool) -> tuple[Region, ...]:
    """The regions of a job (none without a mask), checked against the number of style images."""
    if settings.fine_style is not None and styles < 2:
        raise ParamError("fine_style needs two or more style images: one for the brushwork, one for the rest")
    if settings.fine_style is not None and settings.fine_style > styles:
        raise ParamError(f"fine_style={settings.fine_style}, but there are only {styles} style images")
    if not masked:
        return ()
    if settings.regions is not None:
        regions = tuple(Region(c, t) for c, t in settings.regions)
    elif styles > 2:
        raise ParamError(f"with {styles} styles and a mask, say which colour gets which: e.g. regions=red:1,blue:2,"
                         "white:3 (or white:photo)")
    else:
        regions = (Region("white", "1"), Region("black", "2" if styles == 2 else "photo"))
    for region in regions:
        if region.target.isdigit() and int(region.target) > styles:
            raise ParamError(f"regions sends {region.colour} to style {region.target}, but there "
                             f"{'is' if styles == 1 else 'are'} only {styles} style image{'s' if styles > 1 else ''}")
    if all(r.target == "photo" for r in regions):
        raise ParamError("every region of the mask is mapped to photo: nothing would be painted")
    return regions


def check_aspect(mask: Image.Image, picture: Image.Image, what: str) -> None:
    """Masks are scaled to their picture, never stretched: the aspect ratios must agree within 2 %."""
    ratio = (mask.width / mask.height) / (picture.width / picture.height)
    if abs(ratio - 1) > ASPECT_TOLERANCE:
        raise ParamError(f"the {what} is {mask.width}×{mask.height} but its picture is {picture.width}×"
                         f"{picture.height}: their shapes differ by {abs(ratio - 1):.0%} (at most 2 % is allowed)")


def rgb(colour: str) -> tuple[int, int, int]:
    return COLOURS[colour] if colour in COLOURS else tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def labels(mask: Image.Image, colours: list[str], size: tuple[int, int], what: str = "mask") -> Tensor:
    """R×H×W one-hot maps (H×W = `size` reversed) of which listed colour each pixel of `mask` is nearest to.
    Pixels near none of them (beyond COLOUR_TOLERANCE) may be at most UNMATCHED_LIMIT of the picture."""
    shrink = mask.width * mask.height > size[0] * size[1]
    image = mask.convert("RGB").resize(size, Image.Resampling.BOX if shrink else Image.Resampling.NEAREST)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)).reshape(-1, 3)
    palette = torch.tensor([rgb(c) for c in colours], dtype=torch.float32)
    distance, nearest = torch.cdist(pixels, palette).min(dim=1)
    stray = distance > COLOUR_TOLERANCE
    if stray.float().mean() > UNMATCHED_LIMIT:
        common = pixels[stray].round().int().mode(dim=0).values.tolist()
        raise ParamError(f"{stray.float().mean():.0%} of the {what} is none of its colours ({', '.join(colours)}), "
                         f"e.g. #{common[0]:02x}{common[1]:02x}{common[2]:02x} — list it in regions= "
                         "(colour:target, e.g. regions=red:1,blue:2)")
    onehot = F.one_hot(nearest, len(colours)).float().T
    return onehot.reshape(len(colours), size[1], size[0])


def guides(onehot: Tensor, size: tuple[int, int], feather: float) -> Tensor:
    """R×h×w soft guides at a pass's (h, w): one-hot maps scaled down and blurred by a Gaussian of σ =
    feather/2 pixels (so a seam blends over about `feather` pixels); they still sum to 1 everywhere."""
    out = F.interpolate(onehot[None], size=size, mode="area")[0] if onehot.shape[1:] != size else onehot
    sigma = feather / 2
    if sigma < 0.25:
        return out
    radius = min(math.ceil(3 * sigma), min(size) - 1)
    x = torch.arange(-radius, radius + 1, dtype=out.dtype)
    kernel = torch.exp(-x.square() / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(out.device)
    blurred = F.pad(out[:, None], (radius, radius, radius, radius), mode="replicate")
    blurred = F.conv2d(blurred, kernel.view(1, 1, 1, -1))
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1))[:, 0]
    return blurred / blurred.sum(0, keepdim=True).clamp(min=1e-6)


def layer_guides(guide: Tensor, layers: tuple[str, ...], erode: bool) -> dict[str, Tensor]:
    """One h×w guide carried to each layer's resolution (block b: the pass size halved b−1 times, as the
    pooling does). Eroded by one cell per layer, so features whose neighbourhood crosses an edge belong to
    neither side — unless that would leave the region nothing at that layer."""
    out: dict[str, Tensor] = {}
    h, w = guide.shape
    for name in layers:
        scale = 2 ** (int(name.removeprefix("relu").split("_")[0]) - 1)
        g = F.interpolate(guide[None, None], size=(h // scale, w // scale), mode="area")
        if erode:
            eroded = -F.max_pool2d(-g, 3, stride=1, padding=1)
            g = eroded if eroded.sum() >= 1 else g
        out[name] = g[0, 0]
    return out


def mix(region: Region | None, layer: str, blend: Tensor, fine_style: int | None) -> Tensor:
    """Weights over the style images whose Grams make `region`'s target at `layer` (None: no mask)."""
    if fine_style is not None and int(layer.removeprefix("relu").split("_")[0]) in FINE_BLOCKS:
        return F.one_hot(torch.tensor(fine_style - 1), len(blend)).to(blend)
    if region is not None and region.target.isdigit():
        return F.one_hot(torch.tensor(int(region.target) - 1), len(blend)).to(blend)
    weights = blend.clone()
    if fine_style is not None:  # the brushwork style paints the fine layers only
        weights[fine_style - 1] = 0
    if weights.sum() <= 0:
        raise ParamError("style_blend gives the styles other than fine_style no weight")
    return weights / weights.sum()
