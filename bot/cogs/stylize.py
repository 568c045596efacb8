"""`stylize`: one hybrid command group — `!stylize …` and `/stylize paint …` — plus help, cancel, queue
(and styles, forget, defaults, carried out in bot/cogs/library.py).

Design of the slash options: the group's callback takes the three attachments as ordinary
parameters and everything else as one `StylizeOptions` flag parameter. `StylizeOptions` is a
`commands.FlagConverter` *generated* from engine.params.SPECS at import: the settings named in TYPED
get a flag each, annotated with `app_commands.Range[int|float, min, max]`, `Literal[*choices]` or
`bool` and described by the Spec's help, so Discord enforces their ranges and offers their choices;
every other setting goes into one free-text `settings` flag (Discord allows 25 options per command),
and `preset` names library styles (with autocomplete). discord.py's hybrid machinery flattens a
FlagConverter into separate slash options. On the prefix path the stock FlagConverter parser (which
silently drops unknown keys) is replaced by our own: the rest of the message is split into links,
style names and key=value pairs (bot.parsing) — the same parser that reads the slash `settings`
text — and handed to Settings.parse, which refuses unknown keys with a suggestion. Both paths end in
the same Settings.parse call on top of the server's defaults. A hybrid group (rather than a lone
hybrid command) is what lets `!stylize help`, `!stylize cancel` and the rest exist beside
`!stylize <images> key=value…`; slash commands cannot take options and have subcommands at once, so
the painting itself is the group's `paint` fallback subcommand.

Every job — from the command, the "again" buttons (bot/cogs/again.py) or the menus (bot/cogs/menus.py),
all through `submit` — gets a status message (with a Cancel button) and an asyncio task that edits it
from the backend's snapshots every `progress_interval` seconds, then replies with the picture (its
settings stamped inside, the timelapse beside it if asked for) — with the "again" buttons when the
job's inputs were kept. A backend whose jobs outlive the bot (Celery) hands the jobs of the previous
run to `recover()` at start; they are followed the same way, answering in their channel, in reply to
their command.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import logging
import math
import types
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, Optional, Self

import discord
from discord import app_commands
from discord.ext import commands
from PIL import Image

from engine import MIN_SIDE, SPECS, EngineError, ParamError, Settings, Spec, check_shape, masks, movie, pick_device
from engine.memory import largest_size, predict_peak_bytes
from engine.params import SPEC
from engine.stamp import Stamp, StyleCredit
from engine.transfer import fit as fit_size

from ..inputs.fetch import FetchError, fetch_url
from ..inputs.images import Clip, ImageError, decode_clip, decode_image, is_animated, shrink
from ..jobs import Admission, Detached, Job, QueueFull, Snapshot, Status, settings_json, short_id
from ..library import Style
from ..parsing import (Arguments, UsageError, canonical, check_blend, echo, parse_settings, pick_inputs,
                       pick_slash_inputs, split_arguments, style_names)
from ..render import (credits_text, encode_for_upload, fit, help_embeds, preview_png, queue_text, result_embed,
                      status_text, usage)
from ..storage import StorageUnavailable

if TYPE_CHECKING:
    from ..app import StylizeBot
    from ..config import Caps, Config, Motion
    from .library import StyleLibrary

log = logging.getLogger(__name__)

FINAL_WORD_TIMEOUT = 15.0  # seconds cog_unload waits for jobs' last messages (shutdown)
DECODERS = 2  # pictures decoded at once: a full-size decode is the bot's largest memory cost
SLASH_DESCRIPTION = 100  # Discord's limit for option descriptions
ANIMATE_HINT = "(Your photo is animated: I painted its first frame. Add `animate=true` to paint every frame.)"


class _OptionsBase(commands.FlagConverter):
    """The flags half of the command; subclassed below with one flag per Spec."""

    _parsed = None  # Arguments, set on the prefix path (no annotation: FlagsMeta would make it a flag)

    @classmethod
    async def convert(cls, ctx: commands.Context[Any], argument: str) -> Self:
        """Prefix path: links and key=value pairs, unknown keys kept for Settings.parse to refuse."""
        options = await cls._construct_default(ctx)
        options._parsed = split_arguments(argument)
        return options

    def arguments(self) -> Arguments:
        """What the user gave, whichever path it came by (slash: the typed options that were set, plus
        the `settings` text through the prefix parser, and the `preset` names)."""
        if self._parsed is not None:
            return self._parsed
        extra = split_arguments(self.settings or "", links_allowed=False)  # type: ignore[attr-defined]
        if extra.names:
            raise UsageError(f"`settings` takes key=value words only (`{extra.names[0]}` is not one); "
                             "styles go in `preset`.")
        raw = {name: getattr(self, name) for name in TYPED if getattr(self, name) is not None}
        for key, value in extra.raw.items():
            if canonical(key) in raw:
                raise UsageError(f"`{key}` was given twice (as an option and in `settings`)")
            raw[key] = value
        preset = self.preset  # type: ignore[attr-defined]
        return Arguments(raw=raw, names=tuple(style_names(preset)) if preset else ())


def _annotation(spec: Spec) -> Any:
    """The slash option type for one hyperparameter: ranges and choices straight from its Spec."""
    if spec.choices:
        return Literal[spec.choices]
    if spec.type is bool:
        return bool
    if spec.type in (int, float) and (spec.min is not None or spec.max is not None):
        lo, hi = (None if bound is None else spec.type(bound) for bound in (spec.min, spec.max))
        return app_commands.Range[spec.type, lo, hi]
    if spec.type in (int, float):
        return spec.type
    return str  # tuples, e.g. style_blend "2,1"


def _declare(namespace: dict[str, Any]) -> None:
    annotations: dict[str, Any] = {"content_link": str, "style_link": str, "preset": str, "settings": str}
    namespace["content_link"] = commands.flag(default=None, description="link to the photo, instead of attaching it")
    namespace["style_link"] = commands.flag(default=None, description="link to a style picture")
    namespace["preset"] = commands.flag(default=None, description="a style from the library (several: a,b)")
    for name in TYPED:
        annotations[name] = _annotation(SPEC[name])
        namespace[name] = commands.flag(default=None, description=SPEC[name].help[:SLASH_DESCRIPTION])
    namespace["settings"] = commands.flag(default=None, description=_settings_help())
    namespace["__annotations__"] = annotations


TYPED = ("size", "steps", "style_weight", "preserve_color", "seed")
"""The settings people change most get typed slash options (Discord checks ranges and offers choices);
every other one goes into the free-text `settings` option. Discord allows 25 options per command."""


def _settings_help(limit: int = SLASH_DESCRIPTION) -> str:
    """'key=value for the others: num_epoch, …' — as many names as fit Discord's description limit."""
    text = "key=value for the other settings:"
    for spec in SPECS:
        if spec.name not in TYPED:
            if len(text) + len(spec.name) + 3 > limit:
                return text + " …"
            text += f" {spec.name}"
    return text


