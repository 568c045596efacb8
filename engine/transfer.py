"""The objective Stylize optimises: VGG-19 content activations of a photo and Gram statistics of paintings.

Gatys, Ecker & Bethge (CVPR 2016), run coarse-to-fine as in Gatys et al. (CVPR 2017): solve at a low
resolution, upsample the result as the start of the next scale, re-optimise with that scale's targets.
This module holds what a job is scored by — picture sizes per pass, the targets, the losses, the spatial
control — and the values that travel (Progress, Result, errors); engine.batch runs the optimisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from . import color, masks
from .losses import content_loss, gram, guided_gram, style_loss, tv_loss
from .params import ParamError, Settings
from .vgg import VGG19

MIN_SIDE = 32  # short side of coarse passes and styles: relu5_1 sees 2×2 cells here
MIN_VGG_SIDE = 16  # four 2×2 poolings down to relu5_1 need this much; the output's short side may go this low
RANGE_WEIGHT = 10.0  # pull of L-BFGS's out-of-range pixels back into 0–255; see in_range


class EngineError(RuntimeError):
    """A job failed for a reason the user can act on; str(e) says how."""


class Cancelled(EngineError):
    def __init__(self) -> None:
        super().__init__("the job was cancelled")


class OutOfMemory(EngineError):
    pass


# An extra term beside the objective: picture being optimised (1×3×H×W) -> (name, unweighted loss, weight).
# animate.py's temporal loss is one; its value is reported in the losses under that name.
Penalty = Callable[[Tensor], tuple[str, Tensor, float]]


class Losses(Mapping[str, float]):
    """A step's losses by name, kept on the device until somebody reads them: then all at once, one
    device→host copy (the optimiser never waits for the host; a progress display that shows no loss
    costs nothing)."""

    def __init__(self, values: Mapping[str, Tensor | float]) -> None:
        self._names = tuple(values)
        self._tensors = tuple(torch.as_tensor(v).detach().float().reshape(()) for v in values.values())
        self._read: dict[str, float] | None = None

    def _values(self) -> dict[str, float]:
        if self._read is None:
            numbers = torch.stack(self._tensors).tolist() if self._tensors else []
            self._read = dict(zip(self._names, numbers))
        return self._read

    def __getitem__(self, name: str) -> float:
        return self._values()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return repr(self._values())


@dataclass(frozen=True)
class Progress:
    """A snapshot for progress displays; `preview` is set at epoch ends when settings.preview is on."""

    step: int
    total: int
    scale: int  # 1-based index of the current coarse-to-fine pass
    scales: int
    size: tuple[int, int]  # (width, height) being optimised now
    losses: Mapping[str, float]  # read from the device only when looked at (see Losses)
    elapsed: float
    preview: Image.Image | None = None

    @property
    def eta(self) -> float | None:
        """Seconds left, extrapolated from the pace so far (coarse steps are cheaper, so this errs high)."""
        return self.elapsed / self.step * (self.total - self.step) if self.step else None


@dataclass(frozen=True)
class Result:
    image: Image.Image
    settings: Settings  # as run: seed and precision filled in
    device: str
    elapsed: float
    steps: int
    losses: dict[str, float] = field(default_factory=dict)
    frames: tuple[Image.Image, ...] = ()  # settings.timelapse: the start, each progress report, the result


def pick_device(name: str | None = None) -> torch.device:
    """The requested device, else CUDA, else Apple's MPS, else the CPU."""
    if name and name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_precision(precision: str, dev: torch.device) -> str:
    """'auto' means bf16 where the CPU computes it natively (measured 1.5× faster per step at 1 % higher
    loss on an AVX512-BF16 CPU, see README), fp32 elsewhere. On an H200, bf16 made the 512 px job 16 %
    faster but one yardstick's median 2.8 % worse (bench/gpu.py, docs/benchmarks.md): not chosen by auto."""
    if precision != "auto":
        return precision
    native_bf16 = dev.type == "cpu" and torch.cpu._is_avx512_bf16_supported()
    return "bf16" if native_bf16 else "fp32"


