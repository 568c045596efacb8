"""A job's peak memory, predicted from its settings before it is queued.

The model is fitted to measurements of host memory (RSS) on the CPU by `bench/memory.py` (each point a
fresh process; `--fit` prints these constants and every point's error). A process holds a fixed part
(Python, torch, VGG-19 loaded once) and each job adds bytes per output pixel (the trunk's activations and
their gradients at the last, full-size pass), per style pixel (the styles' forward pass for their Gram
targets) and the optimiser's state (L-BFGS's history pairs, Adam's moments), whose size is known exactly.
Loading the weights peaks higher than the loaded model holds, so a small job's peak is that one.

On CUDA the model is fitted to `torch.cuda.max_memory_allocated` of default jobs on an H200 (bench/gpu.py):
the CUDA context and the caching allocator's slack are not in it, so a GPU budget should leave room for
them. MPS has not been measured: `predict_peak_bytes` answers None there and intake does not refuse by memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .params import SPEC, Settings
from .lbfgs import history_size
from .transfer import painted, pick_precision, scale_sizes, split_steps

STATE_VECTORS = {"lbfgs": 4, "adam": 3}  # besides the history: gradient, direction, previous gradient…; Adam: m, v, g
# An animation (engine.animate) holds, per frame and output pixel, the photo's frame and the painted one (RGB,
# 3 + 3 bytes), the frame's grey copy for the flow (1) and the encoder's copies (engine.movie: RGB 3, GIF index 1);
# while it paints a later frame, the two flows, the warped and previous frames in float32, the temporal target
# and trust tensors and the occlusion test's temporaries take about PAIR_BYTES more per pixel. Counted from the
# arrays engine/animate.py makes, not fitted (not measured yet): next to per_pixel (2810) they are small.
FRAME_BYTES, PAIR_BYTES = 11, 96


@dataclass(frozen=True)
class MemoryModel:
    """Peak resident bytes = max(load_peak, loaded + per_job + per_pixel · output px + per_style_pixel · style
    px + state · optimiser bytes), fitted to host RSS on the CPU."""

    load_peak: float  # while the weights are read and converted
    loaded: float  # Python, torch and VGG-19 resident, no job yet
    per_job: float
    per_pixel: dict[str, float]  # by precision: activations and gradients per output pixel
    per_style_pixel: float
    state: float  # per byte of optimiser state: 1, its tensors counted (see optimizer_bytes)


# bench/memory.py --fit, 2026-11-25, torch 2.13.0 on the 2-core AMD EPYC (no AVX512), shared machine, over fp32
# points at 256–640 px (errors within 8 MiB, README). Not measured: bf16 (auto never picks it on this CPU; its
# jobs are predicted with the fp32 bytes) and a full L-BFGS history (`state` = 1: its tensors are counted).
CPU = MemoryModel(load_peak=1.535e9, loaded=8.726e8, per_job=7.862e7, per_pixel={"fp32": 2810, "bf16": 2810},
                  per_style_pixel=133.8, state=1.0)

# bench/gpu.py, 2026-12-04, torch 2.11.0+cu130 on an NVIDIA H200, fp32 with CUDA graphs: the default job (300
# steps, two passes) at 512 px on the six bench/images pairs and at 1024 and 4096 px on chelsea × The Starry
# Night. Peak − the optimiser's state ≈ a + b·(output + style pixels): b from the least-squares fit (the two
# pixel counts move together in these jobs, so one coefficient serves both), a raised until no point lies
# above the line (up to 0.76 GB above the points; cuDNN's workspaces vary with the shapes). bf16 peaks were
# lower (20-step jobs at 3072 px: 16.0 vs 20.0 GB): predicted with the fp32 bytes, erring high. The same job
# through the in-process backend (bench/gpu.py --sections batch, chelsea × The Starry Night, batches of 1, 4, 8
# and 16) peaked at 2.99 / 5.95 / 9.97 / 16.78 GB, up to 0.64 GB above the line (the fixed part; each job more
# added ~1.0 GB as predicted): `loaded` is raised by that much, so those points lie under it too.
CUDA = MemoryModel(load_peak=1.968e9, loaded=1.968e9, per_job=0.0, per_pixel={"fp32": 1359, "bf16": 1359},
                   per_style_pixel=1359, state=1.0)


def optimizer_bytes(settings: Settings, numel: int, pairs: int | None = None) -> int:
    """Bytes of optimiser state for a picture of `numel` floats: Adam's moments, or L-BFGS's vectors and
    its history (`pairs` curvature pairs; default: as many as the last pass will hold) plus the spare slot
    that takes rejected pairs (engine.lbfgs)."""
    if settings.optimizer == "adam":
        return STATE_VECTORS["adam"] * numel * 4
    if pairs is None:
        pairs = history_size(numel, split_steps(settings.steps, len(scale_sizes(settings.size, settings.scales)))[-1])
    return (STATE_VECTORS["lbfgs"] + 2 * (pairs + 1)) * numel * 4


def features(point: dict[str, Any]) -> list[float]:
    """One bench/memory.py record as the model's terms: (1, fp32 px, bf16 px, style px, optimiser bytes)."""
    run = point["settings"]
    settings = Settings.parse({"optimizer": run["optimizer"], "steps": run["steps"], "scales": run["scales"]})
    bf16 = run["precision"] == "bf16"
    pixels = point["out_pixels"]
    return [1.0, 0.0 if bf16 else pixels, pixels if bf16 else 0.0, point["style_pixels"],
            optimizer_bytes(settings, 3 * pixels, point["history_pairs"])]


