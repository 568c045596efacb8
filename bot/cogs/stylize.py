"""`stylize`: one hybrid command group — `!stylize …` and `/stylize paint …` — plus help, cancel, queue, last
(the paintings nobody would take), and the library's styles, forget and defaults (bot.library_commands).

The command's options, and why it is a group, are in bot.options. The cog only turns Discord's events into
calls of the bot's painting service: a job's path — prepare, submit, follow, deliver — is bot.painting's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Optional

import discord
from discord import app_commands
from discord.ext import commands

from .. import library_commands
from ..checks import cannot_post, enabled, may_post, moderates, of_this_server, role_ids, too_fast
from ..errors import answer, explain, tell, user_facing
from ..jobs import Job, QueueFull, short_id
from ..options import StylizeOptions
from ..painting.buttons import CANCEL_ID, cancel_button
from ..painting.request import Origin, Request, Sources
from ..parsing import UsageError, echo, pick_inputs, pick_slash_inputs
from ..render import help_messages, queue_text, usage

if TYPE_CHECKING:
    from ..app import StylizeBot


class CancelButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CANCEL_ID):
    """The Cancel button on a status message; the job id lives in its custom_id, so no state is kept."""

    def __init__(self, job_id: str) -> None:
        super().__init__(cancel_button(job_id))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: Any, /
                             ) -> CancelButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog(Stylize.__cog_name__)  # type: ignore[attr-defined]
        if isinstance(cog, Stylize):
            await cog.cancel_from_button(interaction, self.job_id)


class Stylize(commands.Cog):
    """Paint photos in the style of other pictures."""

    def __init__(self, bot: StylizeBot) -> None:
        self.bot = bot
        self.config = bot.config
        self.painter = bot.painter
        self.cooldowns = bot.painter.cooldowns

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CancelButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(CancelButton)

    async def cog_check(self, ctx: commands.Context[Any]) -> bool:
        return enabled(self.config, ctx.guild.id if ctx.guild else None, ctx.channel.id)

    async def cog_before_invoke(self, ctx: commands.Context[Any]) -> None:
        """The per-user cooldown, one bucket for all commands, prefix and slash alike."""
        self.cooldowns.count(ctx.author.id)

    async def cog_after_invoke(self, ctx: commands.Context[Any]) -> None:
        """The news of a painting that could not be delivered, once, with the owner's next command (a prefix
        command's reply is public: answer() can make only an interaction's private)."""
        if ctx.command is not self.last:
            news = await self.painter.delivery.held_news(ctx.author.id, self.config.prefix,
                                                         public=ctx.interaction is None)
            if news:
                await answer(ctx, news)

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
        if ctx.interaction is not None and not may_post(ctx.interaction):  # its status and picture would fail
            raise UsageError(cannot_post(ctx.channel))
        args = options.arguments()
        guild_id = ctx.guild.id if ctx.guild else None
        named = await self.bot.library.find(guild_id, list(args.names))
        replied, poster = await self._replied_image(ctx.message) if ctx.interaction is None else ([], None)

        def pick(caps: Any) -> Sources:
            if ctx.interaction is None:  # a prefix command reads its attachments itself (mask=last)
                photo, styles, mask_source = pick_inputs(replied, ctx.message.attachments, args.links,
                                                         max_styles=caps.max_styles, named=named, mask=args.mask)
            else:
                photo, styles = pick_slash_inputs(content, options.content_link,  # type: ignore[attr-defined]
                                                  [style, style2, options.style_link],  # type: ignore[attr-defined]
                                                  max_styles=caps.max_styles, named=named)
                mask_source = mask
            return Sources(photo, tuple(styles), mask_source, poster)

        plan = await self.painter.prepare(ctx.author, guild_id, pick, raw=args.raw)  # the command counted already
        await ctx.defer()
        post = None if ctx.interaction is None else ctx.send  # a slash command fills its "thinking…"
        await self.painter.submit(Request(ctx.author.id, guild_id, Origin.of(ctx), post), plan)

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
        for embeds in help_messages(self.config.prefix, base, caps):  # Discord's 6,000 characters are per message
            await ctx.reply(embeds=embeds, ephemeral=True, mention_author=False)

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
                       and (j.user_id == ctx.author.id or of_this_server(j, ctx.guild))]
            if not targets:
                raise UsageError(f"No job '{echo(job)}' is waiting or running.")
            if targets[0].user_id != ctx.author.id and not moderates(ctx.author, targets[0], self.config):
                raise UsageError("That's someone else's job — only its owner or a moderator can cancel it.")
        reason = _cancel_reason(ctx.author, targets[0])
        cancelled = [j.short for j in targets if await self.bot.backend.cancel(j.id, reason)]
        await ctx.reply(f"🛑 Cancelled job{'s' if len(cancelled) > 1 else ''} "
                        + ", ".join(f"`{i}`" for i in cancelled) + "." if cancelled else "Nothing left to cancel.",
                        ephemeral=True, mention_author=False)

    @stylize.command(name="queue", description="What is running and what is waiting")
    async def queue(self, ctx: commands.Context[Any]) -> None:
        """Show this server's running and waiting jobs (in DMs: your own), in the order they will run."""
        def shown(job: Job) -> bool:
            return of_this_server(job, ctx.guild) if ctx.guild is not None else job.user_id == ctx.author.id

        await ctx.reply(queue_text(await self.bot.backend.jobs(), shown), mention_author=False)

    @stylize.command(name="last", description="Post the paintings I could not deliver to you")
    async def last(self, ctx: commands.Context[Any]) -> None:
        """Post the paintings that neither their channel nor your DMs would take (yours only); each one posted
        is no longer held."""
        delivery = self.painter.delivery
        async with delivery.fetching(ctx.author.id):
            held = await delivery.held(ctx.author.id)
            if not held:
                raise UsageError("Nothing is waiting for you: I hold a painting only when neither its channel nor "
                                 f"your DMs would take it — {delivery.terms()}.")
            for painting in held:
                try:
                    await ctx.reply(painting.text, files=[u.file() for u in painting.uploads], embed=painting.embed,
                                    ephemeral=True, mention_author=False)
                except discord.HTTPException as error:
                    if error.status != 413:
                        raise
                    raise UsageError(f"The painting of job `{short_id(painting.job)}` is too large to upload here "
                                     f"— I keep it: use `{ctx.clean_prefix}stylize last` in the server where you "
                                     "asked for it.") from None
                await delivery.delivered(ctx.author.id, painting)

    @stylize.command(name="styles", description="The style library: list it, or (moderators) add or remove a style")
    @app_commands.describe(action="list (default), add or remove", name="the style's name: a-z, 0-9, _ and -",
                           picture="the painting to add", link="link to the painting to add",
                           credit="what it is and who made it, e.g. Water Lilies — Claude Monet")
    async def styles(self, ctx: commands.Context[Any], action: Literal["list", "add", "remove"] = "list",
                     name: Optional[str] = None, picture: Optional[discord.Attachment] = None,
                     link: Optional[str] = None, *, credit: Optional[str] = None) -> None:
        """List the styles (a contact sheet), or add or remove one of this server's (moderators)."""
        await library_commands.styles(self.bot, ctx, action, name, picture, link, credit)

    @stylize.command(name="forget", description="Delete the pictures and settings the bot kept from your jobs")
    async def forget(self, ctx: commands.Context[Any]) -> None:
        """Delete the pictures and settings the bot kept from your jobs."""
        await library_commands.forget(self.bot, ctx)

    @stylize.command(name="defaults", with_app_command=False)
    async def defaults(self, ctx: commands.Context[Any], *, settings: Optional[str] = None) -> None:
        """Show this server's default settings, or change them (Manage Server); slash: /stylize-defaults."""
        await library_commands.defaults(self.bot, ctx, settings)

    async def cancel_from_button(self, interaction: discord.Interaction, job_id: str) -> None:
        if await too_fast(interaction, self.cooldowns.buttons):
            return
        try:
            job = next((j for j in await self.bot.backend.jobs() if j.id == job_id), None)
        except QueueFull as busy:
            await tell(interaction, str(busy))
            return
        if job is None:
            await tell(interaction, "That job has already finished.")
        elif job.user_id != interaction.user.id and not moderates(interaction.user, job, self.config):
            await tell(interaction, f"Only <@{job.user_id}> or a moderator can cancel this job.")
        else:  # answer first: the job's own final edit must land after this one
            await interaction.response.edit_message(content=f"🛑 Cancelling job `{short_id(job_id)}`…", view=None)
            await self.bot.backend.cancel(job_id, _cancel_reason(interaction.user, job))

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
            note = self.cooldowns.note(ctx, error)
            if note is None:
                return
            text = note
        elif isinstance(error, commands.UserInputError):
            text = f"{error}\n\n{usage(self.config.prefix)}"
        else:
            text = explain(error, f"command {ctx.command}")
        await answer(ctx, f"⚠️ {text}")

    # ----------------------------------------------------------------------------------- helpers

    async def _replied_image(self, message: discord.Message) -> tuple[list[discord.Attachment], int | None]:
        """The first attachment of the message this one replies to, if any: it is the photo; and who posted it
        (None when there is none: the photo is the command author's own)."""
        ref = message.reference
        if ref is None or ref.message_id is None:
            return [], None
        replied = ref.resolved if isinstance(ref.resolved, discord.Message) else None
        if replied is None:
            try:
                replied = await message.channel.fetch_message(ref.message_id)
            except discord.HTTPException:
                raise UsageError("I can't see the message you replied to — attach the photo instead.") from None
        return replied.attachments[:1], replied.author.id if replied.attachments else None


def _cancel_reason(user: discord.abc.User, job: Job) -> str:
    return f"cancelled by {user.mention}" + ("" if user.id == job.user_id else " (moderator)")


async def setup(bot: StylizeBot) -> None:
    await bot.add_cog(Stylize(bot))
