"""Running jobs: stylize() and stylize_batch() — a batch of one is stylize().

Per pass, each job's targets (engine.transfer) and starting picture; per step, one VGG-19 forward and
backward for all the jobs of the batch and one optimiser step that moves every picture by its own state
(engine.lbfgs); on CUDA both captured as graphs. Each job has its own progress, cancel and result.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from . import color
from .determinism import NotDeterministic, deterministic_mode
from .lbfgs import LBFGS, history_size
from .params import ParamError, Settings
from .transfer import (Cancelled, EngineError, Losses, OutOfMemory, Penalty, Progress, RANGE_WEIGHT,
                       Result, Targets, check_shape, colours_for, control_of, finished_picture, fit, in_range,
                       pick_device, pick_precision, scale_sizes, split_steps, style_side, to_tensor,
                       vgg_features, weighted_losses)
from .vgg import VGG19, depth_for, load_vgg

TIMELAPSE_SIDE = 1024  # timelapse frames are at the output size, at most this long: memory and upload stay bounded
FIRST_STEP_MOVE = 4.0  # mean |change| in 0–255 units of L-BFGS's first (gradient) step; see _optimizer
CUDA_GRAPHS = True  # on CUDA, each L-BFGS pass's evaluation and update are graph replays (_graphed, engine.lbfgs)


def stylize(
    content: Image.Image,
    styles: Sequence[Image.Image],
    settings: Settings = Settings(),
    *,
    init_image: Image.Image | None = None,
    device: str | torch.device | None = None,
    weights: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    preview_every: int | None = None,
    mask: Image.Image | None = None,
    style_masks: Sequence[Image.Image | None] | None = None,
    penalty: Penalty | None = None,
) -> Result:
    """Paint `content` in the style of `styles` (blended by settings.style_blend).

    `mask` (the photo's shape, any size) paints each of its colours with its own style or keeps it as
    the photo, as settings.regions says; `style_masks` (one per style, None for all of it) marks in white
    the part of each painting to take the style from. `penalty` adds a term to the objective (animate's
    temporal loss).

    `progress` is called after every step from this thread, with a preview picture every
    `preview_every` steps (default: at each epoch end if settings.preview); `cancel` is checked before
    every step and raises Cancelled. GPU out-of-memory becomes OutOfMemory; both are EngineErrors.
    With settings.timelapse the result's `frames` show the picture developing (see engine.movie).
    This is stylize_batch with a batch of one.
    """
    request = Request(content, styles, settings, init_image=init_image, progress=progress, cancel=cancel,
                      preview_every=preview_every, mask=mask, style_masks=style_masks, penalty=penalty)
    [outcome] = stylize_batch([request], device=device, weights=weights)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


@dataclass(frozen=True)
class Request:
    """One job of a batch: stylize()'s arguments (see there), its own progress display and cancel event, and
    who hears of its end as soon as it is known (a cancelled job need not wait for the rest of its batch)."""

    content: Image.Image
    styles: Sequence[Image.Image]
    settings: Settings = Settings()
    init_image: Image.Image | None = None
    progress: Callable[[Progress], None] | None = None
    cancel: threading.Event | None = None
    preview_every: int | None = None
    mask: Image.Image | None = None
    style_masks: Sequence[Image.Image | None] | None = None
    penalty: Penalty | None = None
    done: Callable[[Result | Exception], None] | None = None  # called (this thread) the moment it ends


BatchKey = tuple[object, ...]


def batch_key(settings: Settings, shape: tuple[int, int], device: str | torch.device | None = None) -> BatchKey:
    """What jobs optimised as one batch must share: their pictures' size at every pass (so they stack
    along VGG-19's batch dimension), the steps of every pass (so they step together), and what the shared
    forward pass computes — optimiser, precision, pooling, the layers read. Everything else (weights,
    styles and their sizes, masks, seeds, colour handling) stays each job's own: their Gram targets are
    computed one job at a time, only the picture being optimised travels in the batch."""
    settings = settings.for_shape(shape)
    sizes = scale_sizes(settings.size, settings.scales, shape)
    precision = pick_precision(settings.precision, pick_device(str(device) if device is not None else None))
    return (tuple(fit(shape, s) for s in sizes), tuple(split_steps(settings.steps, len(sizes))), settings.optimizer,
            precision, settings.pooling, settings.content_layers, settings.style_layers)


def stylize_batch(requests: Sequence[Request], *, device: str | torch.device | None = None,
                  weights: str | None = None) -> list[Result | Exception]:
    """Paint several jobs of one batch_key at once: one VGG-19 forward and backward per step for all of
    them (the batch dimension) and one optimiser step that moves every picture by its own state (engine.lbfgs
    batches the L-BFGS update itself), each job with its own losses, progress, cancel and result.

    Returns each job's Result, or the exception that ended it (EngineError for reasons its user can act
    on: a bad mask, Cancelled, OutOfMemory; anything else is a bug). A job that fails or is cancelled
    leaves the batch; the others go on and paint the same pictures (within rounding, see
    tests/test_batch.py). A batch of one is exactly stylize(). Raises ValueError for jobs of different
    batch keys (the caller groups them)."""
    dev = pick_device(str(device) if device is not None else None)
    painters: list[_Painter] = []
    outcomes: list[Result | Exception | None] = [None] * len(requests)
    for n, request in enumerate(requests):
        try:
            painters.append(_Painter(request, dev, n))
        except EngineError as error:
            outcomes[n] = error
            if request.done is not None:
                request.done(error)
    if len({painter.key for painter in painters}) > 1:
        raise ValueError("jobs of different batch keys cannot be optimised as one batch")
    if painters:
        try:
            deterministic = any(painter.settings.deterministic for painter in painters)  # the mode is shared
            with _gpu_lock(dev, [painter.request.cancel for painter in painters]), \
                    deterministic_mode(deterministic, dev):
                _run(painters, dev, weights)
        except Exception as error:  # the batch's shared part failed: every job still in it ends so
            if isinstance(error, NotDeterministic):
                error = EngineError(str(error))
            out_of_memory = (isinstance(error, RuntimeError) and not isinstance(error, EngineError)
                             and (isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()))
            if out_of_memory and dev.type == "cuda":
                torch.cuda.empty_cache()
            for painter in painters:
                if painter.outcome is None:
                    ending = (OutOfMemory(f"the {dev.type.upper()} ran out of memory at size={painter.settings.size}; "
                                          "try a smaller size or optimizer=adam") if out_of_memory else error)
                    if out_of_memory:
                        ending.__cause__ = error
                    painter.end(ending)
        for painter in painters:
            outcomes[painter.number] = painter.outcome
    assert all(outcome is not None for outcome in outcomes)
    return outcomes  # type: ignore[return-value]


class _Painter:
    """One job of a batch, pass by pass: its settings as run, targets, picture (a leaf tensor of its own),
    optimiser, reports and, once it ends, its outcome."""

    def __init__(self, request: Request, dev: torch.device, number: int) -> None:
        content, styles, settings = request.content, list(request.styles), request.settings
        if not styles:
            raise EngineError("at least one style image is needed")
        blend = settings.style_blend or (1.0,) * len(styles)
        if len(blend) != len(styles):
            raise EngineError(f"style_blend has {len(blend)} weights for {len(styles)} style images")
        if sum(blend) <= 0:
            raise EngineError("style_blend weights must not all be zero")
        settings = settings.for_shape(content.size)  # a pixel count becomes this photo's longest side
        check_shape(content.size, settings.size, "The photo")
        for style in styles:
            check_shape(style.size, settings.size, "A style picture")
        try:
            self.control = control_of(content, styles, settings, blend, request.mask, request.style_masks)
        except ParamError as error:
            raise EngineError(str(error)) from None
        self.settings = dataclasses.replace(  # the echo shows what ran, not "auto"
            settings,
            seed=settings.seed if settings.seed is not None else secrets.randbelow(2**31),
            precision=pick_precision(settings.precision, dev))
        self.request, self.dev, self.number = request, dev, number
        self.key = batch_key(self.settings, content.size, dev) + (request.penalty is not None,)
        self.preview_every = (settings.epoch_length if request.preview_every is None and settings.preview
                              else request.preview_every)
        self.outcome: Result | Exception | None = None

    def start(self, vgg: VGG19, start: float) -> None:
        """Before the first pass (shared by the batch: the model and the clock)."""
        self.vgg, self.start_time = vgg, start
        self.generator = torch.Generator(device="cpu").manual_seed(self.settings.seed)
        self.mixes = [{k: w.to(self.dev) for k, w in mix.items()} for mix in self.control.mixes]
        self.sizes = scale_sizes(self.settings.size, self.settings.scales, self.request.content.size)
        self.full_content = to_tensor(self.request.content, self.settings.size)
        self.luminance_only = self.settings.preserve_color == "luminance"
        self.image: Tensor | None = None
        self.step, self.losses = 0, Losses({})
        self.frames = (_Frames(self.full_content.shape[1:], self.settings.epoch_length) if self.settings.timelapse
                       else None)

    def begin(self, index: int, long_side: int) -> None:
        """A pass's targets and starting picture."""
        settings, dev, control = self.settings, self.dev, self.control
        content = to_tensor(self.request.content, long_side)
        styles = [to_tensor(s, style_side(s.size, long_side, settings.style_scale)) for s in self.request.styles]
        areas, photo, hard = control.areas(content, settings, dev)
        if settings.preserve_color == "histogram":
            styles = [color.match_histogram(s, colours_for(k, content, hard, control, self.mixes))
                      for k, s in enumerate(styles)]
        elif self.luminance_only:
            styles = [color.luminance(s, like=content) for s in styles]
            content = color.luminance(content)
        self.targets = Targets(self.vgg, content.to(dev), [s.to(dev) for s in styles], settings, self.mixes, areas,
                                control.style_guides(styles, settings, dev), photo)
        self.index, self.size = index, (content.shape[2], content.shape[1])
        image, init_image = self.image, self.request.init_image
        if image is not None:  # coarse-to-fine: previous result, upsampled, is this pass's start
            image = F.interpolate(image, size=content.shape[1:], mode="bicubic", align_corners=False).clamp(0, 255)
        elif init_image is not None:
            start_img = to_tensor(init_image).to(dev)[None]
            image = F.interpolate(start_img, size=content.shape[1:], mode="bicubic", align_corners=False)
            if self.luminance_only:
                image = color.luminance(image[0])[None]
        elif settings.init == "noise":
            noise = torch.randn(content.shape, generator=self.generator) * 64 + 128
            image = noise.clamp(0, 255)[None].to(dev)
        else:
            image = content[None].to(dev)
        self.image = image.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
        if self.frames is not None and self.step == 0:
            self.frames.add(finished_picture(self.targets.composite(self.image), self.full_content, self.luminance_only))

    def picture(self) -> tuple[Tensor, Tensor, Tensor]:
        """What the batch's forward pass sees of this job: (the picture its variable stands for, clamped to
        0–255; that with the photo's regions composited in; the pull back into range)."""
        inside, stray = in_range(self.image)
        return inside, self.targets.composite(inside), stray

    def parts(self, feats: dict[str, Tensor], inside: Tensor, picture: Tensor, stray: Tensor) -> dict[str, Tensor]:
        """This job's losses from its own activations, the weighted sum as "total"."""
        total, parts = weighted_losses(feats, picture, self.targets, self.settings)
        total = total + RANGE_WEIGHT * stray
        if self.request.penalty is not None:
            name, value, weight = self.request.penalty(inside)
            parts[name], total = value, total + weight * value
        return {**parts, "total": total}

    def evaluate(self, x: Tensor) -> dict[str, Tensor]:
        """The losses of the picture `x` stands for, alone (the result's score)."""
        inside, stray = in_range(x)
        picture = self.targets.composite(inside)
        return self.parts(vgg_features(self.vgg, picture, self.settings), inside, picture, stray)

    def advance(self, parts: dict[str, Tensor]) -> None:
        """After the batch's optimiser moved the picture from the evaluation that gave `parts`: this
        step's reports."""
        settings, image = self.settings, self.image
        assert image is not None
        self.losses = Losses(parts)
        if settings.optimizer == "adam":
            with torch.no_grad():
                image.clamp_(0, 255)
        self.step += 1
        step, progress = self.step, self.request.progress
        if step == settings.steps:  # the evaluation saw the picture before the last move: score the result
            with torch.no_grad():
                self.losses = Losses(self.evaluate(image.detach().clamp(0, 255).round()))
        wants_preview = (progress is not None and self.preview_every is not None
                         and (step % self.preview_every == 0 or step == settings.steps))
        wants_frame = self.frames is not None and self.frames.due(step, settings.steps)
        picture = (finished_picture(self.targets.composite(image), self.full_content, self.luminance_only)
                   if wants_preview or wants_frame else None)
        if wants_frame:
            self.frames.add(picture)
        if progress is not None:
            progress(Progress(step, settings.steps, self.index, len(self.sizes), self.size, self.losses,
                              time.perf_counter() - self.start_time, picture if wants_preview else None))

    def paste_back(self) -> None:
        """A pass's end: the photo's regions, pasted back through the feathered mask."""
        if self.targets.keep is not None:
            with torch.no_grad():
                self.image.copy_(self.targets.composite(self.image))

    def finish(self) -> None:
        """The last pass is done: the result is this job's outcome."""
        assert self.image is not None
        final = finished_picture(self.image, self.full_content, self.luminance_only)
        if self.frames is not None:
            self.frames.add(final)
        self.end(Result(image=final, settings=self.settings, device=_device_name(self.dev),
                        elapsed=time.perf_counter() - self.start_time, steps=self.step,
                        losses=dict(self.losses.items()),
                        frames=tuple(self.frames.pictures) if self.frames is not None else ()))

    def end(self, outcome: Result | Exception) -> None:
        """This job's outcome is known: it leaves the batch, and whoever waits for it hears now."""
        self.outcome = outcome
        if self.request.done is not None:
            self.request.done(outcome)

    def attempt(self, action: Callable[..., object], *args: object) -> None:
        """Run one of this job's own parts; an exception ends this job alone (its outcome)."""
        try:
            action(*args)
        except Exception as error:
            self.end(error)


