"""One way to tell a user what went wrong, whether they came by a command (a context) or by a button, a form
or a menu (an interaction): their own mistakes in their words, ours as one line (and a log entry)."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord.ext import commands

from engine import ParamError

from .jobs import QueueFull
from .parsing import UsageError
from .render import fit
from .storage import StorageUnavailable

log = logging.getLogger(__name__)

USER_ERRORS = (UsageError, ParamError, QueueFull, StorageUnavailable)
OUR_FAULT = "Something went wrong on my side — it has been logged. Please try again later."


def user_facing(error: BaseException) -> Exception | None:
    """The user's mistake inside discord.py's wrappers (CommandInvokeError, HybridCommandError…), if any."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, USER_ERRORS):
            return seen
        seen = getattr(seen, "original", None) or seen.__cause__
    return None


def explain(error: BaseException, what: str) -> str:
    """What to tell the user about `error`: their mistake as it stands, else OUR_FAULT (and `what` failed is
    logged with the traceback)."""
    cause = user_facing(error)
    if cause is not None:
        return str(cause)
    log.error("%s failed", what, exc_info=error)
    return OUR_FAULT


async def tell(interaction: discord.Interaction, text: str) -> None:
    """A note only the presser (of a button, a menu, a form) sees, whether or not it was answered already."""
    if interaction.response.is_done():
        await interaction.followup.send(fit(text), ephemeral=True)
    else:
        await interaction.response.send_message(fit(text), ephemeral=True)


async def answer(target: commands.Context[Any] | discord.Interaction, text: str) -> None:
    """`text` to whoever asked — privately where Discord allows (slash commands, interactions), as a reply that
    pings nobody otherwise; a failure to answer is only logged (there is no one left to tell)."""
    try:
        if isinstance(target, discord.Interaction):
            await tell(target, text)
        else:
            await target.reply(text, ephemeral=True, mention_author=False)
    except Exception as failure:  # refused, or the network failed again: nothing more to do
        user = target.user if isinstance(target, discord.Interaction) else target.author
        log.warning("could not answer %s in channel %s: %s", user.id,
                    target.channel.id if target.channel else None, failure)


async def report(target: commands.Context[Any] | discord.Interaction, error: BaseException, what: str) -> None:
    """Tell the user of `target` what went wrong with `what` (see explain), as a ⚠️ note."""
    await answer(target, f"⚠️ {explain(error, what)}")
