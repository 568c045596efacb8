"""The bot: a commands.Bot that owns the job backend and the link-fetching session.

Tests inject `backend` and `session_factory`; production gets the backend that `[jobs] backend`
names (make_backend: in-process engine threads, or Celery GPU workers through Redis) and the
SSRF-guarded session from bot.inputs.fetch.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import discord
from discord.ext import commands

from engine import pick_device

from .checks import can_post
from .config import Config
from .inputs.fetch import make_session
from .health import HealthReporter, gateway_connected
from .jobs import InProcessBackend, JobBackend, engine_batching, engine_runner
from .library import Library, ServerDefaults
from .painting import Painter
from .render import fit
from .storage import Store

log = logging.getLogger(__name__)

EXTENSIONS = ("bot.cogs.stylize", "bot.cogs.library", "bot.cogs.again", "bot.cogs.menus", "bot.cogs.admin")
# Nobody is pinged unless a message opts in (the owner of a finished job); a reply still pings its author.
NO_PINGS = discord.AllowedMentions(everyone=False, roles=False, users=False, replied_user=True)
MUTED_LOG_EVERY = 3600.0  # seconds between log lines about one channel where the bot may not post


class StylizeContext(commands.Context["StylizeBot"]):
    """The commands' context: whatever a command says passes `fit`, Discord's 2,000-character cap."""

    async def send(self, content: str | None = None, **options: Any) -> discord.Message:  # type: ignore[override]
        return await super().send(None if content is None else fit(str(content)), **options)


class StylizeBot(commands.Bot):
    """Prefix and slash commands from the cogs in EXTENSIONS; jobs go to `backend`.

    `session_factory` makes the aiohttp session used for image links. It must return a session
    from bot.inputs.fetch.make_session (fetch_url refuses others); tests pass one with a permissive
    address policy to reach their loopback file host. `health`, when given, keeps the container's
    health file fresh (gateway connected, job workers alive) while the bot runs. `store` (bot.storage,
    under [storage] data_dir) keeps the style library, per-server defaults and recent job inputs; `painter`
    (bot.painting) takes every request from the cogs to its delivery. The cogs never call each other.
    """

    def __init__(self, config: Config, *, backend: JobBackend | None = None,
                 session_factory: Callable[[], aiohttp.ClientSession] | None = None,
                 health: HealthReporter | None = None, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # prefix commands read message text (privileged: enable it in the portal)
        if config.owner_ids:
            options["owner_ids"] = set(config.owner_ids)
        super().__init__(
            command_prefix=commands.when_mentioned_or(config.prefix),
            intents=intents,
            allowed_mentions=NO_PINGS,
            **options,
        )
        self.config = config
        limits = config.limits
        self.backend: JobBackend = backend or make_backend(config)
        self._session_factory = session_factory or partial(make_session, timeout=limits.fetch_timeout)
        self.fetch_session: aiohttp.ClientSession | None = None
        self.health = health
        self._muted = commands.CooldownMapping.from_cooldown(1, MUTED_LOG_EVERY, lambda channel_id: channel_id)
        storage = config.storage
        self.store = Store(Path(storage.data_dir), keep_days=storage.keep_days,
                           max_bytes=storage.max_megabytes * 1024 * 1024)
        self.library = Library(self.store)
        self.server_defaults = ServerDefaults(self.store, config.defaults, limits.caps_for(()))
        self.painter = Painter(self)  # every entry point's one way to a painted picture (bot.painting)

    async def setup_hook(self) -> None:
        self.fetch_session = self._session_factory()
        await self.store.open()
        await self.backend.start()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.painter.start()
        if self.health is not None:
            self.health.start(is_connected=partial(gateway_connected, self), worker_alive=self.backend.alive)
        freeze_heap()

    async def get_context(self, origin: discord.Message | discord.Interaction, /, *,  # type: ignore[override]
                          cls: type[commands.Context[Any]] = StylizeContext) -> Any:
        return await super().get_context(origin, cls=cls)

    async def process_commands(self, message: discord.Message, /) -> None:
        """Commands, except in channels where the bot may not post: every answer there would fail with
        403, and Discord bans an IP for a while after 10,000 failed requests in 10 minutes."""
        if message.author.bot:
            return
        ctx = await self.get_context(message)
        if ctx.valid and not can_post(ctx):
            if self._muted.update_rate_limit(ctx.channel.id) is None:  # say so once an hour per channel
                log.warning("ignoring commands in channel %s (server %s): I may not send messages there",
                            ctx.channel.id, ctx.guild.id if ctx.guild else None)
            return
        await self.invoke(ctx)

    async def on_ready(self) -> None:
        log.info("logged in as %s in %d server(s)", self.user, len(self.guilds))

    async def on_command_error(  # type: ignore[override]
            self, ctx: commands.Context[Any], error: commands.CommandError) -> None:
        """Cogs answer their own errors; unknown commands (other bots' prefixes) are ignored."""
        if isinstance(error, commands.CommandNotFound) or (ctx.cog is not None and ctx.cog.has_error_handler()):
            return
        log.error("command %s failed", ctx.command, exc_info=error)

    async def close(self) -> None:
        """Cancel jobs first (their owners are told while the connection is still up), then disconnect."""
        await self.backend.close()
        await self.painter.close()  # the followers post their last word while the connection is up
        await super().close()
        if self.fetch_session is not None:
            await self.fetch_session.close()
        if self.health is not None:
            await self.health.stop()
        await self.store.close()
        gc.unfreeze()  # what start-up set aside may be collected again (a test process runs many bots)


def freeze_heap() -> None:
    """Set what start-up made (torch, discord.py, PIL, the bot: ~370,000 objects) aside from the garbage
    collector: a full collection no longer walks it. One that a burst of allocations sets off in a decoder
    thread (counting a 10,000-frame GIF's frames) held the event loop 597 ms, frozen 2 ms (bench/gc_pause.py,
    the loaded 2-core machine). Collected first, so nothing frozen is garbage already."""
    gc.collect()
    gc.freeze()


def make_backend(config: Config) -> JobBackend:
    """The job backend `[jobs] backend` selects; Celery is imported only when it is used."""
    limits = config.limits
    if config.jobs.backend == "celery":
        from .jobs.celery import CeleryBackend

        return CeleryBackend(config.jobs.redis_url, prefix=config.jobs.key_prefix, workers=config.workers,
                             queue_size=limits.queue_size, per_user=limits.per_user, timeout=limits.job_timeout,
                             keep=config.jobs.keep, batch_size=config.jobs.batch_size)
    batching = None
    if config.jobs.batch_size > 1:  # a batch may use the memory one worker's job may (engine.memory: the sum)
        budget = limits.job_memory(config.workers, str(pick_device(config.device)))
        batching = engine_batching(config.device, config.jobs.batch_size, config.jobs.batch_wait, budget)
    return InProcessBackend(engine_runner(config.device), workers=config.workers, queue_size=limits.queue_size,
                            per_user=limits.per_user, timeout=limits.job_timeout, batching=batching)
