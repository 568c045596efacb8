"""`stylize CONTENT STYLE [STYLE…] -o OUT [--mask MASK.png] [--size …] …` — the engine from a terminal.

An animated GIF, APNG or WebP written to `-o OUT.webp` or `OUT.gif` is painted frame by frame without
flicker (engine.animate) unless `--no-animate`; to any other file, only its first frame is painted.

Every hyperparameter flag comes from `engine.params.SPECS`, so the CLI accepts exactly what the bot does.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from time import monotonic
from typing import Callable, NoReturn, TypeVar

from PIL import Image
from tqdm import tqdm

from . import movie, stamp
from .animate import AnimationProgress, animate, read_frames, total_steps
from .memory import largest_size, machine_bytes, predict_peak_bytes
from .params import SPECS, ParamError, Settings, format_value
from .batch import stylize
from .transfer import EngineError, Progress, pick_device, steps_hint

ANIMATIONS = (".webp", ".gif")
LOSS_EVERY = 0.5  # seconds between two reads of the loss shown beside the bar
T = TypeVar("T")


class _Bar(tqdm):
    """The terminal's progress bar: its step count follows every step, the loss beside it is read only when it
    is redrawn — at most every LOSS_EVERY seconds, and at the last step — since each read of a step's losses
    waits for the device (engine.transfer.Losses), which the optimiser itself never does."""

    def __init__(self, total: int) -> None:
        super().__init__(total=total, unit="step", dynamic_ncols=True)
        self.loss_read_at = -math.inf

    def show(self, step: int, where: str, losses: Mapping[str, float]) -> None:
        """Step `step` done; `where` (the pass or the frame) is shown with the loss."""
        self.update(step - self.n)
        now = monotonic()
        if step == self.total or now - self.loss_read_at >= LOSS_EVERY:
            self.loss_read_at = now
            self.set_postfix_str(f"{where} loss {losses['total']:.4g}")


class _Parser(argparse.ArgumentParser):
    """argparse, with one line for a mistake instead of the whole usage before it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (`{self.prog} --help` lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stylize", description="Paint a photo in the style of one or more paintings (Gatys et al.).")
    parser.add_argument("content", type=Path, help="the photo")
    parser.add_argument("styles", type=Path, nargs="+", help="one or more style images")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="where to write the picture (PNG/JPEG carry the settings; with --timelapse also "
                             "OUTPUT_timelapse.webp); an animation's frames need .webp or .gif")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: best available)")
    parser.add_argument("--weights", default=None, help="a torchvision-format VGG-19 state dict to use "
                        "instead of the original Caffe weights")
    parser.add_argument("--init-image", type=Path, default=None, help="start from this image")
    parser.add_argument("--mask", type=Path, default=None, help="paint each colour of this picture (the photo's "
                        "shape) with its own style or keep it as the photo; see --regions")
    parser.add_argument("--style-mask", action="append", default=[], metavar="N=PATH",
                        help="take style N only from the white part of PATH (repeatable)")
    parser.add_argument("--save-every", type=int, default=None, metavar="N",
                        help="also write the picture every N steps, as OUTPUT_stepNNNN.png")
    params = parser.add_argument_group("hyperparameters")
    for spec in SPECS:
        flags = [f"--{name.replace('_', '-')}" for name in (spec.name, *spec.aliases)]
        if spec.type is bool:  # --animate / --no-animate: a flag takes no value, so it never swallows a file name
            params.add_argument(*flags, dest=spec.name, default=argparse.SUPPRESS,
                                action=argparse.BooleanOptionalAction,
                                help=f"{spec.help} [default {'on' if spec.default else 'off'}]")
        else:
            params.add_argument(*flags, dest=spec.name, default=argparse.SUPPRESS, metavar="X",
                                help=f"{spec.help} [{spec.describe_range()}; default {format_value(spec.default)}]")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    given = {spec.name: getattr(args, spec.name) for spec in SPECS if hasattr(args, spec.name)}
    try:
        settings = Settings.parse(given)
    except ParamError as error:
        parser.error(str(error))
    if args.save_every is not None and args.save_every < 1:
        parser.error("--save-every must be at least 1")
    if settings.steps < settings.scales:  # a pass without a step would only upsample the one before
        print(f"stylize: steps={settings.steps} cannot cover scales={settings.scales} passes: painting in "
              f"{settings.steps} pass{'es' if settings.steps > 1 else ''} (scales={settings.steps})", file=sys.stderr)
        settings = dataclasses.replace(settings, scales=settings.steps)
    try:
        content = Image.open(args.content)
        styles = [Image.open(path) for path in args.styles]
        init = Image.open(args.init_image) if args.init_image else None
        mask = Image.open(args.mask) if args.mask else None
        style_masks = _style_masks(args.style_mask, len(styles))
    except ValueError as error:
        parser.error(str(error))
    except OSError as error:
        parser.error(f"cannot read image: {error}")

    if getattr(content, "n_frames", 1) > 1:
        animated_output = args.output.suffix.lower() in ANIMATIONS
        if settings.animate and not animated_output:
            parser.error("--animate needs an animated output: write to .webp or .gif")
        if settings.animate or (animated_output and "animate" not in given):
            if mask is not None or init is not None or style_masks is not None:
                parser.error("--mask, --style-mask and --init-image work on stills only, not on animations")
            return _animation(args, content, styles, settings)
        print(f"{args.content} is animated: painting its first frame only (write to .webp or .gif to paint "
              "every frame)", file=sys.stderr)
    if (refusal := _memory_refusal(settings, content.size, len(styles), args.device)) is not None:
        print(f"stylize: {refusal}", file=sys.stderr)
        return 1
    print(f"plan: {steps_hint(settings, content.size)}", file=sys.stderr)
    bar = _Bar(settings.steps)

    def report(progress: Progress) -> None:
        bar.show(progress.step, f"pass {progress.scale}/{progress.scales} {progress.size[0]}×{progress.size[1]}",
                 progress.losses)
        if progress.preview is not None:
            progress.preview.save(args.output.with_name(f"{args.output.stem}_step{progress.step:04d}.png"))

    result = _painted(bar, lambda: stylize(content, styles, settings, init_image=init, device=args.device,
                                           weights=args.weights, progress=report, preview_every=args.save_every,
                                           mask=mask, style_masks=style_masks))
    if isinstance(result, int):
        return result
    _save(result.image, args.output, stamp.Stamp(result.settings, tuple(stamp.StyleCredit(p.stem) for p in args.styles)))
    if result.frames:
        timelapse = args.output.with_name(f"{args.output.stem}_timelapse.webp")
        timelapse.write_bytes(movie.timelapse(result.frames, kinds=("webp",))[0])
        print(f"wrote {timelapse} ({len(result.frames)} frames)")
    losses = "  ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
    print(f"wrote {args.output} ({result.image.width}×{result.image.height}) in {result.elapsed:.1f} s "
          f"on {result.device}, seed {result.settings.seed}, {result.settings.precision}\nfinal losses: {losses}")
    return 0