StylizeOptions = types.new_class("StylizeOptions", (_OptionsBase,), {}, _declare)


class CancelButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"stylize:cancel:(?P<job>[0-9a-f]+)"):
    """The Cancel button on a status message; the job id lives in its custom_id, so no state is kept."""

    def __init__(self, job_id: str) -> None:
        super().__init__(discord.ui.Button(label="Cancel", emoji="🛑", style=discord.ButtonStyle.danger,
                                           custom_id=f"stylize:cancel:{job_id}"))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: Any, /
                             ) -> CancelButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog(Stylize.__cog_name__)  # type: ignore[attr-defined]
        if isinstance(cog, Stylize):
            await cog.cancel_from_button(interaction, self.job_id)


def cancel_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


USER_ERRORS = (UsageError, ParamError, QueueFull, StorageUnavailable)
OUR_FAULT = "Something went wrong on my side — it has been logged. Please try again later."
RESTARTING = "⏸️ I'm restarting — job `{id}` keeps its place, and I'll post the picture here when I'm back."


@dataclass(frozen=True)
class Inputs:
    """A job's pictures, decoded: the photo as taken in (up to keep_side, larger than the job's) and whose it
    is (`forget` deletes what is kept of it), the styles with their library names and credits (for the echo,
    the stamp and the store), the mask and the starting picture (⤴ Bigger); an animated photo's frames when the
    job animates it (`clip`; `photo` is its first frame), or whether only the first frame of an animated photo
    is painted (`first_only`: the reply says how to animate it)."""

    owner: int
    photo: Image.Image
    styles: tuple[Image.Image, ...]
    credits: tuple[StyleCredit, ...]
    mask: Image.Image | None = None
    init: Image.Image | None = None
    clip: Clip | None = None
    first_only: bool = False


@dataclass(frozen=True)
class Origin:
    """Where a job's messages go: the command's context, or — for a job recovered after a restart —
    its channel, replying to the command message (slash commands' follow-ups don't survive a restart)."""

    channel: Any  # a messageable channel with get_partial_message
    reply: Callable[..., Awaitable[discord.Message]]
    upload_limit: int

    @classmethod
    def of(cls, ctx: commands.Context[Any]) -> Origin:
        return cls(ctx.channel, ctx.reply, _upload_limit(ctx))

    @classmethod
    def resumed(cls, channel: Any, message_id: int | None) -> Origin:
        async def reply(content: str | None = None, **options: Any) -> discord.Message:
            if message_id is not None:
                options.setdefault("reference", discord.MessageReference(
                    message_id=message_id, channel_id=channel.id, fail_if_not_exists=False))
            return await channel.send(None if content is None else fit(content), **options)

        guild = getattr(channel, "guild", None)
        return cls(channel, reply, guild.filesize_limit if guild is not None
                   else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES)