def predict_peak_bytes(settings: Settings, shape: tuple[int, int], n_styles: int, device: str = "cpu",
                       frames: int = 1) -> int | None:
    """Peak bytes of a process painting one job of `settings` on a photo of `shape` (width, height) with
    `n_styles` styles (square, their worst case) — an animation of `frames` frames when more than one;
    None where no model was measured (MPS)."""
    return predict_batch_bytes([(settings, shape, n_styles)], device, frames)


def predict_batch_bytes(jobs: Sequence[tuple[Settings, tuple[int, int], int]], device: str = "cpu",
                        frames: int = 1) -> int | None:
    """Peak bytes of a process painting `jobs` ((settings, photo shape, number of styles) each) as one batch
    (engine.stylize_batch): the process's fixed part once, each job's own bytes added up — its activations
    and gradients in the batched forward and backward, its optimiser state, its styles' forward (done one
    job at a time, so counting each errs high). The sum, not a measured per-extra-job cost: batches have
    not been measured on a GPU yet. None where no model was measured (MPS)."""
    models = {"cpu": CPU, "cuda": CUDA}
    if torch.device(device).type not in models:
        return None
    model = models[torch.device(device).type]
    dev, total = torch.device(device), 0.0
    for settings, shape, n_styles in jobs:
        sizes = painted(settings, shape)
        width, height = sizes.content
        total += (model.per_job + model.per_pixel[pick_precision(settings.precision, dev)]
                  * width * height + model.per_style_pixel * n_styles * sizes.style**2
                  + model.state * optimizer_bytes(settings, 3 * width * height))
        if frames > 1:
            total += (FRAME_BYTES * frames + PAIR_BYTES) * width * height
    return round(max(model.load_peak, model.loaded + total))


def largest_size(settings: Settings, budget: float, shape: tuple[int, int] = (1, 1), n_styles: int = 1,
                 device: str = "cpu", frames: int = 1) -> int | None:
    """The largest `size` whose job fits `budget` bytes on a photo of `shape` (0 if none does), or None
    where no model was measured."""
    def fits(size: int) -> bool:
        need = predict_peak_bytes(Settings.parse({"size": size}, settings), shape, n_styles, device, frames)
        return need is not None and need <= budget

    smallest, largest = int(SPEC["size"].min), int(SPEC["size"].max)
    if predict_peak_bytes(settings, shape, n_styles, device, frames) is None:
        return None
    lo, hi = smallest - 1, largest  # the answer is in lo…hi; lo = smallest - 1 means none fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo if lo >= smallest else 0


def gpu_bytes(device: str = "cuda") -> int:
    """The CUDA device's memory (all of it: the CUDA context and other processes are not subtracted)."""
    return torch.cuda.get_device_properties(torch.device(device)).total_memory


def machine_bytes(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """This machine's memory, or the container's limit where that is lower: cgroup v2's memory.max, or
    cgroup v1's memory/memory.limit_in_bytes (Docker on hosts that still run v1; "no limit" is a huge number)."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for name in ("memory.max", "memory/memory.limit_in_bytes"):
        try:
            limit = (cgroup / name).read_text().strip()
        except OSError:
            continue
        return min(total, int(limit)) if limit.isdigit() else total  # v2 says "max" when there is none
    return total
