"""Regenerate the README gallery from the example pictures with the engine.

    nice -n 10 uv run python scripts/gallery.py            # writes docs/gallery/*.jpg and docs/gallery/README.md

Small pictures (256–384 px) so it runs in minutes on a CPU. Every picture is seeded; its caption (in
docs/gallery/README.md and in the JPEG's comment) gives the one `stylize` command that paints it, the
device and precision it ran with, and how long it took. JPEGs are kept under --max-kb.
"""

from __future__ import annotations

import argparse
import io
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import Result, Settings, format_value, stylize  # noqa: E402
from engine.params import SPEC  # noqa: E402

EXAMPLES = ROOT / "examples"


@dataclass(frozen=True)
class Piece:
    name: str
    title: str
    content: str
    styles: tuple[str, ...]
    params: dict[str, object] = field(default_factory=dict)


SIZE, STEPS = 256, 120
PIECES = (
    Piece("chelsea_starry_night", "Chelsea × The Starry Night", "chelsea.png", ("starry_night.jpg",)),
    Piece("astronaut_the_scream", "Astronaut × The Scream", "astronaut.jpg", ("the_scream.jpg",)),
    Piece("astronaut_starry_night_luminance", "Astronaut × The Starry Night, photo's colours kept", "astronaut.jpg",
          ("starry_night.jpg",), {"preserve_color": "luminance"}),
    Piece("chelsea_blend", "Chelsea × The Starry Night + The Scream, blended 1:1", "chelsea.png",
          ("starry_night.jpg", "the_scream.jpg"), {"style_blend": "1,1"}),
)


def settings_for(piece: Piece, size: int, steps: int, seed: int, precision: str) -> Settings:
    return Settings.parse({"size": size, "steps": steps, "seed": seed, "precision": precision, **piece.params})


def cli_command(piece: Piece, settings: Settings) -> str:
    """The `stylize` command that paints this picture (as PNG) with exactly these settings."""
    args = ["uv", "run", "stylize", f"examples/{piece.content}", *(f"examples/{s}" for s in piece.styles),
            "-o", f"{piece.name}.png"]
    defaults = Settings()
    for spec in SPEC.values():
        value = getattr(settings, spec.name)
        if spec.name in ("size", "steps", "seed", "precision") or value != getattr(defaults, spec.name):
            args += [f"--{spec.name.replace('_', '-')}", format_value(value)]
    return shlex.join(args)


def caption(piece: Piece, result: Result, command: str) -> str:
    return (f"{piece.title}. {command}  # {result.image.width}x{result.image.height}, {result.steps} steps "
            f"on {result.device} ({result.settings.precision}) in {result.elapsed:.0f} s")


def save_jpeg(image: Image.Image, path: Path, max_bytes: int, comment: str = "") -> int:
    """Write the best JPEG quality (95 down to 40) that fits under max_bytes; returns the quality used."""
    for quality in range(95, 35, -5):
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=quality, optimize=True, progressive=True,
                                  comment=comment.encode("utf-8"))
        if buffer.tell() <= max_bytes:
            path.write_bytes(buffer.getvalue())
            return quality
    raise SystemExit(f"gallery: {path.name} does not fit in {max_bytes} bytes even at quality 40")


