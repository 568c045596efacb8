"""The guard rails every entry point shares: where the bot works and may post, who moderates, cooldowns."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from .errors import tell

if TYPE_CHECKING:
    from .config import Config, Cooldown
    from .jobs import Job


def enabled(config: Config, guild_id: int | None, channel_id: int | None) -> bool:
    """Whether [access] lets the bot work in this channel."""
    return config.access.allows(guild_id, channel_id or 0)


def can_post(ctx: commands.Context[Any]) -> bool:
    """Whether the bot may send messages where `ctx` was invoked (in a thread: Send Messages in Threads)."""
    if ctx.guild is None:
        return True
    permissions = ctx.channel.permissions_for(ctx.me)  # type: ignore[arg-type]
    in_thread = isinstance(ctx.channel, discord.Thread)
    return permissions.send_messages_in_threads if in_thread else permissions.send_messages


def may_post(interaction: discord.Interaction) -> bool:
    """Whether the bot may send messages of its own in the interaction's channel (in a thread: Send Messages
    in Threads; DMs: always) — where a job's status and picture go."""
    if interaction.guild_id is None:
        return True
    permissions = interaction.app_permissions  # the bot's, in this channel
    in_thread = isinstance(interaction.channel, discord.Thread)
    return permissions.send_messages_in_threads if in_thread else permissions.send_messages


def cannot_post(channel: object) -> str:
    """The refusal where the bot may not post, naming the permission it lacks there (in a thread: Send Messages
    in Threads, which the server's admins may have taken while leaving it Send Messages)."""
    where, permission = (("thread", "Send Messages in Threads") if isinstance(channel, discord.Thread)
                         else ("channel", "Send Messages"))
    return (f"I can't post in this {where} (I lack the {permission} permission here), so I can't paint from "
            "here — try a channel where I may post.")


async def enabled_here(interaction: discord.Interaction, config: Config, *, posting: bool = True) -> bool:
    """Whether the bot works in the interaction's channel ([access]) and, when it is to `post` there (a job's
    status and picture), may post there; if not, the user is told so."""
    if not enabled(config, interaction.guild_id, interaction.channel_id):
        await tell(interaction, "I'm not enabled in this channel.")
        return False
    if posting and not may_post(interaction):
        await tell(interaction, cannot_post(interaction.channel))
        return False
    return True


def is_moderator(user: discord.abc.User, config: Config) -> bool:
    """Manage Messages, or a role listed under [access] moderator_roles."""
    return isinstance(user, discord.Member) and (
        user.guild_permissions.manage_messages
        or any(role.id in config.access.moderator_roles for role in user.roles))


def of_this_server(job: Job, guild: discord.Guild | None) -> bool:
    return guild is not None and job.guild_id == guild.id


def moderates(user: discord.abc.User, job: Job, config: Config) -> bool:
    """Whether `user` moderates the server `job` came from (no one moderates DMs)."""
    return is_moderator(user, config) and of_this_server(job, getattr(user, "guild", None))


def role_ids(user: discord.abc.User) -> list[int]:
    return [role.id for role in user.roles] if isinstance(user, discord.Member) else []


def slow_down(retry_after: float) -> str:
    return f"You're going a bit fast — try again in {math.ceil(retry_after)} s."


async def too_fast(interaction: discord.Interaction, mapping: commands.CooldownMapping[int]) -> bool:
    """One use of `mapping` ([cooldown]) by the presser; True, after telling them to slow down, past the rate."""
    retry = mapping.update_rate_limit(interaction.user.id)
    if retry is not None:
        await tell(interaction, slow_down(retry))
    return retry is not None


class Cooldowns:
    """Token buckets per user id ([cooldown]): `commands` counts commands and painting requests from buttons,
    forms and menus, `buttons` the other clicks and looks, `told` one "slow down" note per user and period."""

    def __init__(self, cooldown: Cooldown) -> None:
        self.commands = _per_user(cooldown.commands, cooldown.seconds)
        self.buttons = _per_user(cooldown.buttons, cooldown.seconds)
        self.told = _per_user(1, cooldown.seconds)

    def count(self, user_id: int) -> None:
        """One command of `user_id` (every cog's commands share the bucket); CommandOnCooldown past the rate."""
        bucket = self.commands.get_bucket(user_id)
        assert bucket is not None  # a mapping keyed by user always has one
        retry = bucket.update_rate_limit()
        if retry is not None:
            raise commands.CommandOnCooldown(bucket, retry, commands.BucketType.user)

    def note(self, ctx: commands.Context[Any], error: commands.CommandOnCooldown) -> str | None:
        """The "slow down" answer to a command over the rate; None for a prefix command of a member told so
        this period already (more notes would be the flood the cooldown stops)."""
        if ctx.interaction is None and self.told.update_rate_limit(ctx.author.id) is not None:
            return None
        return slow_down(error.retry_after)


def _per_user(rate: int, seconds: float) -> commands.CooldownMapping[int]:
    """A token bucket per user id: `rate` uses in any `seconds`."""
    return commands.CooldownMapping.from_cooldown(rate, seconds, lambda user_id: user_id)