@torch.enable_grad()  # the optimisers evaluated under enable_grad; a caller's no_grad must not stop the batch
def _run(painters: list[_Painter], dev: torch.device, weights: str | None) -> None:
    """Paint the batch: per pass each job's targets; per step one evaluation of all the jobs still in it
    (their pictures concatenated along the batch dimension), then one optimiser step that moves every
    picture, each by its own state. A job cancelled or failed leaves at the next step; the others'
    arithmetic does not depend on it."""
    start = time.perf_counter()
    first = painters[0].settings
    vgg = load_vgg(str(dev), weights, depth_for(first.content_layers + first.style_layers))
    for painter in painters:
        painter.start(vgg, start)
    sizes = painters[0].sizes
    active = list(painters)
    # On CUDA each pass's evaluation and L-BFGS update are CUDA graphs, captured per (pass, jobs in the batch):
    # a graph replays one shape. Not for Adam, nor with an extra term that changes between frames (animations).
    graphs = dev.type == "cuda" and CUDA_GRAPHS and first.optimizer == "lbfgs" and all(
        painter.request.penalty is None for painter in painters)
    for index, (long_side, pass_steps) in enumerate(zip(sizes, split_steps(first.steps, len(sizes))), start=1):
        for painter in active:
            painter.attempt(painter.begin, index, long_side)
        members: list[_Painter] = []
        gradient: Callable[[], list[dict[str, Tensor]]] | None = None
        optimizer: torch.optim.Optimizer | LBFGS | None = None
        for _ in range(pass_steps):
            for painter in active:
                cancel = painter.request.cancel
                if painter.outcome is None and cancel is not None and cancel.is_set():
                    painter.end(Cancelled())
            active = [painter for painter in active if painter.outcome is None]
            if not active:
                return
            if active != members:  # a new pass, or a job left: the batch has a new shape
                optimizer = (_optimizer(active, pass_steps, graphs) if optimizer is None
                             else _keep(optimizer, [members.index(painter) for painter in active]))
                members = list(active)
                gradient = _batch_gradient(vgg, members, first)
                if graphs:
                    gradient = _graphed(gradient, [painter.image for painter in members])
            assert gradient is not None and optimizer is not None
            for painter, parts in zip(members, optimizer.step(gradient)):
                painter.attempt(painter.advance, parts)
        for painter in active:
            if painter.outcome is None:
                painter.attempt(painter.paste_back)
        active = [painter for painter in active if painter.outcome is None]
    for painter in active:
        painter.attempt(painter.finish)