def contact_sheet(rows: list[tuple[Piece, Image.Image]], tile: int = 192) -> Image.Image:
    """One row per piece: the photo, its style picture(s), the result — each fitted in a tile, labelled."""
    columns = 1 + max(len(piece.styles) for piece, _ in rows) + 1
    label_h, pad = 18, 6
    sheet = Image.new("RGB", (columns * (tile + pad) + pad, len(rows) * (tile + label_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    for r, (piece, result) in enumerate(rows):
        y = pad + r * (tile + label_h + pad)
        cells = [(piece.content, Image.open(EXAMPLES / piece.content))]
        cells += [(s, Image.open(EXAMPLES / s)) for s in piece.styles]
        cells += [(None, None)] * (columns - 1 - len(cells)) + [("result", result)]
        for c, (label, image) in enumerate(cells):
            if image is None:
                continue
            x = pad + c * (tile + pad)
            thumb = image.convert("RGB")
            thumb.thumbnail((tile, tile), Image.Resampling.LANCZOS)
            sheet.paste(thumb, (x + (tile - thumb.width) // 2, y + (tile - thumb.height) // 2))
            draw.text((x, y + tile + 3), label, fill="black", font=font)
    return sheet


def markdown(entries: list[tuple[Piece, str]], regenerate: str) -> str:
    lines = ["# Gallery", "",
             "Painted by the engine from the pictures in `examples/` (credits: `examples/CREDITS.md`). "
             "Regenerate them all with:", "", "```", regenerate, "```", "",
             "Each caption is the single `stylize` command that paints the picture (as PNG; the files here "
             "are its JPEG re-encoding, kept under 100 KB), then where and how fast it ran.", "",
             "![contact sheet: photo, style, result](contact_sheet.jpg)", ""]
    for piece, text in entries:
        title, _, rest = text.partition(". ")
        command, _, ran = rest.partition("  # ")
        lines += [f"## {title}", "", f"![{title}]({piece.name}.jpg)", "", "```", command, "```", "",
                  f"Ran: {ran}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery")
    parser.add_argument("--size", type=int, default=SIZE, help=f"longest side (default {SIZE})")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"steps per picture (default {STEPS})")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                        help="fp32 (default) repeats on any machine; bf16 is faster on CPUs that have it")
    parser.add_argument("--device", default=None, help="cpu, cuda, … (default: best available)")
    parser.add_argument("--max-kb", type=int, default=100, help="largest JPEG, in kB of 1000 bytes (default 100)")
    parser.add_argument("--only", nargs="*", default=None, help="paint only these pieces (by name)")
    parser.add_argument("--sheet-only", action="store_true",
                        help="paint nothing: rebuild contact_sheet.jpg from the pictures already in --out")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    regenerate = "nice -n 10 uv run python scripts/gallery.py" + "".join(
        f" --{name} {getattr(args, name)}" for name in ("size", "steps", "seed", "precision")
        if getattr(args, name) != parser.get_default(name))
    if args.sheet_only:
        rows = [(piece, Image.open(args.out / f"{piece.name}.jpg")) for piece in PIECES]
        save_jpeg(contact_sheet(rows), args.out / "contact_sheet.jpg", args.max_kb * 1000,
                  comment=f"Stylize gallery: photo, style(s), result. {regenerate}")
        print(f"wrote {args.out / 'contact_sheet.jpg'}")
        return 0

    rows, entries = [], []
    for piece in PIECES:
        if args.only is not None and piece.name not in args.only:
            continue
        settings = settings_for(piece, args.size, args.steps, args.seed, args.precision)
        started = time.perf_counter()
        result = stylize(Image.open(EXAMPLES / piece.content), [Image.open(EXAMPLES / s) for s in piece.styles],
                         settings, device=args.device)
        text = caption(piece, result, cli_command(piece, result.settings))
        quality = save_jpeg(result.image, args.out / f"{piece.name}.jpg", args.max_kb * 1000, comment=text)
        print(f"{piece.name}.jpg  q{quality}  {time.perf_counter() - started:.0f} s  {text}", flush=True)
        rows.append((piece, result.image))
        entries.append((piece, text))
    if args.only is None:
        save_jpeg(contact_sheet(rows), args.out / "contact_sheet.jpg", args.max_kb * 1000,
                  comment=f"Stylize gallery: photo, style(s), result. {regenerate}")
        (args.out / "README.md").write_text(markdown(entries, regenerate), encoding="utf-8")
        print(f"wrote {args.out / 'contact_sheet.jpg'} and {args.out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
