"""Short animations (timelapses) as animated WebP or GIF, whichever is smaller and fits a byte budget.

Both encoders silently merge identical consecutive frames, and GIF stores delays in centiseconds, so
this module merges repeats itself (adding their durations) and rounds GIF delays to 10 ms: what comes
back is exactly the distinct frames with their durations, whichever format wins.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageChops

GIF_MIN_MS = 20  # browsers show a GIF delay of 0 or 10 ms as 100 ms
WEBP_QUALITY = 80
PALETTE_SAMPLE = 128  # frames are shrunk to at most this side to choose the GIF's one palette


class AnimationTooLarge(ValueError):
    """Neither format fits the byte budget."""

    def __init__(self, sizes: dict[str, int], max_bytes: int) -> None:
        got = ", ".join(f"{kind} {size:,} bytes" for kind, size in sizes.items())
        super().__init__(f"the animation does not fit {max_bytes:,} bytes ({got})")
        self.sizes = sizes


def distinct(frames: Sequence[Image.Image], durations_ms: Sequence[int]) -> tuple[list[Image.Image], list[int]]:
    """RGB frames with identical consecutive ones merged into one lasting their summed durations."""
    if not frames or len(frames) != len(durations_ms):
        raise ValueError(f"need one duration per frame, got {len(frames)} frames and {len(durations_ms)} durations")
    if any(ms <= 0 for ms in durations_ms):
        raise ValueError("frame durations must be positive")
    if len({frame.size for frame in frames}) != 1:
        raise ValueError("all frames must have the same size")
    out, times = [frames[0].convert("RGB")], [int(durations_ms[0])]
    for frame, ms in zip(frames[1:], durations_ms[1:]):
        rgb = frame.convert("RGB")
        if ImageChops.difference(rgb, out[-1]).getbbox() is None:
            times[-1] += int(ms)
        else:
            out.append(rgb)
            times.append(int(ms))
    return out, times


def webp(frames: Sequence[Image.Image], durations_ms: Sequence[int]) -> bytes:
    """Animated lossy WebP of distinct RGB frames (see `distinct`), looping forever."""
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=list(frames[1:]), duration=list(durations_ms),
                   loop=0, quality=WEBP_QUALITY, method=4)
    return buffer.getvalue()


def gif(frames: Sequence[Image.Image], durations_ms: Sequence[int]) -> bytes:
    """GIF of distinct RGB frames with one palette for the whole animation and no dithering: per-frame
    palettes and dither noise change from frame to frame and make a slow-developing picture flicker."""
    palette = _palette(frames)
    indexed = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    times = [max(GIF_MIN_MS, round(ms / 10) * 10) for ms in durations_ms]
    # Quantising may make neighbours identical, which Pillow would merge: keep the merge explicit.
    kept, kept_times = [indexed[0]], [times[0]]
    for frame, ms in zip(indexed[1:], times[1:]):
        if ImageChops.difference(frame, kept[-1]).getbbox() is None:
            kept_times[-1] += ms
        else:
            kept.append(frame)
            kept_times.append(ms)
    buffer = io.BytesIO()
    kept[0].save(buffer, "GIF", save_all=True, append_images=kept[1:], duration=kept_times, loop=0)
    return buffer.getvalue()


ENCODERS = {"webp": webp, "gif": gif}


def encode(frames: list[Image.Image], durations_ms: list[int], max_bytes: int | None = None,
           kinds: Sequence[str] = ("webp", "gif")) -> tuple[bytes, str]:
    """The smallest of animated WebP and GIF (or of `kinds`) that fits `max_bytes`, as (data, "webp" | "gif").
    Raises AnimationTooLarge (a ValueError) when none fits."""
    frames, durations_ms = distinct(frames, durations_ms)
    encoded = {kind: ENCODERS[kind](frames, durations_ms) for kind in kinds}
    kind = min(encoded, key=lambda k: len(encoded[k]))
    if max_bytes is not None and len(encoded[kind]) > max_bytes:
        raise AnimationTooLarge({k: len(v) for k, v in encoded.items()}, max_bytes)
    return encoded[kind], kind


def _palette(frames: Sequence[Image.Image]) -> Image.Image:
    """One 256-colour palette chosen from all frames side by side (each shrunk to bound the cost)."""
    thumbs = []
    for frame in frames:
        thumb = frame.copy()
        thumb.thumbnail((PALETTE_SAMPLE, PALETTE_SAMPLE))
        thumbs.append(thumb)
    sheet = Image.new("RGB", (sum(t.width for t in thumbs), max(t.height for t in thumbs)))
    x = 0
    for thumb in thumbs:
        sheet.paste(thumb, (x, 0))
        x += thumb.width
    return sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


FIRST_MS, FRAME_MS, LAST_MS = 600, 250, 2000  # a timelapse lingers on the photo and on the result


def timelapse(frames: Sequence[Image.Image], max_bytes: int | None = None,
              kinds: Sequence[str] = ("webp", "gif")) -> tuple[bytes, str]:
    """A run's frames (engine.Result.frames: the start, each progress report, the result) as an animation."""
    durations = [FIRST_MS, *[FRAME_MS] * (len(frames) - 2), LAST_MS] if len(frames) > 1 else [LAST_MS]
    return encode(list(frames), durations, max_bytes, kinds)