def to_tensor(image: Image.Image, long_side: int | None = None) -> Tensor:
    """RGB PIL image -> 3×H×W float tensor in 0–255, optionally resized so its longest side is long_side."""
    image = image.convert("RGB")
    if long_side is not None:
        image = image.resize(fit(image.size, long_side), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)


def to_image(tensor: Tensor) -> Image.Image:
    array = tensor.detach().clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def fit(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(width, height) scaled so the longer one is long_side, keeping the aspect ratio."""
    w, h = size
    ratio = long_side / max(w, h)
    return max(1, round(w * ratio)), max(1, round(h * ratio))


def scale_sizes(long_side: int, scales: int, shape: tuple[int, int] = (1, 1)) -> list[int]:
    """Long sides of the coarse-to-fine passes for a photo of `shape` (width, height): halving from the
    output size; a coarse pass whose short side would fall below MIN_SIDE is left out."""
    coarse = [round(long_side / 2**i) for i in reversed(range(1, scales))]
    return [s for s in coarse if min(fit(shape, s)) >= MIN_SIDE] + [long_side]


def style_side(shape: tuple[int, int], long_side: int, style_scale: float) -> int:
    """Long side of a style picture of `shape` in a pass at `long_side`: long_side × style_scale,
    raised where needed so that the style's short side is at least MIN_SIDE."""
    return max(round(long_side * style_scale), math.ceil(MIN_SIDE * max(shape) / min(shape)))


@dataclass(frozen=True)
class Painted:
    """What a job paints at its last, largest pass: the output's (width, height), and the long side of its
    style pictures (a square one's: the most pixels; a thinner one keeps MIN_SIDE across, see style_side)."""

    content: tuple[int, int]
    style: int


def painted(settings: Settings, shape: tuple[int, int] = (1, 1)) -> Painted:
    """The sizes a job of `settings` paints for a photo of `shape` (width, height; square while it is not
    known), by the formulas `_run` paints with: what caps and the memory model judge."""
    long_side = settings.long_side(shape)
    return Painted(fit(shape, long_side), style_side((1, 1), long_side, settings.style_scale))


def check_shape(shape: tuple[int, int], long_side: int, what: str = "That picture") -> None:
    """Refuse a picture that would be too thin for VGG at `long_side`, naming the widest aspect ratio that works."""
    short = min(fit(shape, long_side))
    if short < MIN_VGG_SIDE:
        raise EngineError(f"{what} is too narrow: at size={long_side} its short side would be {short} px, and I "
                          f"need at least {MIN_VGG_SIDE} — send one no wider than {long_side / MIN_VGG_SIDE:g}:1, "
                          "or ask for a larger size")


def split_steps(steps: int, passes: int) -> list[int]:
    """Spread `steps` evenly over the passes (coarse passes cost a fraction of the last)."""
    return [steps // passes + (1 if i < steps % passes else 0) for i in range(passes)]


@dataclass
class Area:
    """One painted part of the picture: its share of the pixels, its guide at each style layer (None:
    the whole picture, plain Grams) and the Grams it should have there."""

    share: float
    guides: dict[str, Tensor] | None
    grams: dict[str, Tensor]


class Targets:
    """Content activations and each area's style Grams at one scale; computed once, reused every step.
    `keep`/`fill` composite the photo into regions mapped to photo (image·keep + fill)."""

    def __init__(self, vgg: VGG19, content: Tensor, styles: list[Tensor], settings: Settings,
                 mixes: list[dict[str, Tensor]], areas: list[tuple[float, dict[str, Tensor] | None]],
                 style_guides: list[dict[str, Tensor] | None], photo: Tensor | None = None):
        layers = settings.style_layers
        with torch.no_grad():
            self.content = vgg(content[None], settings.content_layers, settings.pooling)
            grams = []
            for style, guide in zip(styles, style_guides):
                feats = vgg(style[None], layers, settings.pooling)
                grams.append({k: gram(feats[k]) if guide is None else guided_gram(feats[k], guide[k]) for k in layers})
            self.areas = [Area(share, g, {k: sum(w * s[k] for w, s in zip(m[k], grams) if w) for k in layers})
                          for m, (share, g) in zip(mixes, areas)]
        raw = torch.tensor(settings.style_layer_weights or (1.0,) * len(layers), device=content.device)
        self.layer_weights = raw / raw.sum()
        self.keep = None if photo is None else 1 - photo
        self.fill = None if photo is None else content * photo

    def composite(self, image: Tensor) -> Tensor:
        return image if self.keep is None else image * self.keep + self.fill


def in_range(image: Tensor) -> tuple[Tensor, Tensor]:
    """The picture L-BFGS's variable stands for (clamped to 0–255), and a pull back into range.

    L-BFGS has no bounds: scored on the variable itself it left up to a third of a woodcut's pixels
    outside 0–255 (−114…393), and the clamp when saving doubled the style error the user got. Scored on
    the clamped picture, going out of range gains nothing; the quadratic pull (mean squared excursion in
    0–1 units, zero inside) brings strays back, so none stays stuck where the clamp has no gradient.
    Clamping the variable between steps instead would corrupt L-BFGS's curvature pairs; a sigmoid
    reparametrisation saturated after an overshoot and stayed there (a 64 px run's style loss stuck at
    ~20× its start)."""
    inside = image.clamp(0, 255)
    return inside, ((image - inside) / 255).square().mean()


def vgg_features(vgg: VGG19, image: Tensor, settings: Settings) -> dict[str, Tensor]:
    """The activations the losses read, in fp32 whatever the trunk ran in (a batch: N×C×H×W each)."""
    with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=settings.precision == "bf16",
                        cache_enabled=False):  # a cache kept across a CUDA graph's capture breaks its replays
        feats = vgg(image, settings.content_layers + settings.style_layers, settings.pooling)
    return {k: v.float() for k, v in feats.items()}  # losses and Grams in fp32 whatever the trunk ran in


def weighted_losses(feats: dict[str, Tensor], image: Tensor, targets: Targets, settings: Settings
            ) -> tuple[Tensor, dict[str, Tensor]]:
    """One picture's weighted objective and its parts, from its activations `feats`."""
    content_layers, style_layers = settings.content_layers, settings.style_layers
    parts = {
        "content": sum(content_loss(feats[k], targets.content[k]) for k in content_layers) / len(content_layers),
        "style": sum(area.share * style_loss({k: gram(feats[k]) if area.guides is None else
                                              guided_gram(feats[k], area.guides[k]) for k in style_layers},
                                             area.grams, targets.layer_weights) for area in targets.areas),
        "tv": tv_loss(image),
    }
    total = (settings.content_weight * parts["content"] + settings.style_weight * parts["style"]
             + settings.tv_weight * parts["tv"])
    return total, parts


def objective(vgg: VGG19, image: Tensor, targets: Targets, settings: Settings) -> tuple[Tensor, dict[str, Tensor]]:
    """The weighted objective and its parts for one picture (its photo regions composited in)."""
    image = targets.composite(image)
    return weighted_losses(vgg_features(vgg, image, settings), image, targets, settings)


@dataclass(frozen=True)
class Control:
    """A job's spatial control: its regions, their one-hot maps at the output size, the style masks."""

    regions: tuple[masks.Region, ...]
    mixes: tuple[dict[str, Tensor], ...]  # per painted region (or the whole picture): style weights per layer
    labels: Tensor | None
    style_masks: tuple[Image.Image | None, ...]

    def areas(self, content: Tensor, settings: Settings, dev: torch.device
              ) -> tuple[list[tuple[float, dict[str, Tensor] | None]], Tensor | None, Tensor | None]:
        """At one pass: (share, layer guides) of each painted region, the photo regions' guide, hard labels."""
        if self.labels is None:
            return [(1.0, None)], None, None
        soft = masks.guides(self.labels, content.shape[1:], settings.feather * max(content.shape) / settings.size)
        layers, erode = settings.style_layers, settings.erode
        painted = [(soft[i].mean().item(),
                    {k: g.to(dev) for k, g in masks.layer_guides(soft[i], layers, erode).items()})
                   for i, r in enumerate(self.regions) if r.target != "photo"]
        photo = [soft[i] for i, r in enumerate(self.regions) if r.target == "photo"]
        return painted, (sum(photo).to(dev) if photo else None), soft.argmax(0)

    def style_guides(self, styles: list[Tensor], settings: Settings, dev: torch.device
                     ) -> list[dict[str, Tensor] | None]:
        """Each style's mask (white: use this part) carried to the style layers, or None for all of it."""
        return [None if m is None else {k: g.to(dev) for k, g in masks.layer_guides(
                    masks.labels(m, ["white", "black"], (s.shape[2], s.shape[1]), "style mask")[0],
                    settings.style_layers, settings.erode).items()}
                for m, s in zip(self.style_masks, styles)]


def control_of(content: Image.Image, styles: list[Image.Image], settings: Settings, blend: tuple[float, ...],
             mask: Image.Image | None, style_masks: Sequence[Image.Image | None] | None) -> Control:
    regions = masks.plan(settings, len(styles), mask is not None)
    blend_t = torch.tensor(blend) / sum(blend)
    mixes = tuple({k: masks.mix(r, k, blend_t, settings.fine_style) for k in settings.style_layers}
                  for r in [r for r in regions if r.target != "photo"] or [None])
    style_masks = tuple(style_masks or (None,) * len(styles))
    if len(style_masks) != len(styles):
        raise ParamError(f"{len(style_masks)} style masks for {len(styles)} style images")
    for index, (style_mask, style) in enumerate(zip(style_masks, styles), start=1):
        if style_mask is not None:
            masks.check_aspect(style_mask, style, f"mask of style {index}")
    if mask is None:
        return Control(regions, mixes, None, style_masks)
    masks.check_aspect(mask, content, "mask")
    labels = masks.labels(mask, [r.colour for r in regions], fit(content.size, settings.size))
    return Control(regions, mixes, labels, style_masks)


def colours_for(style: int, content: Tensor, hard: Tensor | None, control: Control,
                 mixes: list[dict[str, Tensor]]) -> Tensor:
    """The photo's pixels (3×N) a style's colours are matched to: those of the regions it paints."""
    if hard is None:
        return content
    painted = [i for i, r in enumerate(control.regions) if r.target != "photo"]
    uses = [i for i, mix in zip(painted, mixes) if any(m[style] > 0 for m in mix.values())]
    inside = torch.isin(hard, torch.tensor(uses, dtype=hard.dtype))
    return content[:, inside] if inside.sum() >= 16 else content


def finished_picture(image: Tensor, full_content: Tensor, luminance_only: bool) -> Image.Image:
    """The optimised tensor as a picture; in luminance mode, recombined with the photo's colours."""
    out = image.detach()[0].float().cpu().clamp(0, 255)
    if luminance_only:
        if out.shape[1:] != full_content.shape[1:]:  # a preview from a coarse pass
            out = F.interpolate(out[None], size=full_content.shape[1:], mode="bicubic", align_corners=False)[0]
        out = color.recombine(out, full_content)
    return to_image(out)


def steps_hint(settings: Settings, shape: tuple[int, int] = (1, 1)) -> str:
    """One line saying how the steps are spread over a photo of `shape`'s passes, e.g. '150 @ 256 px → 150 @ 512 px'."""
    sizes = scale_sizes(settings.long_side(shape), settings.scales, shape)
    return " → ".join(f"{n} @ {s} px" for n, s in zip(split_steps(settings.steps, len(sizes)), sizes))
