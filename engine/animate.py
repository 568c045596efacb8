"""Stylized animations without flicker (Ruder, Dosovitskiy & Brox, *Artistic style transfer for videos*, 2016).

Painting frames one by one flickers: each lands in a different optimum. Here frame 1 is painted like a
still; every later frame starts from the previous painted frame warped onto it by optical flow and is
held to that warped picture by a temporal loss, mean(c·(x − warped)²) with pixels in 0–1, where c is 0
on the pixels the flow cannot vouch for (occluded or disoccluded, on motion boundaries, or flowing in
from outside).

Flow is OpenCV's DIS (Kroeger et al. 2016): classical, no learned weights, a few ms per frame pair.
Conventions: `flow(a, b)[y, x]` is the displacement (dx, dy) that takes pixel (x, y) of `a` to its match
in `b`, so a(x) ≈ b(x + flow(a, b)(x)). The previous painted frame is warped with the backward flow
(frame t → t−1), sampled on frame t's grid.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from PIL import Image, ImageSequence
from torch import Tensor

from . import color
from .params import Settings
from .batch import stylize
from .transfer import EngineError, Penalty, Progress, Result, fit, pick_device, pick_precision


@dataclass(frozen=True)
class AnimationProgress:
    """A snapshot of an animation's run: which frame, overall steps, and that frame's own report."""

    frame: int  # 1-based
    frames: int
    step: int  # over the whole animation
    total: int
    elapsed: float
    still: Progress  # the current frame's report; its preview (if any) is that frame

    @property
    def eta(self) -> float | None:
        return self.elapsed / self.step * (self.total - self.step) if self.step else None


@dataclass(frozen=True)
class Animation:
    frames: list[Image.Image]
    durations_ms: list[int]  # as given: the output keeps the input's timing
    settings: Settings  # as run: seed and precision filled in
    device: str
    elapsed: float
    steps: int
    losses: list[dict[str, float]]  # each frame's final losses (later frames add "temporal")


MIN_DELAY_MS, SLOW_DELAY_MS = 20, 100  # browsers show delays under 20 ms as 100 ms; so do we


def total_steps(settings: Settings, frames: int) -> int:
    """Steps of an animation of `frames` frames: `steps` on the first, `frame_steps` on each other."""
    return settings.steps + (frames - 1) * settings.frame_steps


def read_frames(image: Image.Image) -> tuple[list[Image.Image], list[int]]:
    """The frames of an animated GIF, APNG or WebP (a still: one frame) as full RGB canvases, with their
    durations in ms (under MIN_DELAY_MS counts as SLOW_DELAY_MS)."""
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        frames.append(frame.convert("RGB"))  # WebP knows a frame's duration once it is loaded
        ms = round(frame.info.get("duration") or 0)
        durations.append(ms if ms >= MIN_DELAY_MS else SLOW_DELAY_MS)
    return frames, durations


def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense optical flow (H×W×2, float32, pixels) from grey uint8 frame `a` to frame `b`.

    DIS's medium preset with denser, smaller patches (stride 2, 6 px) and a weaker smoothness term
    (α 5): on 64–128 px frames the preset smeared a moving square's flow into the background, so the
    consistency test found none of its disoccluded strip at 64 px; these settings find 98 % (tests)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setPatchSize(6)
    dis.setPatchStride(2)
    dis.setVariationalRefinementAlpha(5.0)
    return dis.calc(a, b, None)


def grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _sources(displacement: np.ndarray) -> np.ndarray:
    """x + displacement(x) for every pixel x = (column, row) of an H×W×2 displacement field."""
    h, w = displacement.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=-1)
    return grid + displacement


def warp(image: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """out(x) = image(x + displacement(x)), bilinear, edges repeated: a picture of frame t−1 carried onto
    frame t's grid by the backward flow (t → t−1)."""
    where = _sources(displacement)
    return cv2.remap(image, where[..., 0], where[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def reliable(forward: np.ndarray, backward: np.ndarray, rule: str = "full") -> np.ndarray:
    """H×W float32 weights c on frame t's grid (1: the warped previous frame is trusted, 0: not) from the
    forward flow (t−1 → t) and the backward flow (t → t−1).

    Ruder et al.'s rules: a pixel is occluded or disoccluded when the two flows disagree,
    |ŵ + w(x + ŵ)|² > 0.01(|ŵ|² + |w(x + ŵ)|²) + 0.5 with ŵ the backward flow; it is on a motion
    boundary when |∇ŵ|² > 0.01|ŵ|² + 0.002. `rule`: "full" applies both, "consistency" only the first,
    "off" neither. Pixels whose match lies outside frame t−1 are never trusted (nothing to keep there)."""
    h, w = backward.shape[:2]
    source = _sources(backward)
    bad = ((source[..., 0] < -0.5) | (source[..., 0] > w - 0.5) | (source[..., 1] < -0.5)
           | (source[..., 1] > h - 0.5))
    if rule != "off":
        there = warp(forward, backward)
        disagree = np.square(there + backward).sum(-1)
        bad |= disagree > 0.01 * (np.square(there).sum(-1) + np.square(backward).sum(-1)) + 0.5
    if rule == "full":
        gy, gx = np.gradient(backward, axis=(0, 1))
        bad |= np.square(gx).sum(-1) + np.square(gy).sum(-1) > 0.01 * np.square(backward).sum(-1) + 0.002
    return (~bad).astype(np.float32)


def temporal_penalty(warped: Tensor, weights: Tensor, strength: float) -> Penalty:
    """The temporal loss as a stylize() penalty: mean over pixels of c·(x − warped)², in 0–1 units like TV."""
    def penalty(image: Tensor) -> tuple[str, Tensor, float]:
        return "temporal", (weights * ((image - warped) / 255).square()).mean(), strength
    return penalty


def animate(
    frames: Sequence[Image.Image],
    durations_ms: Sequence[int],
    styles: Sequence[Image.Image],
    settings: Settings = Settings(),
    *,
    device: str | torch.device | None = None,
    weights: str | None = None,
    progress: Callable[[AnimationProgress], None] | None = None,
    cancel: threading.Event | None = None,
    preview_every: int | None = None,
) -> Animation:
    """Paint every frame of an animation in the style of `styles`, without flicker.

    Frame 1 runs `settings.steps` steps as a still (coarse-to-fine); each later frame runs
    `settings.frame_steps` at full size from the previous painted frame warped by the flow, with
    `settings.temporal_weight` on the temporal loss (`settings.occlusion` says where it is off).
    `progress`, `cancel` and `preview_every` work as in stylize(), per step of every frame.
    """
    if not frames or len(frames) != len(durations_ms):
        raise EngineError(f"{len(frames)} frames with {len(durations_ms)} durations")
    if len({frame.size for frame in frames}) > 1:
        raise EngineError("the frames of an animation must all be the same size")
    dev = pick_device(str(device) if device is not None else None)
    settings = dataclasses.replace(
        settings, seed=settings.seed if settings.seed is not None else secrets.randbelow(2**31),
        precision=pick_precision(settings.precision, dev))
    later = dataclasses.replace(settings, steps=settings.frame_steps, scales=1, steps_per_epoch=None)
    size = fit(frames[0].size, settings.size)
    greys = [grey(frame.resize(size, Image.Resampling.LANCZOS)) for frame in frames]
    total, done, start = total_steps(settings, len(frames)), 0, time.perf_counter()
    results: list[Result] = []
    for index, frame in enumerate(frames):
        def report(still: Progress, frame_no: int = index + 1, before: int = done) -> None:
            if progress is not None:
                progress(AnimationProgress(frame_no, len(frames), before + still.step, total,
                                           time.perf_counter() - start, still))

        if not results:
            result = stylize(frame, styles, settings, device=dev, weights=weights, progress=report,
                             cancel=cancel, preview_every=preview_every)
        else:
            forward, backward = flow(greys[index - 1], greys[index]), flow(greys[index], greys[index - 1])
            previous = np.asarray(results[-1].image, dtype=np.float32)
            warped = warp(previous, backward)
            start_image = Image.fromarray(warped.clip(0, 255).round().astype(np.uint8), "RGB")
            target = torch.from_numpy(warped).permute(2, 0, 1)
            if settings.preserve_color == "luminance":  # the picture being optimised is grey in this mode
                target = color.luminance(target)
            trust = torch.from_numpy(reliable(forward, backward, settings.occlusion))
            penalty = temporal_penalty(target[None].to(dev), trust[None, None].to(dev), settings.temporal_weight)
            result = stylize(frame, styles, later, init_image=start_image, device=dev, weights=weights,
                             progress=report, cancel=cancel, preview_every=preview_every, penalty=penalty)
        results.append(result)
        done += result.steps
    return Animation([r.image for r in results], list(durations_ms), settings, results[0].device,
                     time.perf_counter() - start, done, [r.losses for r in results])
