"""What was asked, by whom, and where to answer."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import discord
from discord.ext import commands
from PIL import Image

from engine.stamp import StyleCredit

from ..inputs.images import Clip


@dataclass(frozen=True)
class Sources:
    """Where a job's pictures come from, before anything is fetched: attachments, links, library styles, or
    a kept job's stored pictures — whatever the entry point's gather understands."""

    photo: Any
    styles: tuple[Any, ...]
    mask: Any = None
    poster: int | None = None  # who posted the photo, when not the one who asks (a reply, a menu on a message)


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
    gathered: float = dataclasses.field(default_factory=time.time)  # a `forget` after this: nothing is kept


@dataclass(frozen=True)
class Origin:
    """Where a job's messages go: its channel, as messages of the bot's own — replying to `message_id` (the
    command, the photo, the result painted again) when there is one, in a way that cannot fail once that
    message is deleted. Nothing here depends on an interaction's token, which expires after 15 minutes."""

    channel: Any  # a messageable channel with get_partial_message
    message_id: int | None
    upload_limit: int

    @classmethod
    def of(cls, ctx: commands.Context[Any]) -> Origin:
        if ctx.interaction is None:
            return cls.at(ctx.channel, ctx.message.id)
        origin = cls.at(ctx.channel, None)  # the lower of the channel's limit and the one the interaction reports
        return dataclasses.replace(origin, upload_limit=min(origin.upload_limit, ctx.interaction.filesize_limit))

    @classmethod
    def at(cls, channel: Any, message_id: int | None) -> Origin:
        guild = getattr(channel, "guild", None)
        return cls(channel, message_id, guild.filesize_limit if guild is not None
                   else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES)

    @property
    def reference(self) -> discord.MessageReference | None:
        if self.message_id is None:
            return None
        return discord.MessageReference(message_id=self.message_id, channel_id=self.channel.id,
                                        fail_if_not_exists=False)


@dataclass(frozen=True)
class Request:
    """Who asks where: the job's owner, where its messages go, and how its status message is posted (default:
    a message of the bot's own through `origin`; a slash command fills its "thinking…" answer)."""

    user_id: int
    guild_id: int | None
    origin: Origin
    post: Callable[..., Awaitable[discord.Message]] | None = None
