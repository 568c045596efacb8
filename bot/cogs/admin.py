"""Owner-only maintenance: publishing the slash commands (Discord only shows synced commands)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from discord.ext import commands

if TYPE_CHECKING:
    from ..app import StylizeBot

log = logging.getLogger(__name__)


class Admin(commands.Cog):
    """Commands for the bot's owner."""

    def __init__(self, bot: StylizeBot) -> None:
        self.bot = bot

    @commands.command(name="sync", hidden=True)
    @commands.is_owner()
    async def sync(self, ctx: commands.Context[Any], scope: Literal["global", "here", "clear"] = "global") -> None:
        """Publish slash commands: `global` (every server, may take a while to show), `here` (this
        server only, instant — handy while testing) or `clear` (remove this server's copies)."""
        tree = self.bot.tree
        if scope != "global" and ctx.guild is None:
            raise commands.BadArgument("`here` and `clear` only work in a server.")
        if scope == "global":
            synced = await tree.sync()
        elif scope == "here":
            tree.copy_global_to(guild=ctx.guild)
            synced = await tree.sync(guild=ctx.guild)
        else:
            tree.clear_commands(guild=ctx.guild)
            synced = await tree.sync(guild=ctx.guild)
        names = ", ".join(f"/{command.name}" for command in synced) or "none"
        where = "globally" if scope == "global" else "to this server"
        await ctx.reply(f"Synced {len(synced)} command(s) {where}: {names}.", mention_author=False)

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:  # type: ignore[override]
        if isinstance(error, commands.NotOwner):
            text = "Only the bot's owner can do that."
        elif isinstance(error, commands.UserInputError):
            text = f"{error} Use `{ctx.clean_prefix}sync [global|here|clear]`."
        else:
            log.error("command %s failed", ctx.command, exc_info=error)
            text = "That failed — see the bot's log."
        await ctx.reply(f"⚠️ {text}", mention_author=False)


async def setup(bot: StylizeBot) -> None:
    await bot.add_cog(Admin(bot))
