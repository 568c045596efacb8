"""Taking pictures in: downloads (size-capped), decoding (off the event loop, DECODERS at a time), shrinking
to the size the painter will use, the caps an animation is judged by before any frame is decoded, and the
memory check — all before a job is queued."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

import discord
from PIL import Image

from engine import MIN_SIDE, EngineError, ParamError, Settings, check_shape, masks, pick_device
from engine.memory import largest_size, predict_peak_bytes
from engine.stamp import StyleCredit
from engine.transfer import fit as fit_size

from ..inputs.fetch import FetchError, fetch_url
from ..inputs import images
from ..inputs.images import Clip, ImageError
from ..library import Style
from ..parsing import UsageError
from .request import Inputs, Sources

if TYPE_CHECKING:
    from .host import Host
    from ..config import Caps, Motion
    from ..storage import KeptJob

DECODERS = 2  # pictures decoded at once: a full-size decode is the bot's largest memory cost


class Intake:
    """The bot's pictures on their way in; `close` stops the decoder threads."""

    def __init__(self, bot: Host) -> None:
        self.bot = bot
        self.config = bot.config
        self._decoder = ThreadPoolExecutor(DECODERS, thread_name_prefix="stylize-decode")
        self._device = str(pick_device(self.config.device))  # where jobs are painted, for the memory model

    def close(self) -> None:
        self._decoder.shutdown(wait=False, cancel_futures=True)

    async def gather(self, owner: int, sources: Sources, settings: Settings, caps: Caps) -> Inputs:
        """Download and decode a new job's pictures (the photo kept up to keep_side, or all its frames when the
        job animates it, within `caps`); library styles come from the library."""
        kept_photo, clip, first_only = await self._photo(sources.photo, settings, caps.motion)
        if clip is not None and sources.mask is not None:
            raise UsageError("A mask works on stills only, not on an animation — leave the mask out, or add "
                             "`animate=false` to paint the first frame.")
        settings = settings.for_shape(kept_photo.size)  # styles follow the size a pixel count gives this photo
        caps.check(settings, kept_photo.size)  # the style cap, judged at the size this photo's styles will be painted
        styles = sources.styles
        style_images = [await self.bot.library.image(s) if isinstance(s, Style) else
                        await self.load(s, f"Style picture {n}" if len(styles) > 1 else "The style picture",
                                        settings, style=True)
                        for n, s in enumerate(styles, start=1)]
        mask_image = None if sources.mask is None else await self.load(sources.mask, "The mask", settings)
        if mask_image is not None:
            masks.check_aspect(mask_image, kept_photo, "mask")
        credits = tuple(StyleCredit(s.name, s.credit) if isinstance(s, Style) else StyleCredit() for s in styles)
        return Inputs(owner, kept_photo, tuple(style_images), credits, mask_image, clip=clip, first_only=first_only)

    async def kept(self, kept: KeptJob, settings: Settings, caps: Caps, start: discord.Attachment | None = None
                   ) -> Inputs:
        """A kept job's pictures (bot.storage), decoded within the decoders' limit — the photo, the styles, the
        mask — and the picture to start from (⤴ Bigger: the result on the message)."""
        data = [await self.bot.store.picture(name) for name in kept.pictures]
        pixels = self.config.limits.input_pixels
        photo, *styles = [await self.decode(partial(images.decode_image, d, max_pixels=pixels)) for d in data]
        caps.check(settings, photo.size)  # the style cap at the size this photo's styles will be painted
        mask = styles.pop() if kept.masked else None
        init = await self.load(start, "The picture", settings) if start is not None else None
        credits = tuple(StyleCredit(**c) for c in json.loads(kept.styles)) or (StyleCredit(),) * len(styles)
        return Inputs(kept.user_id, photo, tuple(styles), credits, mask, init)

    def keep_side(self) -> int:
        """The long side photos are kept at (⤴ Bigger paints from them): the largest size any role may ask
        for, while the store keeps jobs; else nothing beyond the job's own size."""
        limits = self.config.limits
        return limits.caps_for([role.id for role in limits.roles]).max_size if self.bot.store.keeps_jobs else 0

    async def load(self, source: discord.Attachment | str, what: str, settings: Settings, *,
                   style: bool = False, long_side: int | None = None) -> Image.Image:
        """Download (size-capped) and decode (off the loop, DECODERS at a time) one input, shrunk at once to the
        largest size the painter will use — the job's size (or pixel count) for the photo (or `long_side`, to
        keep it larger), size × style_scale for a style (at least MIN_SIDE px across, see engine.style_side;
        `settings` already sized for the photo) — or refuse with a friendly reason."""
        with _refusals(what):
            return await self._still(await self._download(source), settings, style=style, long_side=long_side)

    def check_memory(self, settings: Settings, shape: tuple[int, int], n_styles: int, frames: int = 1) -> None:
        """Refuse a job (an animation of `frames` frames) that would not fit the painter's memory
        (engine/memory.py), naming the size that would."""
        budget = self.config.limits.job_memory(self.config.workers, self._device)
        need = predict_peak_bytes(settings, shape, n_styles, self._device, frames)
        if need is None or need <= budget:
            return
        largest = largest_size(settings, budget, shape, n_styles, self._device, frames) or 0
        width, height = fit_size(shape, max(largest, 1))
        ask = (f"size={largest}" if settings.pixels is None else f"pixels={width * height}") if largest else ""
        raise UsageError(f"That job would need about {need / 1e9:.1f} GB of memory, and a job may use "
                         f"{budget / 1e9:.1f} GB here — " + (f"ask for {ask} or less" if ask else
                                                             "even the smallest size would not fit"))

    async def decode(self, work: Callable[[], Any]) -> Any:
        """`work` on the decoder threads (DECODERS at a time), off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._decoder, work)


    async def _still(self, data: bytes, settings: Settings, *, style: bool = False, long_side: int | None = None
                     ) -> Image.Image:
        """Decode (off the loop, DECODERS at a time) and shrink one picture as `load` says."""
        long_side, short_side = ((round(settings.size * settings.style_scale), MIN_SIDE) if style
                                 else (long_side or settings.size, 0))
        pixels = 0 if style or settings.pixels is None else settings.pixels
        image = await self.decode(partial(images.decode_image, data, max_pixels=self.config.limits.input_pixels,
                                           long_side=None if pixels else long_side, short_side=short_side,
                                           pixels=pixels))
        check_shape(image.size, settings.size if style else settings.long_side(image.size))
        return image

    async def _photo(self, source: discord.Attachment | str, settings: Settings, motion: Motion
                     ) -> tuple[Image.Image, Clip | None, bool]:
        """The photo (kept up to keep_side) — or, when it is animated and `settings.animate`, its frames within
        `motion`'s caps (the header checked before any frame is decoded) and the first frame as the photo —
        and whether it is animated but painted as a still."""
        with _refusals("The photo"):
            data = await self._download(source)
            animated = await self.decode(partial(images.is_animated, data))
            if not (animated and settings.animate):
                still = await self._still(data, settings, long_side=max(settings.size, self.keep_side()))
                return still, None, animated
            pixels = settings.pixels or 0
            clip = await self.decode(partial(
                images.decode_clip, data, max_pixels=self.config.limits.input_pixels, max_frames=motion.max_frames,
                max_seconds=motion.max_seconds, max_fps=motion.max_fps, check=partial(_judge, motion, settings),
                long_side=None if pixels else settings.size, pixels=pixels))
            check_shape(clip.frames[0].size, settings.long_side(clip.frames[0].size))
            return clip.frames[0], clip, False

    async def _download(self, source: discord.Attachment | str) -> bytes:
        """An attachment's or a link's bytes, within [limits] attachment_bytes."""
        limits = self.config.limits
        if isinstance(source, discord.Attachment):
            if source.size > limits.attachment_bytes:
                raise ImageError(f"That file is {_megabytes(source.size)}; the limit is "
                                 f"{_megabytes(limits.attachment_bytes)} — send a smaller image.")
            return await source.read()
        return await fetch_url(source, max_bytes=limits.attachment_bytes, timeout=limits.fetch_timeout,
                               session=self.bot.fetch_session)


def _judge(motion: Motion, settings: Settings, frames: int, canvas: tuple[int, int]) -> None:
    """decode_clip's header check: `motion`'s caps, refused as an ImageError."""
    try:
        motion.check(settings, frames, canvas)
    except ParamError as error:
        raise ImageError(str(error)) from None


@contextlib.contextmanager
def _refusals(what: str) -> Iterator[None]:
    """Downloading and decoding `what` fails only with a UsageError that names it and says why."""
    try:
        yield
    except (FetchError, ImageError, EngineError) as error:
        raise UsageError(f"{what}: {error}") from error
    except discord.HTTPException as error:
        raise UsageError(f"{what}: I couldn't download that attachment — try uploading it again.") from error


def _megabytes(n: int) -> str:
    return f"{n / 1_000_000:.3g} MB"
