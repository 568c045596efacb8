"""Paint the README's control rows: two styles in two regions of a mask, and one style's brushwork on
another's composition (fine_style).

    nice -n 10 uv run python scripts/gallery_control.py     # writes docs/gallery/control.jpg, scale_control.jpg

Small (192 px, 80 steps, seeded) so it runs in minutes on a CPU; each row's caption in the README gives
the `stylize` command that paints its result.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import Settings, stylize  # noqa: E402

EXAMPLES, OUT = ROOT / "examples", ROOT / "docs" / "gallery"
SETTINGS = {"size": 192, "steps": 80, "seed": 1}
TILE = 160  # tile height in the row


def face_mask(size: tuple[int, int]) -> Image.Image:
    """White ellipse over the middle of the picture (Chelsea's face), black around it."""
    mask = Image.new("RGB", size, "black")
    w, h = size
    ImageDraw.Draw(mask).ellipse((w * 0.22, h * 0.02, w * 0.78, h * 0.98), fill="white")
    return mask


def row(tiles: list[tuple[str, Image.Image]], path: Path) -> None:
    """Tiles side by side at one height, each captioned underneath; saved as a small JPEG."""
    scaled = [(label, image.convert("RGB").resize((round(image.width * TILE / image.height), TILE)))
              for label, image in tiles]
    sheet = Image.new("RGB", (sum(i.width for _, i in scaled) + 8 * (len(scaled) + 1), TILE + 30), "white")
    draw, x = ImageDraw.Draw(sheet), 8
    for label, image in scaled:
        sheet.paste(image, (x, 4))
        draw.text((x, TILE + 10), label, fill="black")
        x += image.width + 8
    sheet.save(path, quality=85, optimize=True)


def main() -> None:
    photo = Image.open(EXAMPLES / "chelsea.png").convert("RGB")
    starry, scream = (Image.open(EXAMPLES / n).convert("RGB") for n in ("starry_night.jpg", "the_scream.jpg"))
    mask = face_mask(photo.size)
    mask.save(OUT / "chelsea_mask.png")
    regions = stylize(photo, [starry, scream], Settings.parse(SETTINGS), mask=mask).image
    row([("photo", photo), ("mask", mask), ("style 1 (white)", starry), ("style 2 (black)", scream),
         ("result", regions)], OUT / "control.jpg")
    blended = stylize(photo, [starry, scream], Settings.parse(SETTINGS)).image
    scaled = stylize(photo, [starry, scream], Settings.parse({**SETTINGS, "fine_style": 2})).image
    row([("style 1", starry), ("style 2", scream), ("blended 1:1", blended),
         ("fine_style=2", scaled)], OUT / "scale_control.jpg")


if __name__ == "__main__":
    main()
