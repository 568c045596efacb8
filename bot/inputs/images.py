"""Turn untrusted image bytes from Discord users into a small plain sRGB picture, or refuse politely."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from engine.animate import MIN_DELAY_MS, SLOW_DELAY_MS

# Only the everyday formats: every extra decoder Pillow enables is extra attack surface.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
WHITE = (255, 255, 255)
CLIP_PIXELS = 320_000_000  # an animation's frames × canvas: ~1.7 s of CPU to decode (README, Hostile input)
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


class ImageError(ValueError):
    """A user-facing refusal: str(e) is a short friendly message saying what to do instead."""


def limit_pixels(max_pixels: int) -> None:
    """Set Pillow's own decompression-bomb limit from the configuration: once, at start-up.

    Image.MAX_IMAGE_PIXELS is process-wide, so it is never changed per call (decodes run in parallel
    threads). Pillow refuses above twice the limit and only warns above it; decode_image refuses
    everything above `max_pixels` itself, so that warning says nothing and is silenced.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def decode_image(data: bytes, *, max_pixels: int, long_side: int | None = None, short_side: int = 0,
                 pixels: int = 0) -> Image.Image:
    """Decode `data` into a new sRGB image with no metadata: first frame, EXIF rotation applied,
    transparency on white, colour profile converted.

    Given `long_side` or `pixels`, the picture is shrunk right away (never enlarged) to the smallest size
    whose long side is at least `long_side`, short side at least `short_side` and pixel count about
    `pixels`: a job then holds only the pixels the painter will use, and a JPEG is even decoded at 1/2,
    1/4 or 1/8 scale. The pixel budget is checked against the header size, before any pixel data is
    decompressed, so a tiny file claiming huge dimensions costs nothing.
    """
    with _reading(data, max_pixels) as im:
        target = _target(im.size, long_side, short_side, pixels)
        if target is not None:
            im.draft(None, target)
        im.load()  # first frame only; truncation and corruption surface here
        ImageOps.exif_transpose(im, in_place=True)
        profile = im.info.get("icc_profile")
        out = shrink(_to_rgb(im), long_side, short_side, pixels)
        if out is im:  # `im` dies with the `with`
            out = im.copy()
    if profile:
        _to_srgb(out, profile)
    out.info = {}
    return out


@dataclass(frozen=True)
class Clip:
    """An animated photo's frames (RGB, all one size) and how long each one shows, in ms."""

    frames: tuple[Image.Image, ...]
    durations_ms: tuple[int, ...]


def is_animated(data: bytes) -> bool:
    """Whether the file holds more than one frame (False for anything unreadable: decode_image says why)."""
    try:
        with Image.open(BytesIO(data), formats=ALLOWED_FORMATS) as im:
            return bool(getattr(im, "is_animated", False))
    except Exception:
        return False


def decode_clip(data: bytes, *, max_pixels: int, max_frames: int, max_seconds: float, max_fps: float,
                check: Callable[[int, tuple[int, int]], None], long_side: int | None = None,
                pixels: int = 0) -> Clip:
    """Decode every frame of an animated GIF, APNG or WebP (a still: one frame) like decode_image, each
    shrunk at once as decode_image would shrink it.

    Before any pixel is decoded the header is judged: a file whose frames could not fit `max_seconds`
    even at MIN_DELAY_MS each, or whose frames' canvases add up to more than CLIP_PIXELS, is refused, and
    `check(frames, canvas)` (which raises to refuse) judges one painted frame; at most as many frames as
    the file claims are read. Headers lie, so decoding stops with a refusal at the first frame that breaks
    a cap: a frame larger than the canvas, the running time past `max_seconds`, or more than `max_frames`
    frames kept. Delays under MIN_DELAY_MS count as SLOW_DELAY_MS, as browsers show them. Frames faster
    than `max_fps` are merged into the one before (their durations added), so every kept frame starts when
    it did and the total duration stays; `max_frames` counts the kept frames, and `check` judges them all
    at the end. A file with fewer frames than it claims is refused as incomplete.
    """
    frames: list[Image.Image] = []
    durations: list[int] = []
    with _reading(data, max_pixels) as im:  # EOFError while seeking: fewer frames than the file claims
        canvas = im.size
        claimed = getattr(im, "n_frames", 1)
        if claimed * MIN_DELAY_MS > max_seconds * 1000:
            raise _too_long(max_seconds, f"has {claimed:,} frames, so it lasts at least "
                                         f"{claimed * MIN_DELAY_MS / 1000:g} s")
        if claimed * (area := math.prod(canvas)) > CLIP_PIXELS:
            raise ImageError(f"That animation is {claimed:,} frames of {canvas[0]}×{canvas[1]}: "
                             f"{claimed * area / 1e6:,.0f} megapixels to decode, over the {CLIP_PIXELS / 1e6:,.0f} I "
                             f"decode for one animation ({CLIP_PIXELS // area:,} frames of that size) — send a "
                             "smaller or shorter one.")
        check(1, canvas)
        profile = im.info.get("icc_profile")
        elapsed, kept_at, slot = 0, -math.inf, 1000 / max_fps
        for index in range(claimed):
            im.seek(index)  # a GIF frame larger than its canvas grows im.size here, before it is decoded
            if im.size != canvas:
                raise ImageError(f"Frame {index + 1} of that animation is {im.size[0]}×{im.size[1]}, larger "
                                 f"than its {canvas[0]}×{canvas[1]} canvas — the file is damaged or crafted; "
                                 "save it again.")
            im.load()
            ms = round(im.info.get("duration") or 0)  # WebP knows a frame's duration once it is loaded
            ms = ms if ms >= MIN_DELAY_MS else SLOW_DELAY_MS
            if elapsed + ms > max_seconds * 1000:
                raise _too_long(max_seconds, f"lasts more than {max_seconds:g} s (its first {index + 1} frames take "
                                             f"{(elapsed + ms) / 1000:g} s)")
            if elapsed - kept_at < slot - 1e-6:  # too soon after the last kept frame: merged into it
                durations[-1] += ms
            elif len(frames) == max_frames:
                raise ImageError(f"That animation has more frames than the {max_frames} you may animate, even with "
                                 f"frames faster than {max_fps:g} per second merged — trim it.")
            else:
                frame = shrink(_to_rgb(im), long_side, 0, pixels)
                frames.append(frame.copy() if frame is im else frame)
                durations.append(ms)
                kept_at = elapsed
            elapsed += ms
    check(len(frames), canvas)
    if profile:
        for frame in frames:
            _to_srgb(frame, profile)
    for frame in frames:
        frame.info = {}
    return Clip(tuple(frames), tuple(durations))


