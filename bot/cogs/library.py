"""The store's upkeep and `/stylize-defaults` (what the library subcommands do is bot.library_commands).

`!stylize styles`, `!stylize forget` and `!stylize defaults` are subcommands of the `stylize` group, so they
are declared in that cog. `/stylize-defaults` is a top-level slash command of
its own: Discord hides a command from members without a permission (default_member_permissions)
only for top-level commands, never for a subcommand. The store is swept hourly (retention, disk cap).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from discord import app_commands
from discord.ext import commands, tasks

from .. import library_commands
from ..checks import enabled
from ..errors import answer, explain
from ..storage import StorageUnavailable

if TYPE_CHECKING:
    from ..app import StylizeBot

log = logging.getLogger(__name__)


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
        return enabled(self.bot.config, ctx.guild.id if ctx.guild else None, ctx.channel.id)

    async def cog_before_invoke(self, ctx: commands.Context[Any]) -> None:
        """The per-user cooldown: the same bucket as the `stylize` commands'."""
        self.bot.painter.cooldowns.count(ctx.author.id)

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

    # ----------------------------------------------------------------------------- defaults

    @commands.hybrid_command(name="stylize-defaults", description="Show or change this server's default settings")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.describe(settings="key=value … to change; key=default undoes one; reset undoes all")
    async def defaults_command(self, ctx: commands.Context[Any], *, settings: Optional[str] = None) -> None:
        """Show this server's default settings, or change them (Manage Server)."""
        await library_commands.defaults(self.bot, ctx, settings)

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:  # type: ignore[override]
        if isinstance(error, commands.CheckFailure):
            if ctx.interaction is not None:
                await answer(ctx, "⚠️ I'm not enabled in this channel.")
            return
        if isinstance(error, commands.CommandOnCooldown):
            note = self.bot.painter.cooldowns.note(ctx, error)
            if note is not None:
                await answer(ctx, f"⚠️ {note}")
            return
        await answer(ctx, f"⚠️ {explain(error, f'command {ctx.command}')}")


async def setup(bot: StylizeBot) -> None:
    await bot.add_cog(StyleLibrary(bot))
