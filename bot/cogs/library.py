"""The style library, per-server defaults and `forget`: what the bot keeps in its store (bot.storage).

`!stylize styles`, `!stylize forget` and `!stylize defaults` are subcommands of the `stylize` group,
so they are declared in that cog and land here. `/stylize-defaults` is a top-level slash command of
its own: Discord hides a command from members without a permission (default_member_permissions)
only for top-level commands, never for a subcommand. The store is swept hourly (retention, disk cap).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Optional

import discord
from discord import app_commands
from discord.ext import commands, tasks
from PIL import Image

from engine import Settings

from ..library import MAX_SIDE, check_name
from ..parsing import UsageError, inert
from ..render import MESSAGE_LIMIT, settings_lines
from ..storage import Mode, StorageUnavailable
from .stylize import is_moderator, user_facing

if TYPE_CHECKING:
    from ..app import StylizeBot

log = logging.getLogger(__name__)

NONE = discord.AllowedMentions.none()
Loader = Callable[..., Awaitable[Image.Image]]  # Stylize.load: the intake every picture goes through
INTAKE = Settings(size=MAX_SIDE)  # a library picture is decoded straight to at most MAX_SIDE px


class StyleLibrary(commands.Cog):
    """Styles by name, this server's defaults, and deleting what the bot keeps."""

    def __init__(self, bot: StylizeBot) -> None:
        self.bot = bot
        self.store = bot.store
        self.library = bot.library

    async def cog_load(self) -> None:
        self.sweep.start()

    async def cog_unload(self) -> None:
        self.sweep.cancel()

    async def cog_check(self, ctx: commands.Context[Any]) -> bool:
        return self.bot.config.access.allows(ctx.guild.id if ctx.guild else None, ctx.channel.id)

    @tasks.loop(hours=1)
    async def sweep(self) -> None:
        """Retention and disk cap (the first run is at start-up)."""
        if not self.store.writable:
            return
        try:
            swept = await self.store.sweep()
        except StorageUnavailable:
            return  # logged by the store
        if swept.jobs or swept.files:
            log.info("storage sweep: %d job(s), %d picture(s), %.1f MB removed", swept.jobs, swept.files,
                     swept.bytes / 1e6)

    # ------------------------------------------------------------------------------- styles

    async def styles(self, ctx: commands.Context[Any], action: str, name: str | None,
                     picture: discord.Attachment | None, link: str | None, credit: str | None, load: Loader) -> None:
        if action == "list":
            await self._list(ctx)
            return
        if ctx.guild is None:
            raise UsageError("Server styles live in a server — add or remove them there.")
        if not is_moderator(ctx.author, self.bot.config):
            raise UsageError("Only moderators can add or remove this server's styles.")
        if not name:
            raise UsageError(f"Name the style: `{ctx.clean_prefix}stylize styles {action} NAME`.")
        if not self.store.writable:
            raise StorageUnavailable(f"Server styles can't be changed here: the bot's storage is {self.store.mode.value} "
                                     "(its owner can see why with `stylize-bot check`).")
        if action == "remove":
            await self.library.remove(ctx.guild.id, name)
            await ctx.reply(f"🗑️ Removed the style `{name.lower()}`.", mention_author=False)
            return
        name = check_name(name)
        if link and not link.lower().startswith(("http://", "https://")):  # prefix path: the credit's first word
            credit, link = f"{link} {credit or ''}".strip(), None
        source = picture or link
        if source is None:
            raise UsageError(f"Attach the picture (or give its link): `{ctx.clean_prefix}stylize styles add "
                             f"{name} [link] [credit, e.g. Water Lilies — Claude Monet]`.")
        await ctx.defer()
        image = await load(source, "The style picture", INTAKE, style=True)
        await self.library.add(ctx.guild.id, name, image, " ".join((credit or "").split())
                               or f"added by {ctx.author.display_name}", ctx.author.id)
        await ctx.reply(f"✅ Added the style `{name}`: `{ctx.clean_prefix}stylize {name}` with a photo paints in it.",
                        mention_author=False)

    async def _list(self, ctx: commands.Context[Any]) -> None:
        guild_id = ctx.guild.id if ctx.guild else None
        styles = await self.library.styles(guild_id)
        await ctx.defer()
        sheet = await self.library.contact_sheet(guild_id)
        lines = [f"`{s.name}` — {inert(s.credit)}{'' if s.builtin else ' *(this server)*'}" for s in styles]
        head = (f"**Styles** — `{ctx.clean_prefix}stylize NAME` with a photo paints in one; "
                "`style=a,b style_blend=2,1` blends several (named styles come before attached ones); "
                "`/stylize paint preset:` picks from a list.\n")
        text = head + "\n".join(lines)
        if len(text) > MESSAGE_LIMIT:
            text = text[: MESSAGE_LIMIT - 2].rsplit("\n", 1)[0] + "\n…"
        await ctx.reply(text, file=discord.File(io.BytesIO(sheet), "styles.jpg"), mention_author=False,
                        allowed_mentions=NONE)

    # ------------------------------------------------------------------------------- forget

    async def forget(self, ctx: commands.Context[Any]) -> None:
        if self.store.mode is Mode.UNAVAILABLE:
            await ctx.reply("I keep nothing of yours here.", ephemeral=True, mention_author=False)
            return
        gone = await self.store.forget(ctx.author.id)
        text = (f"🗑️ Deleted the pictures and settings of your {gone} kept job{'s' if gone != 1 else ''}."
                if gone else "I keep nothing of yours — nothing to delete.")
        await ctx.reply(text, ephemeral=True, mention_author=False)

    # ----------------------------------------------------------------------------- defaults

    @commands.hybrid_command(name="stylize-defaults", description="Show or change this server's default settings")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.describe(settings="key=value … to change; key=default undoes one; reset undoes all")
    async def defaults_command(self, ctx: commands.Context[Any], *, settings: Optional[str] = None) -> None:
        """Show this server's default settings, or change them (Manage Server)."""
        await self.defaults(ctx, settings)

    async def defaults(self, ctx: commands.Context[Any], text: str | None) -> None:
        if ctx.guild is None:
            raise UsageError("Defaults belong to a server — use this in one.")
        server = self.bot.server_defaults
        if text and text.strip():
            perms = getattr(ctx.author, "guild_permissions", None)
            if perms is None or not perms.manage_guild:
                raise UsageError("Only members with the Manage Server permission can change this server's defaults.")
            await server.change(ctx.guild.id, text)
        changed = await server.raw(ctx.guild.id)
        settings = await server.settings(ctx.guild.id)
        note = "" if self.store.writable else "\n*(The bot's storage is not writable here: these can't be changed.)*"
        await ctx.reply(f"**This server's defaults** (• = changed for this server; `key=value` changes one, "
                        f"`key=default` undoes it, `reset` undoes all)\n"
                        f"{settings_lines(settings, frozenset(changed))}{note}",
                        ephemeral=True, mention_author=False)

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:  # type: ignore[override]
        cause = user_facing(error)
        if isinstance(error, commands.CheckFailure):
            text = "I'm not enabled in this channel." if ctx.interaction else None
        elif cause is not None:
            text = str(cause)
        else:
            log.error("command %s failed", ctx.command, exc_info=error)
            text = "Something went wrong on my side — it has been logged. Please try again later."
        if text:
            await ctx.reply(f"⚠️ {text}", ephemeral=True, mention_author=False)


async def setup(bot: StylizeBot) -> None:
    await bot.add_cog(StyleLibrary(bot))
