"""The painting service: `prepare` judges a request before anything is fetched — its settings parsed on this
server's defaults (or a kept job's settings changed), the member's role defaults, their caps, the blend of its
pictures, then their cooldown — and `submit` takes the pictures in within the queue's limits, queues the job,
posts its status message and hands it to delivery. Every entry point goes through both."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from engine import Settings

from ..checks import Cooldowns, role_ids, slow_down
from ..inputs.images import Clip, shrink
from ..jobs import Admission, Job, Snapshot, Status
from ..parsing import UsageError, check_blend, parse_settings
from ..render import status_text
from .buttons import cancel_view
from .delivery import Delivery
from .intake import Intake
from .request import Inputs, Request, Sources

if TYPE_CHECKING:
    from .host import Host
    from ..config import Caps

Change = Callable[[Settings, frozenset[str], "Caps"], tuple[Settings, frozenset[str]]]


@dataclass(frozen=True)
class Plan:
    """A request that passed `prepare`: its settings, which of them the user chose, their caps, and where its
    pictures come from."""

    settings: Settings
    given: frozenset[str]
    caps: Caps
    sources: Sources


class Painter:
    """The bot's one painting service (see the module's docstring)."""

    def __init__(self, bot: Host) -> None:
        self.bot = bot
        self.config = bot.config
        limits = self.config.limits
        self.cooldowns = Cooldowns(self.config.cooldown)
        self.admission = Admission(bot.backend, per_user=limits.per_user, queue_size=limits.queue_size)
        self.intake = Intake(bot)
        self.delivery = Delivery(bot)

    def start(self) -> None:
        """Pick up the jobs a previous run left (in the background)."""
        self.delivery.start()

    async def close(self) -> None:
        self.intake.close()
        await self.delivery.close()

    async def prepare(self, user: discord.abc.User, guild_id: int | None, pick: Callable[[Caps], Sources], *,
                      raw: Mapping[str, Any] | None = None, kept: tuple[Settings, frozenset[str]] | None = None,
                      change: Change | None = None, cooldown: commands.CooldownMapping[int] | None = None) -> Plan:
        """Judge a request of `user`: the key=value `raw` parsed on this server's defaults (or the `kept` job's
        settings), `change`d (the again buttons; under the user's caps), the role defaults of the user, their
        caps, the blend of the pictures `pick` chooses (within the caps), then one use of `cooldown` (None: the
        command counted it already). Raises UsageError (or ParamError) with the reason."""
        if kept is None:
            settings, given = parse_settings(dict(raw or {}), await self.bot.server_defaults.settings(guild_id))
        else:
            settings, given = kept
        caps = self.config.limits.caps_for(role_ids(user))
        if change is not None:
            settings, given = change(settings, given, caps)
        settings = role_default(settings, given, caps)
        caps.check(settings)
        sources = pick(caps)
        check_blend(settings, len(sources.styles), masked=sources.mask is not None)
        if cooldown is not None:
            retry = cooldown.update_rate_limit(user.id)
            if retry is not None:
                raise UsageError(slow_down(retry))
        return Plan(settings, given, caps, sources)

    async def submit(self, request: Request, plan: Plan, gather: Callable[[], Awaitable[Inputs]] | None = None
                     ) -> Job:
        """Gather the inputs within the queue's limits (a refused job downloads nothing; default: the plan's
        sources, downloaded), queue the job, post its status message (with Cancel) and follow it to its end."""
        settings = plan.settings
        owner = request.user_id if plan.sources.poster is None else plan.sources.poster  # whose photo it is
        gather = gather or partial(self.intake.gather, owner, plan.sources, settings, plan.caps)
        backend = self.bot.backend
        async with self.admission.hold(request.user_id):
            inputs = await gather()
            settings = settings.for_shape(inputs.photo.size)  # a pixel count becomes the photo's longest side
            clip = inputs.clip or Clip((), ())
            self.intake.check_memory(settings, inputs.photo.size, len(inputs.styles), max(1, len(clip.frames)))
            content = (clip.frames[0] if clip.frames else  # frames: shrunk already
                       await self.intake.decode(partial(shrink, inputs.photo, settings.size)))
            origin = request.origin
            job = Job(user_id=request.user_id, channel_id=origin.channel.id, guild_id=request.guild_id,
                      message_id=origin.message_id, content=content,
                      styles=inputs.styles, settings=settings, given=plan.given, mask=inputs.mask, init=inputs.init,
                      frames=clip.frames, durations_ms=clip.durations_ms)
            position = await backend.submit(job)
        async with self.delivery.posting():
            post = request.post or partial(origin.channel.send, reference=origin.reference, mention_author=False)
            try:
                status = await post(status_text(job.id, Snapshot(Status.QUEUED, position, None, None)),
                                    view=cancel_view(job.id))
            except BaseException:  # Discord refused it, or the network failed (not an HTTPException): nobody
                # could follow this job, so don't paint it, and collect it so that the backend forgets it
                await backend.cancel(job.id, "cancelled: its status message could not be posted")
                await backend.result(job.id)
                raise
            await backend.track(job.id, status.id)
            self.delivery.follow(origin, job, origin.channel.get_partial_message(status.id), inputs)
        return job


def role_default(settings: Settings, given: frozenset[str], caps: Caps) -> Settings:
    """`settings` with animate on where the member's role animates by default and they did not say otherwise."""
    return dataclasses.replace(settings, animate=True) if caps.animate and "animate" not in given else settings