def _batch_gradient(vgg: VGG19, members: list[_Painter], settings: Settings) -> Callable[[], list[dict[str, Tensor]]]:
    """Every member's losses by name (image.grad set): one forward and backward through VGG-19 for all.
    The batch's total is the sum of the jobs' totals, so each job's picture gets its own gradient. With one
    member the arithmetic is stylize()'s alone: no concatenation, no slicing, no sum."""

    def gradient() -> list[dict[str, Tensor]]:
        for painter in members:
            painter.image.grad = None
        seen = [painter.picture() for painter in members]
        pictures = [picture for _, picture, _ in seen]
        feats = vgg_features(vgg, pictures[0] if len(members) == 1 else torch.cat(pictures), settings)
        parts = [painter.parts(feats if len(members) == 1 else {k: v[n:n + 1] for k, v in feats.items()}, *views)
                 for n, (painter, views) in enumerate(zip(members, seen))]
        totals = [p["total"] for p in parts]
        (totals[0] if len(totals) == 1 else torch.stack(totals).sum()).backward()
        return parts

    return gradient


class _Frames:
    """A timelapse in the making: the starting picture, one frame per progress report, the result —
    each (coarse passes' too) at the output size, at most TIMELAPSE_SIDE long."""

    def __init__(self, shape: tuple[int, int], every: int) -> None:
        self.size = fit((shape[1], shape[0]), min(max(shape), TIMELAPSE_SIDE))
        self.every = every
        self.pictures: list[Image.Image] = []

    def due(self, step: int, total: int) -> bool:
        return step % self.every == 0 and step < total  # the result itself is added last, after any paste-back

    def add(self, picture: Image.Image) -> None:
        if picture.size != self.size:
            picture = picture.resize(self.size, Image.Resampling.BICUBIC)
        self.pictures.append(picture)


