"""Turn untrusted image bytes from Discord users into a plain RGB picture, or refuse politely."""

from __future__ import annotations

import warnings
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

# Only the everyday formats: every extra decoder Pillow enables is extra attack surface.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")


class ImageError(ValueError):
    """A user-facing refusal: str(e) is a short friendly message saying what to do instead."""


def decode_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """Decode `data` into a new RGB image with no metadata: first frame, EXIF rotation applied.

    The pixel budget is checked against the header size, before any pixel data is
    decompressed, so a tiny file claiming huge dimensions costs nothing.
    """
    try:
        # Pillow's own bomb check fires inside open() as a warning; make it an error
        # only here (catch_warnings restores the filters on exit).
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(BytesIO(data), formats=ALLOWED_FORMATS) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise _too_large(max_pixels)
                im.load()  # first frame only; truncation and corruption surface here
                upright = ImageOps.exif_transpose(im)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(
            "That file isn't an image I can read — send a PNG, JPEG, WEBP, GIF or BMP."
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(max_pixels) from None
    except Exception as exc:
        # Pillow reports malformed input as OSError, SyntaxError, ValueError, EOFError,
        # struct.error, IndexError, ...: for untrusted bytes they all mean "unreadable".
        raise ImageError(
            "That image looks damaged or incomplete — save it again, or send a different one."
        ) from exc
    rgb = _to_rgb(upright)
    rgb.info = {}
    return rgb


def _too_large(max_pixels: int) -> ImageError:
    return ImageError(
        f"That image is too large (the limit is {max_pixels / 1e6:.3g} megapixels)"
        " — send a smaller one."
    )


def _to_rgb(im: Image.Image) -> Image.Image:
    """Flatten any decoded mode to RGB: transparency onto white, 16-bit scaled to 8-bit."""
    if im.mode.startswith("I"):
        # 16-bit greyscale: a plain convert() clips everything above 255 to white.
        im = im.convert("I").point(lambda v: v / 257).convert("L")
    if im.has_transparency_data:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")