def _animation(args: argparse.Namespace, content: Image.Image, styles: list[Image.Image], settings: Settings) -> int:
    """Paint every frame of an animated picture and write the animation in the format OUTPUT names."""
    frames, durations = read_frames(content)
    if (refusal := _memory_refusal(settings, content.size, len(styles), args.device, len(frames))) is not None:
        print(f"stylize: {refusal}", file=sys.stderr)
        return 1
    print(f"plan: {len(frames)} frames; frame 1: {steps_hint(settings, content.size)}; frames 2–{len(frames)}: "
          f"{settings.frame_steps} @ {settings.size} px from the previous frame", file=sys.stderr)
    bar = _Bar(total_steps(settings, len(frames)))

    def report(progress: AnimationProgress) -> None:
        bar.show(progress.step, f"frame {progress.frame}/{progress.frames}", progress.still.losses)
        if progress.still.preview is not None:
            progress.still.preview.save(args.output.with_name(
                f"{args.output.stem}_frame{progress.frame:03d}_step{progress.still.step:04d}.png"))

    result = _painted(bar, lambda: animate(frames, durations, styles, settings, device=args.device,
                                           weights=args.weights, progress=report, preview_every=args.save_every))
    if isinstance(result, int):
        return result
    kept, times = movie.distinct(result.frames, result.durations_ms)
    encoder = movie.gif if args.output.suffix.lower() == ".gif" else movie.webp
    args.output.write_bytes(encoder(kept, times))
    width, height = result.frames[0].size
    print(f"wrote {args.output} ({len(kept)} frames, {width}×{height}, {sum(times) / 1000:g} s) in "
          f"{result.elapsed:.1f} s on {result.device}, seed {result.settings.seed}, {result.settings.precision}")
    return 0


def _memory_refusal(settings: Settings, shape: tuple[int, int], n_styles: int, device: str | None,
                    frames: int = 1) -> str | None:
    """Why this job would not fit in this machine's (or container's) memory, by the bot's model
    (engine.memory, measured on the CPU), or None when it fits or cannot be predicted (a GPU)."""
    where = str(pick_device(device))
    need = predict_peak_bytes(settings, shape, n_styles, where, frames)
    have = machine_bytes()
    if need is None or need <= have:
        return None
    largest = largest_size(settings, have, shape, n_styles, where, frames)
    advice = (f"ask for --size {largest} or less" if largest else
              "even the smallest size does not fit: use fewer styles or frames, or --optimizer adam")
    return (f"this picture would need about {need / 1e9:.1f} GB of memory, more than the {have / 1e9:.1f} GB this "
            f"machine (or its container) has — {advice}")


def _painted(bar: tqdm, paint: Callable[[], T]) -> T | int:
    """paint(), or the exit status after telling why it stopped (a refusal, Ctrl-C); closes the bar."""
    try:
        return paint()
    except (EngineError, ValueError) as error:
        print(f"stylize: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stylize: interrupted", file=sys.stderr)
        return 130
    finally:
        bar.close()


def _save(image: Image.Image, path: Path, settings: stamp.Stamp) -> None:
    """Write the picture in the format its name says; PNG and JPEG carry the settings inside (engine.stamp)."""
    kind = Image.registered_extensions().get(path.suffix.lower())
    if kind in ("PNG", "JPEG"):
        path.write_bytes(stamp.save(image, settings, kind, **({"quality": 95} if kind == "JPEG" else {})))
    else:
        image.save(path)


def _style_masks(given: list[str], styles: int) -> list[Image.Image | None] | None:
    """--style-mask N=PATH options as one mask (or None) per style image."""
    if not given:
        return None
    out: list[Image.Image | None] = [None] * styles
    for option in given:
        number, sep, path = option.partition("=")
        if not sep or not number.isdigit() or not 1 <= int(number) <= styles:
            raise ValueError(f"--style-mask takes N=PATH with N from 1 to {styles}, got {option!r}")
        out[int(number) - 1] = Image.open(path)
    return out


if __name__ == "__main__":
    sys.exit(main())