def _optimizer(painters: list[_Painter], steps: int, graphs: bool) -> torch.optim.Optimizer | LBFGS:
    """One optimiser for the batch's pictures, each moved by its own state (and Adam by its job's lr); with
    `graphs`, an L-BFGS whose update is a CUDA graph (engine.lbfgs, static)."""
    images = [painter.image for painter in painters]
    if painters[0].settings.optimizer == "adam":
        return torch.optim.Adam([{"params": [image], "lr": painter.settings.lr}
                                 for image, painter in zip(images, painters)])
    # No stop by tolerance: the user asked for a number of steps, and the bot promises that many.
    # torch's first step is lr·g/‖g‖₁ (L1 norm lr): with lr=1 it moved the picture by ~1e-5 grey levels, and
    # the curvature from so small a step made the next one overshoot (loss ×1e2…1e14). A first step of
    # FIRST_STEP_MOVE per pixel on average costs no evaluation and reached the same loss sooner
    # (bench/lbfgs_evals.py, README). Later steps have length 1 along the L-BFGS direction.
    numel = images[0].numel()
    return LBFGS(images, history_size(numel, steps), first_lr=FIRST_STEP_MOVE * numel, static=graphs)


def _keep(optimizer: torch.optim.Optimizer | LBFGS, rows: list[int]) -> torch.optim.Optimizer | LBFGS:
    """The optimiser of the jobs at `rows` (ascending) of its batch, each with its state as it was."""
    if isinstance(optimizer, LBFGS):
        optimizer.keep(rows)
        return optimizer
    groups = [optimizer.param_groups[row] for row in rows]
    kept = torch.optim.Adam(groups)
    kept.state.update({image: optimizer.state[image] for group in groups for image in group["params"]
                       if image in optimizer.state})
    return kept


