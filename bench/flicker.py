"""Flicker of stylized animations against frame-by-frame stylization, on clips whose motion is known.

    uv run python bench/flicker.py --gif docs/animation_side_by_side    # 128 px, 6 frames, 40 steps each

Each clip is made from real photos (bench/images) moved by known affine maps, layer by layer, so the true
backward flow of every pixel and whether it was visible in the previous frame are known exactly:
- pan_zoom: one photo panned and zoomed in;
- object: a photo with a pasted piece of another (a disc of the cat) moving across it;
- parallax: two layers, a far one panning slowly and a near one with a wavy top edge panning fast.

Flicker = mean |o_t − o_{t−1}(x + f_t(x))| over channels and the non-occluded pixels of frames t ≥ 2,
with f_t the TRUE backward flow (never the DIS flow the method itself uses) and pixels next to a layer
edge left out (bilinear sampling mixes layers there). The input clip's own value is the floor that
resampling alone gives.

Both methods start from the content (init=content) with the same seed and the same total steps:
frame-by-frame runs --steps on every frame; the animation runs --frame-steps on frames 2…N and the rest
on frame 1. CPU time (time.process_time, torch on one thread) includes the flow; with --device cuda the
time is wall-clock seconds with the GPU synchronised (the flow still runs on the CPU). Style and content
distances per frame are bench/yardstick.py's (a) relative and (b) independent ones, against that frame.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from engine import Settings, animate, stylize
from engine.animate import warp
from engine.movie import encode
from yardstick import Yardstick

IMAGES = Path(__file__).resolve().parent / "images"


@dataclass
class Layer:
    """A picture and its opaque part, placed in frame t by the affine map frame → layer `maps[t]` (2×3)."""

    image: np.ndarray  # H×W×3 float32
    alpha: np.ndarray | None  # H×W bool; None: all of it
    maps: list[np.ndarray]


@dataclass
class Clip:
    name: str
    frames: list[Image.Image]
    flows: list[np.ndarray]  # true backward flow t → t−1 of frames 1…N−1 (index 0 unused: zeros)
    valid: list[np.ndarray]  # pixels of frame t seen in frame t−1, away from layer edges


def photo(name: str, width: int) -> np.ndarray:
    image = Image.open(IMAGES / name).convert("RGB")
    height = round(image.height * width / image.width)
    return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)


def affine(scale: float, dx: float, dy: float) -> np.ndarray:
    """Frame pixel (x, y) → layer pixel (scale·x + dx, scale·y + dy)."""
    return np.array([[scale, 0, dx], [0, scale, dy]], dtype=np.float64)


def apply(m: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]


def invert(m: np.ndarray) -> np.ndarray:
    full = np.vstack([m, [0, 0, 1]])
    return np.linalg.inv(full)[:2]


def render(layers: list[Layer], size: tuple[int, int], name: str) -> Clip:
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    frames, labels, flows, valid = [], [], [], []
    count = len(layers[0].maps)
    for t in range(count):
        out, label = np.zeros((h, w, 3), np.float32), np.full((h, w), -1)
        for index, layer in enumerate(layers):
            mx, my = (v.astype(np.float32) for v in apply(layer.maps[t], x, y))
            pixels = cv2.remap(layer.image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            opaque = np.ones((h, w), bool) if layer.alpha is None else cv2.remap(
                layer.alpha.astype(np.uint8), mx, my, cv2.INTER_NEAREST, borderValue=0).astype(bool)
            out[opaque], label[opaque] = pixels[opaque], index
        frames.append(Image.fromarray(out.clip(0, 255).round().astype(np.uint8), "RGB"))
        labels.append(label)
        if t == 0:
            flows.append(np.zeros((h, w, 2), np.float32))
            valid.append(np.zeros((h, w), bool))
            continue
        flow, seen = np.zeros((h, w, 2), np.float32), np.zeros((h, w), bool)
        for index, layer in enumerate(layers):
            back = invert(layer.maps[t - 1])  # layer → frame t−1
            lx, ly = apply(layer.maps[t], x, y)
            px, py = apply(back, lx, ly)
            mine = label == index
            flow[mine, 0], flow[mine, 1] = (px - x)[mine], (py - y)[mine]
            inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
            ix, iy = np.clip(np.round(px), 0, w - 1).astype(int), np.clip(np.round(py), 0, h - 1).astype(int)
            seen |= mine & inside & (labels[t - 1][iy, ix] == index)
        edge = cv2.dilate((cv2.Laplacian(label.astype(np.float32), cv2.CV_32F) != 0).astype(np.uint8),
                          np.ones((3, 3), np.uint8)).astype(bool)
        flows.append(flow)
        valid.append(seen & ~edge)
    return Clip(name, frames, flows, valid)


def clips(size: int, count: int) -> list[Clip]:
    w, h = size, round(size * 3 / 4)
    coffee = photo("coffee.jpg", round(size * 1.6))
    beach = photo("colva_beach.jpg", round(size * 1.5))
    cat = photo("chelsea.jpg", round(size * 0.8))
    statue = photo("statue_of_liberty.jpg", round(size * 1.7))
    disc = np.zeros(cat.shape[:2], bool)
    cy, cx, r = cat.shape[0] * 0.4, cat.shape[1] * 0.45, size * 0.2
    yy, xx = np.mgrid[0:cat.shape[0], 0:cat.shape[1]]
    disc[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = True
    near = photo("eiffel_tower.jpg", round(size * 2))
    ny, nx = np.mgrid[0:near.shape[0], 0:near.shape[1]]
    ridge = near.shape[0] * 0.55 + size * 0.06 * np.sin(nx / (size * 0.12))
    span = size / 40  # motion per frame, in output pixels: 3.2 at 128 px
    pan_zoom = [Layer(coffee, None, [_zoom(t, w, h, 1 / (1 + 0.025 * t), 20 + span * t, 10) for t in range(count)])]
    obj = [Layer(beach, None, [affine(1, 10, 10)] * count),
           Layer(cat, disc, [affine(1, cx - r - 6 - span * 1.3 * t, cy - h * 0.45 + span * 0.4 * t)
                             for t in range(count)])]
    parallax = [Layer(statue, None, [affine(1, 10 + span * 0.4 * t, 20) for t in range(count)]),
                Layer(near, ny > ridge, [affine(1, 10 + span * 1.5 * t, near.shape[0] * 0.55 - h * 0.55)
                                         for t in range(count)])]
    return [render(pan_zoom, (w, h), "pan_zoom"), render(obj, (w, h), "object"),
            render(parallax, (w, h), "parallax")]


def _zoom(t: int, w: int, h: int, scale: float, dx: float, dy: float) -> np.ndarray:
    """Zoom about the frame's centre by 1/scale, then pan by (dx, dy) layer pixels."""
    return affine(scale, dx + (1 - scale) * w / 2, dy + (1 - scale) * h / 2)


