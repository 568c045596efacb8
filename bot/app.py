"""The bot: a commands.Bot that owns the job backend and the link-fetching session.

Tests inject `backend` and `session_factory`; production gets the backend that `[jobs] backend`
names (make_backend: in-process engine threads, or Celery GPU workers through Redis) and the
SSRF-guarded session from bot.inputs.fetch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import discord
from discord.ext import commands

from .config import Caps, Config
from .inputs.fetch import make_session
from .health import HealthReporter, gateway_connected
from .jobs import InProcessBackend, JobBackend, engine_runner
from .library import Library, ServerDefaults
from .storage import Store

log = logging.getLogger(__name__)

EXTENSIONS = ("bot.cogs.stylize", "bot.cogs.library", "bot.cogs.admin")


class StylizeBot(commands.Bot):
    """Prefix and slash commands from the cogs in EXTENSIONS; jobs go to `backend`.

    `session_factory` makes the aiohttp session used for image links. It must return a session
    from bot.inputs.fetch.make_session (fetch_url refuses others); tests pass one with a permissive
    address policy to reach their loopback file host. `health`, when given, keeps the container's
    health file fresh (gateway connected, job workers alive) while the bot runs. `store` (bot.storage,
    under [storage] data_dir) keeps the style library, per-server defaults and recent job inputs.
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
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=True),
            **options,
        )
        self.config = config
        limits = config.limits
        self.backend: JobBackend = backend or make_backend(config)
        self._session_factory = session_factory or partial(make_session, timeout=limits.fetch_timeout)
        self.fetch_session: aiohttp.ClientSession | None = None
        self.health = health
        storage = config.storage
        self.store = Store(Path(storage.data_dir), keep_days=storage.keep_days,
                           max_bytes=storage.max_megabytes * 1024 * 1024)
        self.library = Library(self.store)
        self.server_defaults = ServerDefaults(self.store, config.defaults, Caps(limits.max_size, limits.max_steps))

    async def setup_hook(self) -> None:
        self.fetch_session = self._session_factory()
        await self.store.open()
        await self.backend.start()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.health is not None:
            self.health.start(is_connected=partial(gateway_connected, self), worker_alive=self.backend.alive)

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
        await super().close()
        if self.fetch_session is not None:
            await self.fetch_session.close()
        if self.health is not None:
            await self.health.stop()
        await self.store.close()


def make_backend(config: Config) -> JobBackend:
    """The job backend `[jobs] backend` selects; Celery is imported only when it is used."""
    limits = config.limits
    if config.jobs.backend == "celery":
        from .jobs.celery import CeleryBackend

        return CeleryBackend(config.jobs.redis_url, prefix=config.jobs.key_prefix, workers=config.workers,
                             queue_size=limits.queue_size, per_user=limits.per_user, timeout=limits.job_timeout,
                             keep=config.jobs.keep)
    return InProcessBackend(engine_runner(config.device), workers=config.workers, queue_size=limits.queue_size,
                            per_user=limits.per_user, timeout=limits.job_timeout)
