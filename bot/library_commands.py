"""What the library subcommands do — `stylize styles`, `stylize forget`, `stylize defaults` (and
`/stylize-defaults`) — on the bot's store (bot.storage) and library (bot.library), whichever cog declares them."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from engine import Settings

from .checks import is_moderator
from .library import MAX_SIDE, check_name
from .parsing import UsageError, inert
from .render import MESSAGE_LIMIT, settings_lines
from .storage import StorageUnavailable

if TYPE_CHECKING:
    from .app import StylizeBot

NONE = discord.AllowedMentions.none()
INTAKE = Settings(size=MAX_SIDE)  # a library picture is decoded straight to at most MAX_SIDE px


async def styles(bot: StylizeBot, ctx: commands.Context[Any], action: str, name: str | None,
                 picture: discord.Attachment | None, link: str | None, credit: str | None) -> None:
    """`stylize styles`: list the library (a contact sheet), or add or remove one of this server's styles."""
    if action == "list":
        await _list(bot, ctx)
        return
    if ctx.guild is None:
        raise UsageError("Server styles live in a server — add or remove them there.")
    if not is_moderator(ctx.author, bot.config):
        raise UsageError("Only moderators can add or remove this server's styles.")
    if not name:
        raise UsageError(f"Name the style: `{ctx.clean_prefix}stylize styles {action} NAME`.")
    if not bot.store.writable:
        raise StorageUnavailable(f"Server styles can't be changed here: the bot's storage is {bot.store.mode.value} "
                                 "(its owner can see why with `stylize-bot check`).")
    if action == "remove":
        await bot.library.remove(ctx.guild.id, name)
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
    image = await bot.painter.intake.load(source, "The style picture", INTAKE, style=True)
    await bot.library.add(ctx.guild.id, name, image, " ".join((credit or "").split())
                           or f"added by {ctx.author.display_name}", ctx.author.id)
    await ctx.reply(f"✅ Added the style `{name}`: `{ctx.clean_prefix}stylize {name}` with a photo paints in it.",
                    mention_author=False)

async def _list(bot: StylizeBot, ctx: commands.Context[Any]) -> None:
    guild_id = ctx.guild.id if ctx.guild else None
    styles = await bot.library.styles(guild_id)
    await ctx.defer()
    sheet = await bot.library.contact_sheet(guild_id)
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

async def forget(bot: StylizeBot, ctx: commands.Context[Any]) -> None:
    """`stylize forget`: delete the pictures and settings kept from the author's jobs, and the paintings held
    for them (`stylize last`)."""
    held = await bot.painter.delivery.forget(ctx.author.id)  # first: what is held in memory goes even read-only
    try:
        gone = 0 if bot.store.nothing_kept else await bot.store.forget(ctx.author.id)
    except StorageUnavailable as error:
        if not held:
            raise
        why = (f"the bot's storage is {bot.store.mode.value} here ({bot.store.reason}) — try again once the "
               "bot's owner has fixed it") if not bot.store.writable else str(error)
        raise StorageUnavailable(f"I deleted the {held} painting{'s' if held != 1 else ''} waiting for `stylize "
                                 f"last`, but not the pictures and settings of your kept jobs: {why}") from None
    done = [f"the pictures and settings of your {gone} kept job{'s' if gone != 1 else ''}"] if gone else []
    done += [f"{held} painting{'s' if held != 1 else ''} waiting for `stylize last`"] if held else []
    if done:
        text = f"🗑️ Deleted {' and '.join(done)}."
    else:
        text = ("I keep nothing of yours here." if bot.store.nothing_kept
                else "I keep nothing of yours — nothing to delete.")
    await ctx.reply(text, ephemeral=True, mention_author=False)


async def defaults(bot: StylizeBot, ctx: commands.Context[Any], text: str | None) -> None:
    """`stylize defaults` and `/stylize-defaults`: show this server's defaults, or change them (Manage Server)."""
    if ctx.guild is None:
        raise UsageError("Defaults belong to a server — use this in one.")
    server = bot.server_defaults
    if text and text.strip():
        perms = getattr(ctx.author, "guild_permissions", None)
        if perms is None or not perms.manage_guild:
            raise UsageError("Only members with the Manage Server permission can change this server's defaults.")
        await server.change(ctx.guild.id, text)
    changed = await server.raw(ctx.guild.id)
    settings = await server.settings(ctx.guild.id)
    note = "" if bot.store.writable else "\n*(The bot's storage is not writable here: these can't be changed.)*"
    await ctx.reply(f"**This server's defaults** (• = changed for this server; `key=value` changes one, "
                    f"`key=default` undoes it, `reset` undoes all)\n"
                    f"{settings_lines(settings, frozenset(changed))}{note}",
                    ephemeral=True, mention_author=False)
