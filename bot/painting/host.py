"""What the painting service needs of the bot that owns it. bot.app's StylizeBot is the one host; naming
what is used here, rather than importing that class, keeps the service below the bot that makes it (the
bot imports the Painter, never the other way round)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    import aiohttp
    import discord

    from ..config import Config
    from ..jobs import JobBackend
    from ..library import Library, ServerDefaults
    from ..storage import Store


class Host(Protocol):
    """The bot as the painting service sees it: its settings, queue, store and libraries, and the few
    discord.py client calls that find a job's channel and owner."""

    config: Config
    backend: JobBackend
    store: Store
    library: Library
    server_defaults: ServerDefaults
    fetch_session: aiohttp.ClientSession | None

    def add_listener(self, func: Callable[..., Any], name: str = ...) -> None: ...

    async def wait_until_ready(self) -> None: ...

    def get_channel(self, id: int, /) -> Any: ...

    async def fetch_channel(self, channel_id: int, /) -> Any: ...

    def get_partial_messageable(self, id: int, *, guild_id: int | None = None,
                                type: discord.ChannelType | None = None) -> discord.PartialMessageable: ...

    def get_user(self, id: int, /) -> discord.User | None: ...

    async def fetch_user(self, user_id: int, /) -> discord.User: ...