def _graphed(gradient: Callable[[], list[dict[str, Tensor]]], images: list[Tensor]
             ) -> Callable[[], list[dict[str, Tensor]]]:
    """`gradient` (each job's losses by name; each image's .grad set) as one CUDA graph replay: the ~600
    kernels of an evaluation cost the CPU one launch, so the GPU no longer waits for Python between them.
    Captured once per pass and batch (fixed shapes), after an untimed warm-up evaluation on a side stream
    (cuDNN picks its algorithms; AccumulateGrad then runs on the capturing stream); the images and their
    .grad stay the same tensors, which L-BFGS updates in place between replays. The losses are copied out
    of the graph's memory at each replay, so a report read later sees its own step's."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        gradient()
    torch.cuda.current_stream().wait_stream(side)
    for image in images:
        image.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):  # other workers' jobs may run meanwhile
        parts = gradient()
        values = [torch.stack([v.detach().float().reshape(()) for v in job.values()]) for job in parts]
    names = [list(job) for job in parts]

    def replay() -> list[dict[str, Tensor]]:
        graph.replay()
        return [dict(zip(job, value.clone().unbind())) for job, value in zip(names, values)]

    return replay


_GPU_LOCKS: dict[str, threading.Lock] = {}
_GPU_LOCKS_GUARD = threading.Lock()


@contextmanager
def _gpu_lock(dev: torch.device, cancels: list[threading.Event | None]) -> Iterator[None]:
    """One job at a time per CUDA device. While one thread captures a CUDA graph, another's host→device
    copy or graph replay fails (measured: 7 of 8 jobs failed with 2 worker threads on one GPU), and side
    by side they were no faster than one after another (bench/gpu.py: 1.12 vs 1.13 s for one job).
    A batch waiting here still notices its jobs' cancel events: it stops waiting once all are set
    (one cancelled job leaves the batch at its first step)."""
    if dev.type != "cuda":
        yield
        return
    key = str(dev) if dev.index is not None else f"cuda:{torch.cuda.current_device()}"
    with _GPU_LOCKS_GUARD:
        lock = _GPU_LOCKS.setdefault(key, threading.Lock())
    while not lock.acquire(timeout=0.1):
        if all(cancel is not None and cancel.is_set() for cancel in cancels):
            raise Cancelled()
    try:
        yield
    finally:
        lock.release()


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return dev.type
