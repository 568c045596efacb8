"""`stylize CONTENT STYLE [STYLE…] -o OUT [--size …] [--steps …] …` — the engine from a terminal.

Every hyperparameter flag comes from `engine.params.SPECS`, so the CLI accepts exactly what the bot does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from .params import SPECS, ParamError, Settings, format_value
from .transfer import EngineError, Progress, steps_hint, stylize


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylize", description="Paint a photo in the style of one or more paintings (Gatys et al.).")
    parser.add_argument("content", type=Path, help="the photo")
    parser.add_argument("styles", type=Path, nargs="+", help="one or more style images")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the PNG")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: best available)")
    parser.add_argument("--weights", default=None, help="a torchvision-format VGG-19 state dict to use "
                        "instead of the original Caffe weights")
    parser.add_argument("--init-image", type=Path, default=None, help="start from this image")
    parser.add_argument("--save-every", type=int, default=None, metavar="N",
                        help="also write the picture every N steps, as OUTPUT_stepNNNN.png")
    params = parser.add_argument_group("hyperparameters")
    for spec in SPECS:
        flags = [f"--{name.replace('_', '-')}" for name in (spec.name, *spec.aliases)]
        extra = {"nargs": "?", "const": "true"} if spec.type is bool else {}
        params.add_argument(*flags, dest=spec.name, default=argparse.SUPPRESS, metavar="X", **extra,
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
    try:
        content = Image.open(args.content)
        styles = [Image.open(path) for path in args.styles]
        init = Image.open(args.init_image) if args.init_image else None
    except OSError as error:
        parser.error(f"cannot read image: {error}")

    print(f"plan: {steps_hint(settings, content.size)}", file=sys.stderr)
    bar = tqdm(total=settings.steps, unit="step", dynamic_ncols=True)

    def report(progress: Progress) -> None:
        bar.update(progress.step - bar.n)
        bar.set_postfix_str(f"pass {progress.scale}/{progress.scales} {progress.size[0]}×{progress.size[1]} "
                            f"loss {progress.losses['total']:.4g}")
        if progress.preview is not None:
            progress.preview.save(args.output.with_name(f"{args.output.stem}_step{progress.step:04d}.png"))

    try:
        result = stylize(content, styles, settings, init_image=init, device=args.device, weights=args.weights,
                         progress=report, preview_every=args.save_every)
    except (EngineError, ValueError) as error:
        bar.close()
        print(f"stylize: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        bar.close()
        print("stylize: interrupted", file=sys.stderr)
        return 130
    bar.close()
    result.image.save(args.output)
    losses = "  ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
    print(f"wrote {args.output} ({result.image.width}×{result.image.height}) in {result.elapsed:.1f} s "
          f"on {result.device}, seed {result.settings.seed}, {result.settings.precision}\nfinal losses: {losses}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