def flicker(frames: list[Image.Image], clip: Clip) -> float:
    errors = []
    for t in range(1, len(frames)):
        now, before = (np.asarray(f, np.float32) for f in (frames[t], frames[t - 1]))
        carried = warp(before, clip.flows[t])
        errors.append(float(np.abs(now - carried)[clip.valid[t]].mean()))
    return float(np.mean(errors))


def distances(frames: list[Image.Image], clip: Clip, style: Image.Image, size: int,
              device: str = "cpu") -> list[tuple[float, ...]]:
    """(relative content, relative style, 1 − SSIM, sliced Wasserstein) per frame."""
    out = []
    for frame, given in zip(frames, clip.frames):
        s = Yardstick(given, style, size, device)(frame)
        out.append((s.relative.content, s.relative.style, s.independent.content, s.independent.style))
    return out


def _gpu_clock() -> float:
    torch.cuda.synchronize()
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--steps", type=int, default=40, help="frame-by-frame: steps on every frame")
    parser.add_argument("--frame-steps", type=int, default=40, help="animation: steps on frames 2…N")
    parser.add_argument("--temporal-weight", type=float, nargs="+", default=[Settings().temporal_weight])
    parser.add_argument("--style", default="wave.jpg")
    parser.add_argument("--clips", nargs="+", default=["object", "pan_zoom", "parallax"],
                        choices=["object", "pan_zoom", "parallax"], help="the first one goes into --gif")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gif", type=Path, default=None,
                        help="write input | frame-by-frame | animation here (.webp or .gif is added)")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    clock = time.process_time if args.device == "cpu" else _gpu_clock
    style = Image.open(IMAGES / args.style).convert("RGB")
    base = Settings.parse({"size": args.size, "seed": args.seed, "init": "content", "steps": args.steps})
    first = args.frames * args.steps - (args.frames - 1) * args.frame_steps
    print(f"{args.frames} frames at {args.size} px, style {args.style}, total steps {args.frames * args.steps} "
          f"each: frame-by-frame {args.steps}/frame; animation {first} + {args.frame_steps}/frame")
    clock_name = "cpu_s" if args.device == "cpu" else "gpu_s"
    print(f"clip      method           flicker  floor  {clock_name}   worst frame vs frame-by-frame: "
          "rel_content rel_style 1-ssim swd")
    for clip in [c for c in clips(args.size, args.frames) if c.name in args.clips]:
        floor = flicker(clip.frames, clip)
        start = clock()
        plain = [stylize(frame, [style], base, device=args.device).image for frame in clip.frames]
        plain_cpu = clock() - start
        plain_d = distances(plain, clip, style, args.size, args.device)
        print(f"{clip.name:9} frame-by-frame  {flicker(plain, clip):7.2f} {floor:6.2f} {plain_cpu:7.1f}")
        for weight in args.temporal_weight:
            settings = dataclasses.replace(base, steps=first, frame_steps=args.frame_steps, temporal_weight=weight)
            start = clock()
            moved = animate(clip.frames, [100] * len(clip.frames), [style], settings, device=args.device).frames
            cpu = clock() - start
            worst = np.max(np.array(distances(moved, clip, style, args.size, args.device)) / np.array(plain_d), axis=0)
            print(f"{clip.name:9} animate tw={weight:<6g} {flicker(moved, clip):7.2f} {floor:6.2f} {cpu:7.1f}   "
                  + "  ".join(f"{v:.3f}" for v in worst), flush=True)
        if args.gif is not None and clip.name == args.clips[0]:
            sheet = [_side_by_side(*row) for row in zip(clip.frames, plain, moved)]
            data, kind = encode(sheet, [150] * len(sheet))
            args.gif.with_name(f"{args.gif.name}.{kind}").write_bytes(data)


def _side_by_side(*images: Image.Image) -> Image.Image:
    out = Image.new("RGB", (sum(i.width for i in images) + 4 * (len(images) - 1), images[0].height), "white")
    for k, image in enumerate(images):
        out.paste(image, (k * (image.width + 4), 0))
    return out


if __name__ == "__main__":
    main()