@dataclass(frozen=True)
class Request:
    """Who asks where: the job's owner, the message it answers (if any), where its messages go, and how its
    status message is posted (default: a reply through `origin`)."""

    user_id: int
    guild_id: int | None
    message_id: int | None
    origin: Origin
    post: Callable[..., Awaitable[discord.Message]] | None = None


def user_facing(error: BaseException) -> Exception | None:
    """The user's mistake inside discord.py's wrappers (CommandInvokeError, HybridCommandError…), if any."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, USER_ERRORS):
            return seen
        seen = getattr(seen, "original", None) or seen.__cause__
    return None


class Stylize(commands.Cog):
    """Paint photos in the style of other pictures."""

    def __init__(self, bot: StylizeBot) -> None:
        self.bot = bot
        self.config = bot.config
        self._followers: set[asyncio.Task[None]] = set()
        self._posting: set[asyncio.Future[None]] = set()  # queued jobs whose status message is on its way
        self._recovery: asyncio.Task[None] | None = None
        cooldown = self.config.cooldown
        self._commands = _per_user(cooldown.commands, cooldown.seconds)
        self._buttons = _per_user(cooldown.buttons, cooldown.seconds)
        self._told = _per_user(1, cooldown.seconds)  # one "slow down" note per user and period
        limits = self.config.limits
        self.admission = Admission(bot.backend, per_user=limits.per_user, queue_size=limits.queue_size)
        self._decoder = ThreadPoolExecutor(DECODERS, thread_name_prefix="stylize-decode")
        self._device = str(pick_device(self.config.device))  # where jobs are painted, for the memory model

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CancelButton)
        self._recovery = asyncio.create_task(self._resume(), name="stylize-recover")

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(CancelButton)
        self._decoder.shutdown(wait=False, cancel_futures=True)
        if self._recovery is not None:
            self._recovery.cancel()
        if self._posting:  # a job queued just before the stop gets its follower once its status is posted
            await asyncio.wait(self._posting, timeout=FINAL_WORD_TIMEOUT)
        if self._followers:  # the backend has ended every job by now; let them post their last word
            await asyncio.wait(self._followers, timeout=FINAL_WORD_TIMEOUT)

    async def cog_check(self, ctx: commands.Context[Any]) -> bool:
        return self.config.access.allows(ctx.guild.id if ctx.guild else None, ctx.channel.id)

    async def cog_before_invoke(self, ctx: commands.Context[Any]) -> None:
        """The per-user cooldown, one bucket for all of the cog's commands, prefix and slash alike."""
        bucket = self._commands.get_bucket(ctx.author.id)
        assert bucket is not None  # a mapping keyed by user always has one
        retry = bucket.update_rate_limit()
        if retry is not None:
            raise commands.CommandOnCooldown(bucket, retry, commands.BucketType.user)

    # ---------------------------------------------------------------------------------- commands

    @commands.hybrid_group(name="stylize", fallback="paint", description="Paint a photo in the style of a picture")
    @app_commands.describe(content="the photo to paint", style="the picture whose style to copy",
                           style2="a second style picture to blend in (see style_blend)",
                           mask="regions: white → style 1, black → style 2 or the photo (see regions)")
    async def stylize(self, ctx: commands.Context[Any], content: Optional[discord.Attachment] = None,
                      style: Optional[discord.Attachment] = None, style2: Optional[discord.Attachment] = None,
                      mask: Optional[discord.Attachment] = None,
                      *, options: StylizeOptions) -> None:  # type: ignore[valid-type]
        """Paint the first image in the style of the next: attachments, links, or a reply to a photo."""
        args = options.arguments()
        guild_id = ctx.guild.id if ctx.guild else None
        named = await self.bot.library.find(guild_id, list(args.names))
        settings, given = parse_settings(args.raw, await self.bot.server_defaults.settings(guild_id))
        caps = self.config.limits.caps_for(role_ids(ctx.author))
        settings = role_default(settings, given, caps)
        caps.check(settings)
        max_styles = caps.max_styles
        if ctx.interaction is None:
            replied = await self._replied_image(ctx.message)
            # a prefix command reads its attachments itself (mask=last), whatever discord.py bound above
            photo, styles, mask_source = pick_inputs(replied, ctx.message.attachments, args.links,
                                                     max_styles=max_styles, named=named, mask=args.mask)
        else:
            photo, styles = pick_slash_inputs(content, options.content_link, [style, style2, options.style_link],
                                              max_styles=max_styles, named=named)
            mask_source = mask
        check_blend(settings, len(styles), masked=mask_source is not None)
        await ctx.defer()
        request = Request(ctx.author.id, guild_id, None if ctx.interaction else ctx.message.id, Origin.of(ctx))
        await self.submit(request, settings, given, partial(self.gather, ctx.author.id, photo, styles, mask_source,
                                                            settings, caps))

    async def submit(self, request: Request, settings: Settings, given: frozenset[str],
                     gather: Callable[[], Awaitable[Inputs]]) -> Job:
        """Gather the inputs within the queue's limits (a refused job downloads nothing), queue the job, post
        its status message (with Cancel) and follow it to its end: the one path of the command, the "again"
        buttons and both menus."""
        async with self.admission.hold(request.user_id):
            inputs = await gather()
            settings = settings.for_shape(inputs.photo.size)  # a pixel count becomes the photo's longest side
            clip = inputs.clip or Clip((), ())
            self._check_memory(settings, inputs.photo.size, len(inputs.styles), max(1, len(clip.frames)))
            content = (clip.frames[0] if clip.frames else  # frames: shrunk already
                       await self._decode(partial(shrink, inputs.photo, settings.size)))
            job = Job(user_id=request.user_id, channel_id=request.origin.channel.id, guild_id=request.guild_id,
                      message_id=request.message_id, content=content,
                      styles=inputs.styles, settings=settings, given=given, mask=inputs.mask, init=inputs.init,
                      frames=clip.frames, durations_ms=clip.durations_ms)
            position = await self.bot.backend.submit(job)
        posting = asyncio.get_running_loop().create_future()
        self._posting.add(posting)
        try:
            await self._post_status(request, job, position, inputs)
        finally:
            self._posting.discard(posting)
            posting.set_result(None)
        return job

    async def _post_status(self, request: Request, job: Job, position: int, inputs: Inputs) -> None:
        """Post a queued job's status message (with Cancel), then follow the job."""
        post = request.post or partial(request.origin.reply, mention_author=False)
        try:
            status = await post(status_text(job.id, Snapshot(Status.QUEUED, position, None, None)),
                                view=cancel_view(job.id))
        except BaseException:  # Discord refused it, or the network failed (not an HTTPException): nobody
            # could follow this job, so don't paint it, and collect it so that the backend forgets it
            await self.bot.backend.cancel(job.id, "cancelled: its status message could not be posted")
            await self.bot.backend.result(job.id)
            raise
        await self.bot.backend.track(job.id, status.id)
        self._start_following(request.origin, job, request.origin.channel.get_partial_message(status.id), inputs)

    async def gather(self, owner: int, photo: discord.Attachment | str, styles: list[Any],
                     mask_source: discord.Attachment | str | None, settings: Settings, caps: Caps) -> Inputs:
        """Download and decode a new job's pictures (the photo kept up to keep_side, or all its frames when the
        job animates it, within `caps`); library styles come from the library."""
        kept_photo, clip, first_only = await self._photo(photo, settings, caps.motion)
        if clip is not None and mask_source is not None:
            raise UsageError("A mask works on stills only, not on an animation — leave the mask out, or add "
                             "`animate=false` to paint the first frame.")
        settings = settings.for_shape(kept_photo.size)  # styles follow the size a pixel count gives this photo
        style_images = [await self.bot.library.image(s) if isinstance(s, Style) else
                        await self.load(s, f"Style picture {n}" if len(styles) > 1 else "The style picture",
                                        settings, style=True)
                        for n, s in enumerate(styles, start=1)]
        mask_image = None if mask_source is None else await self.load(mask_source, "The mask", settings)
        if mask_image is not None:
            masks.check_aspect(mask_image, kept_photo, "mask")
        credits = tuple(StyleCredit(s.name, s.credit) if isinstance(s, Style) else StyleCredit() for s in styles)
        return Inputs(owner, kept_photo, tuple(style_images), credits, mask_image, clip=clip, first_only=first_only)

    def keep_side(self) -> int:
        """The long side photos are kept at (⤴ Bigger paints from them): the largest size any role may ask
        for, while the store keeps jobs; else nothing beyond the job's own size."""
        limits = self.config.limits
        return limits.caps_for([role.id for role in limits.roles]).max_size if self.bot.store.keeps_jobs else 0

    def cooldown(self, user_id: int) -> float | None:
        """Count one command against `user_id`'s cooldown: None if allowed, else seconds to wait."""
        return self._commands.update_rate_limit(user_id)

    @stylize.autocomplete("preset")
    async def _complete_preset(self, interaction: discord.Interaction, current: str
                               ) -> list[app_commands.Choice[str]]:
        pairs = await self.bot.library.complete(interaction.guild_id, current)
        return [app_commands.Choice(name=label, value=value) for label, value in pairs]

    @stylize.command(name="help", description="Every setting with its meaning, default and range")
    async def help_(self, ctx: commands.Context[Any]) -> None:
        """List every setting with its meaning, default and range."""
        caps = self.config.limits.caps_for(role_ids(ctx.author))
        base = await self.bot.server_defaults.settings(ctx.guild.id if ctx.guild else None)
        await ctx.reply(embeds=help_embeds(self.config.prefix, base, caps),
                        ephemeral=True, mention_author=False)

    @stylize.command(name="cancel", description="Cancel your jobs, or one job by its id")
    @app_commands.describe(job="the job id from its status message (default: all of yours)")
    async def cancel(self, ctx: commands.Context[Any], job: Optional[str] = None) -> None:
        """Cancel your waiting or running jobs (this server's moderators may cancel its jobs by id)."""
        pending = await self.bot.backend.jobs()
        if job is None:
            targets = [j for j in pending if j.user_id == ctx.author.id]
            if not targets:
                raise UsageError("You have no job waiting or running.")
        else:
            wanted = job.strip("`").lower()
            targets = [j for j in pending if wanted in (j.id, j.short)
                       and (j.user_id == ctx.author.id or _of_this_server(j, ctx.guild))]
            if not targets:
                raise UsageError(f"No job '{echo(job)}' is waiting or running.")
            if targets[0].user_id != ctx.author.id and not self._is_moderator(ctx.author, targets[0]):
                raise UsageError("That's someone else's job — only its owner or a moderator can cancel it.")
        reason = self._cancel_reason(ctx.author, targets[0])
        cancelled = [j.short for j in targets if await self.bot.backend.cancel(j.id, reason)]
        await ctx.reply(f"🛑 Cancelled job{'s' if len(cancelled) > 1 else ''} "
                        + ", ".join(f"`{i}`" for i in cancelled) + "." if cancelled else "Nothing left to cancel.",
                        ephemeral=True, mention_author=False)

    @stylize.command(name="queue", description="What is running and what is waiting")
    async def queue(self, ctx: commands.Context[Any]) -> None:
        """Show this server's running and waiting jobs (in DMs: your own), in the order they will run."""
        def shown(job: Job) -> bool:
            return _of_this_server(job, ctx.guild) if ctx.guild is not None else job.user_id == ctx.author.id

        await ctx.reply(queue_text(await self.bot.backend.jobs(), shown), mention_author=False)

    # Library subcommands: declared in this group, carried out by the StyleLibrary cog (bot/cogs/library.py)

    @stylize.command(name="styles", description="The style library: list it, or (moderators) add or remove a style")
    @app_commands.describe(action="list (default), add or remove", name="the style's name: a-z, 0-9, _ and -",
                           picture="the painting to add", link="link to the painting to add",
                           credit="what it is and who made it, e.g. Water Lilies — Claude Monet")
    async def styles(self, ctx: commands.Context[Any], action: Literal["list", "add", "remove"] = "list",
                     name: Optional[str] = None, picture: Optional[discord.Attachment] = None,
                     link: Optional[str] = None, *, credit: Optional[str] = None) -> None:
        """List the styles (a contact sheet), or add or remove one of this server's (moderators)."""
        await self._library().styles(ctx, action, name, picture, link, credit, self.load)

    @stylize.command(name="forget", description="Delete the pictures and settings the bot kept from your jobs")
    async def forget(self, ctx: commands.Context[Any]) -> None:
        """Delete the pictures and settings the bot kept from your jobs."""
        await self._library().forget(ctx)

    @stylize.command(name="defaults", with_app_command=False)
    async def defaults(self, ctx: commands.Context[Any], *, settings: Optional[str] = None) -> None:
        """Show this server's default settings, or change them (Manage Server); slash: /stylize-defaults."""
        await self._library().defaults(ctx, settings)

    def _library(self) -> StyleLibrary:
        return self.bot.get_cog("StyleLibrary")  # type: ignore[return-value]

    async def cancel_from_button(self, interaction: discord.Interaction, job_id: str) -> None:
        retry = self._buttons.update_rate_limit(interaction.user.id)
        if retry is not None:
            await tell(interaction, slow_down(retry))
            return
        try:
            job = next((j for j in await self.bot.backend.jobs() if j.id == job_id), None)
        except QueueFull as busy:
            await tell(interaction, str(busy))
            return
        if job is None:
            await tell(interaction, "That job has already finished.")
        elif job.user_id != interaction.user.id and not self._is_moderator(interaction.user, job):
            await tell(interaction, f"Only <@{job.user_id}> or a moderator can cancel this job.")
        else:  # answer first: the job's own final edit must land after this one
            await interaction.response.edit_message(content=f"🛑 Cancelling job `{short_id(job_id)}`…", view=None)
            await self.bot.backend.cancel(job_id, self._cancel_reason(interaction.user, job))

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:  # type: ignore[override]
        """Tell the user what went wrong and what to do; log only what is our fault."""
        cause = user_facing(error)
        if cause is not None:
            text = str(cause)
            if isinstance(cause, UsageError) and cause.show_usage:
                text += "\n\n" + usage(self.config.prefix)
        elif isinstance(error, commands.CheckFailure):
            if ctx.interaction is None:
                return  # a channel the bot is not enabled in: stay quiet
            text = "I'm not enabled in this channel."
        elif isinstance(error, commands.CommandOnCooldown):
            if ctx.interaction is None and self._told.update_rate_limit(ctx.author.id) is not None:
                return  # told once this period: more notes would be the flood the cooldown stops
            text = slow_down(error.retry_after)
        elif isinstance(error, commands.UserInputError):
            text = f"{error}\n\n{usage(self.config.prefix)}"
        else:
            log.error("command %s failed", ctx.command, exc_info=error)
            text = OUR_FAULT
        try:
            await ctx.reply(f"⚠️ {text}", ephemeral=True, mention_author=False)
        except Exception as failure:  # refused, or the network failed again: nothing more to do
            log.warning("could not answer %s in channel %s: %s", ctx.author.id, ctx.channel.id, failure)

    # ----------------------------------------------------------------------------------- helpers

    def _is_moderator(self, user: discord.abc.User, job: Job) -> bool:
        """Whether `user` moderates the server `job` came from (no one moderates DMs)."""
        return is_moderator(user, self.config) and _of_this_server(job, user.guild)  # type: ignore[attr-defined]

    @staticmethod
    def _cancel_reason(user: discord.abc.User, job: Job) -> str:
        return f"cancelled by {user.mention}" + ("" if user.id == job.user_id else " (moderator)")

    async def _replied_image(self, message: discord.Message) -> list[discord.Attachment]:
        """The first attachment of the message this one replies to, if any: it is the photo."""
        ref = message.reference
        if ref is None or ref.message_id is None:
            return []
        replied = ref.resolved if isinstance(ref.resolved, discord.Message) else None
        if replied is None:
            try:
                replied = await message.channel.fetch_message(ref.message_id)
            except discord.HTTPException:
                raise UsageError("I can't see the message you replied to — attach the photo instead.") from None
        return replied.attachments[:1]

    async def load(self, source: discord.Attachment | str, what: str, settings: Settings, *,
                   style: bool = False, long_side: int | None = None) -> Image.Image:
        """Download (size-capped) and decode (off the loop, DECODERS at a time) one input, shrunk at once to the
        largest size the painter will use — the job's size (or pixel count) for the photo (or `long_side`, to
        keep it larger), size × style_scale for a style (at least MIN_SIDE px across, see engine.style_side;
        `settings` already sized for the photo) — or refuse with a friendly reason."""
        with _refusals(what):
            return await self._still(await self._download(source), settings, style=style, long_side=long_side)

    async def _still(self, data: bytes, settings: Settings, *, style: bool = False, long_side: int | None = None
                     ) -> Image.Image:
        """Decode (off the loop, DECODERS at a time) and shrink one picture as `load` says."""
        long_side, short_side = ((round(settings.size * settings.style_scale), MIN_SIDE) if style
                                 else (long_side or settings.size, 0))
        pixels = 0 if style or settings.pixels is None else settings.pixels
        image = await self._decode(partial(decode_image, data, max_pixels=self.config.limits.input_pixels,
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
            animated = await self._decode(partial(is_animated, data))
            if not (animated and settings.animate):
                still = await self._still(data, settings, long_side=max(settings.size, self.keep_side()))
                return still, None, animated
            pixels = settings.pixels or 0
            clip = await self._decode(partial(
                decode_clip, data, max_pixels=self.config.limits.input_pixels, max_frames=motion.max_frames,
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

    async def _decode(self, work: Callable[[], Any]) -> Any:
        """`work` on the decoder threads (DECODERS at a time), off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._decoder, work)

    def _check_memory(self, settings: Settings, shape: tuple[int, int], n_styles: int, frames: int = 1) -> None:
        """Refuse a job (an animation of `frames` frames) that would not fit the painter's memory
        (engine/memory.py), naming the size that would."""
        budget = self.config.limits.job_memory(self.config.workers)
        need = predict_peak_bytes(settings, shape, n_styles, self._device, frames)
        if need is None or need <= budget:
            return
        largest = largest_size(settings, budget, shape, n_styles, self._device, frames) or 0
        width, height = fit_size(shape, max(largest, 1))
        ask = (f"size={largest}" if settings.pixels is None else f"pixels={width * height}") if largest else ""
        raise UsageError(f"That job would need about {need / 1e9:.1f} GB of memory, and a job may use "
                         f"{budget / 1e9:.1f} GB here — " + (f"ask for {ask} or less" if ask else
                                                             "even the smallest size would not fit"))

    def _start_following(self, origin: Origin, job: Job, status: discord.PartialMessage, keep: Inputs | None = None
                         ) -> None:
        """Follow `job` to its end; `keep`: it was submitted in this run, so its inputs are at hand to keep."""
        task = asyncio.create_task(self._follow(origin, job, status, keep), name=f"stylize-job-{job.id}")
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    async def _resume(self) -> None:
        """Follow the jobs the previous run left pending (recover() may wait for the backend's store)."""
        try:
            jobs = await self.bot.backend.recover()
            if not jobs:
                return
            await self.bot.wait_until_ready()
            for job in jobs:
                try:
                    channel = self.bot.get_channel(job.channel_id) or await self.bot.fetch_channel(job.channel_id)
                    origin = Origin.resumed(channel, job.message_id)
                    if job.status_message_id is not None:
                        status = channel.get_partial_message(job.status_message_id)  # type: ignore[union-attr]
                    else:  # it was submitted, but its status message never got recorded
                        posted = await origin.reply(f"🎨 Job `{job.short}`…", view=cancel_view(job.id))
                        await self.bot.backend.track(job.id, posted.id)
                        status = channel.get_partial_message(posted.id)  # type: ignore[union-attr]
                except discord.HTTPException as error:  # left in the backend: the next start tries again
                    log.warning("cannot reach channel %s for recovered job %s: %s", job.channel_id, job.id, error)
                    continue
                log.info("following job %s again (%s)", job.id, job.status.value)
                self._start_following(origin, job, status)
        except Exception:
            log.exception("recovering jobs failed")

    async def _follow(self, origin: Origin, job: Job, status: discord.PartialMessage, keep: Inputs | None) -> None:
        """Edit the status message as the job moves, then deliver the outcome. Never raises."""
        backend = self.bot.backend
        done = asyncio.ensure_future(backend.result(job.id))
        shown: str | None = None
        preview: Image.Image | None = None
        try:
            while not (await asyncio.wait({done}, timeout=self.config.progress_interval))[0]:
                snapshot = await backend.snapshot(job.id)
                if snapshot is None or snapshot.status.finished:
                    continue
                text = status_text(job.id, snapshot)
                changes: dict[str, Any] = {}
                if snapshot.preview is not None and snapshot.preview is not preview:
                    preview = snapshot.preview
                    data = await asyncio.get_running_loop().run_in_executor(None, preview_png, preview)
                    changes["attachments"] = [discord.File(io.BytesIO(data), "preview.png")]
                if text != shown or changes:
                    shown = text
                    await _edit(status, content=text, **changes)
            finished = done.result()
            credits = keep.credits if keep is not None else (StyleCredit(),) * len(job.styles)
            kept = keep is not None and finished.status is Status.DONE and await self._keep(job, finished, keep)
            posted = await self._conclude(origin, finished, status, credits, buttons=kept,
                                          note=ANIMATE_HINT if keep is not None and keep.first_only else "")
            if kept and posted is not None:
                with contextlib.suppress(StorageUnavailable):  # logged by the store; only the menus miss it
                    await self.bot.store.note_message(job.id, posted.id)
        except Detached:  # the bot is stopping; the job is not: the next run delivers it
            await _edit(status, content=RESTARTING.format(id=job.short))
        except Exception:
            log.exception("delivering job %s failed", job.id)

    async def _keep(self, submitted: Job, finished: Job, keep: Inputs) -> bool:
        """Keep a finished job's inputs and settings for [storage] keep_days (for the "again" buttons and the
        menus, which find it by its result message; `forget` by the photo's owner deletes them); whether they
        were kept."""
        store = self.bot.store
        if not store.keeps_jobs or finished.result is None or submitted.frames:  # the buttons paint stills
            return False
        extra = () if submitted.mask is None else (submitted.mask,)
        pictures = await asyncio.get_running_loop().run_in_executor(
            None, lambda: [preview_png(p) for p in (keep.photo, *submitted.styles, *extra)])
        try:
            return await store.keep_job(submitted.id, keep.owner, submitted.guild_id,
                                        settings_json(finished.result.settings), pictures, given=finished.given,
                                        masked=submitted.mask is not None,
                                        styles=json.dumps([dataclasses.asdict(c) for c in keep.credits]))
        except StorageUnavailable:
            return False  # logged by the store; the user has the picture already

    async def _conclude(self, origin: Origin, job: Job, status: discord.PartialMessage,
                        credits: tuple[StyleCredit, ...], buttons: bool = False, note: str = ""
                        ) -> discord.Message | None:
        """Final status line, and a reply with the picture (settings stamped inside, and the timelapse if asked
        for) or the painted animation, or the reason there is none; the picture's message gets the "again"
        buttons when `buttons` (its inputs are kept) and ends with `note`. Returns that message."""
        mention = f"<@{job.user_id}>"
        ping = discord.AllowedMentions(users=[discord.Object(job.user_id)])  # the one ping the bot means
        if job.status is Status.CANCELLED:
            await _edit(status, content=f"🛑 Job `{job.short}` {job.error}.", view=None, attachments=[])
            if job.error != f"cancelled by {mention}":
                await origin.reply(f"{mention} your job `{job.short}` was {job.error}.", allowed_mentions=ping)
            return None
        encoded = None
        loop = asyncio.get_running_loop()
        if job.status is Status.DONE and job.durations_ms:
            assert job.result is not None
            try:
                movie_data, kind = await loop.run_in_executor(None, movie.encode, list(job.result.frames),
                                                              list(job.durations_ms), origin.upload_limit)
                encoded = movie_data, f"stylized.{kind}"
            except movie.AnimationTooLarge as error:
                job.error = (f"the animation is too large to upload here ({min(error.sizes.values()):,} bytes, "
                             f"the limit is {origin.upload_limit:,}) — try fewer frames or a smaller size")
        elif job.status is Status.DONE:
            assert job.result is not None
            encoded = await loop.run_in_executor(None, partial(encode_for_upload, job.result.image, origin.upload_limit,
                                                               settings=Stamp(job.result.settings, credits)))
            if encoded is None:
                job.error = "the picture is too large to upload here — try a smaller size"
        if encoded is None:
            await _edit(status, content=f"❌ Job `{job.short}` failed: {job.error}.", view=None, attachments=[])
            await origin.reply(f"{mention} sorry, your job `{job.short}` failed: {job.error}.", allowed_mentions=ping)
            return None
        assert job.result is not None
        data, filename = encoded
        files = [discord.File(io.BytesIO(data), filename)]
        text = f"{mention} here is your painting!" + (f" {note}" if note else "")
        if job.result.frames and not job.durations_ms:  # the picture has the upload limit first, the timelapse the rest
            try:
                movie_data, kind = await loop.run_in_executor(
                    None, movie.timelapse, job.result.frames, origin.upload_limit - len(data))
                files.append(discord.File(io.BytesIO(movie_data), f"timelapse.{kind}"))
            except movie.AnimationTooLarge:
                text += " (The timelapse was too large to upload beside it, so I left it out.)"
        await _edit(status, content=f"✅ Job `{job.short}` done in {job.result.elapsed:.1f} s.", view=None,
                    attachments=[])
        again = self.bot.get_cog("Again")
        view = again.result_view(job.id) if buttons and again is not None else None  # type: ignore[attr-defined]
        try:
            return await origin.reply(text, embed=result_embed(job, job.given, filename, credits_text(credits)),
                                      files=files, view=view, allowed_mentions=ping)
        except discord.HTTPException as error:
            log.warning("could not upload the result of job %s: %s", job.id, error)
            await origin.reply(f"{mention} your painting is ready, but Discord refused the upload "
                               f"({error.text or error.status}) — try a smaller size.", allowed_mentions=ping)
            return None


def role_default(settings: Settings, given: frozenset[str], caps: Caps) -> Settings:
    """`settings` with animate on where the member's role animates by default and they did not say otherwise."""
    return dataclasses.replace(settings, animate=True) if caps.animate and "animate" not in given else settings


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


async def _edit(message: discord.PartialMessage, **changes: Any) -> None:
    """Edit a status message; a failure (deleted, rate-limited for too long) only costs that edit."""
    if changes.get("content") is not None:
        changes["content"] = fit(changes["content"])
    try:
        await message.edit(**changes)
    except discord.HTTPException as error:
        log.warning("could not edit status message %s: %s", message.id, error)


async def tell(interaction: discord.Interaction, text: str) -> None:
    """A note only the presser (of a button, a menu, a form) sees, whether or not it was answered already."""
    if interaction.response.is_done():
        await interaction.followup.send(fit(text), ephemeral=True)
    else:
        await interaction.response.send_message(fit(text), ephemeral=True)


async def enabled_here(interaction: discord.Interaction, config: Config) -> bool:
    """Whether the bot works in the interaction's channel ([access]); if not, the user is told so."""
    if config.access.allows(interaction.guild_id, interaction.channel_id or 0):
        return True
    await tell(interaction, "I'm not enabled in this channel.")
    return False


def _per_user(rate: int, seconds: float) -> commands.CooldownMapping[int]:
    """A token bucket per user id: `rate` uses in any `seconds`."""
    return commands.CooldownMapping.from_cooldown(rate, seconds, lambda user_id: user_id)


def slow_down(retry_after: float) -> str:
    return f"You're going a bit fast — try again in {math.ceil(retry_after)} s."


def _upload_limit(ctx: commands.Context[Any]) -> int:
    """Bytes the reply may upload: the interaction's limit, else the server's (boosts raise it)."""
    if ctx.interaction is not None:
        return ctx.interaction.filesize_limit
    if ctx.guild is not None:
        return ctx.guild.filesize_limit
    return discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES


def is_moderator(user: discord.abc.User, config: Config) -> bool:
    """Manage Messages, or a role listed under [access] moderator_roles."""
    return isinstance(user, discord.Member) and (
        user.guild_permissions.manage_messages
        or any(role.id in config.access.moderator_roles for role in user.roles))


def _of_this_server(job: Job, guild: discord.Guild | None) -> bool:
    return guild is not None and job.guild_id == guild.id


def role_ids(user: discord.abc.User) -> list[int]:
    return [role.id for role in user.roles] if isinstance(user, discord.Member) else []


def _megabytes(n: int) -> str:
    return f"{n / 1_000_000:.3g} MB"


async def setup(bot: StylizeBot) -> None:
    await bot.add_cog(Stylize(bot))