def _too_long(max_seconds: float, what: str) -> ImageError:
    return ImageError(f"That animation {what}; you may animate at most {max_seconds:g} s — trim it.")


@contextlib.contextmanager
def _reading(data: bytes, max_pixels: int) -> Iterator[Image.Image]:
    """`data` opened, its header's size checked against `max_pixels` before any pixel is decompressed; whatever
    goes wrong while it is read becomes an ImageError saying what to do."""
    try:
        with Image.open(BytesIO(data), formats=ALLOWED_FORMATS) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise _too_large(max_pixels)
            yield im
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("That file isn't an image I can read — send a PNG, JPEG, WEBP, GIF or BMP.") from None
    except Image.DecompressionBombError:
        raise _too_large(max_pixels) from None
    except Exception as exc:
        # Pillow reports malformed input as OSError, SyntaxError, ValueError, EOFError,
        # struct.error, IndexError, ...: for untrusted bytes they all mean "unreadable".
        raise ImageError("That image looks damaged or incomplete — save it again, or send a different one.") from exc


def _too_large(max_pixels: int) -> ImageError:
    return ImageError(
        f"That image is too large (the limit is {max_pixels / 1e6:.3g} megapixels)"
        " — send a smaller one."
    )


def _target(size: tuple[int, int], long_side: int | None, short_side: int, pixels: int = 0
            ) -> tuple[int, int] | None:
    """The smallest (width, height) of `size`'s shape with the minimums met; None if that is no smaller
    or nothing was asked."""
    width, height = size
    scale = max((long_side or 0) / max(width, height), short_side / min(width, height),
                math.sqrt(pixels / (width * height)))
    if scale >= 1 or not (long_side or pixels):
        return None
    return max(1, round(width * scale)), max(1, round(height * scale))  # rounding keeps both minimums


def shrink(im: Image.Image, long_side: int | None, short_side: int = 0, pixels: int = 0) -> Image.Image:
    """`im` shrunk as decode_image would (never enlarged); `im` itself when it is small enough already."""
    target = _target(im.size, long_side, short_side, pixels)
    if target is None:
        return im
    return im.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Flatten any decoded mode to RGB: transparency onto white, 16-bit scaled to 8-bit.

    Transparency is pasted onto white through the alpha channel, so a large RGBA picture costs one
    RGB copy, not the several that convert/alpha_composite/convert make.
    """
    if im.mode.startswith("I"):
        # 16-bit greyscale: a plain convert() clips everything above 255 to white; a transparent
        # colour (PNG tRNS) must be read off the 16-bit values, before scaling merges it with others.
        transparent = im.info.get("transparency")
        grey = im.convert("I").point(lambda v: v / 257).convert("L")
        if isinstance(transparent, int):
            alpha = Image.fromarray(np.where(np.asarray(im) == transparent, 0, 255).astype(np.uint8), "L")
            return _on_white(grey, alpha)
        return grey.convert("RGB")
    if im.has_transparency_data:
        if im.mode not in ("RGBA", "LA"):  # a palette or colour marked transparent
            im = im.convert("RGBA")
        return _on_white(im, im)
    return im if im.mode == "RGB" else im.convert("RGB")


def _on_white(im: Image.Image, mask: Image.Image) -> Image.Image:
    white = Image.new("RGB", im.size, WHITE)
    white.paste(im, mask=mask)  # RGBA/LA masks paste through their alpha channel
    return white


def _to_srgb(im: Image.Image, profile: bytes) -> None:
    """Convert `im` (RGB) in place from its embedded RGB colour profile (e.g. Display P3) to sRGB.

    A profile that is unreadable or not for RGB pixels is ignored: the picture is taken as sRGB.
    """
    try:
        source = ImageCms.ImageCmsProfile(BytesIO(profile))
        if source.profile.xcolor_space.strip() != "RGB":
            return
        transform = ImageCms.buildTransform(source, _SRGB, "RGB", "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return
    ImageCms.applyTransform(im, transform, inPlace=True)
