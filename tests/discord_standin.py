"""A loopback stand-in for Discord (gateway + REST + CDN) for end-to-end tests.

The real discord.py client talks to this server instead of Discord, so tests exercise the
actual library code paths (gateway parsing, command dispatch, interaction responses, multipart
uploads) without any network access.

Quick start (see ``tests/conftest.py`` for the ``fake_discord`` and ``run_bot`` fixtures)::

    async def test_something(fake_discord, run_bot):
        bot = make_my_bot(guild_ready_timeout=0.05)
        async with run_bot(bot):
            mark = fake_discord.mark()
            await fake_discord.send_message(fake_discord.alice, "!echo hi")
            event = await fake_discord.wait_for(kind="message", since=mark)
            assert event.content == "hi"

Everything the bot does over REST is recorded in ``FakeDiscord.events`` (an ordered list of
:class:`Event`); ``wait_for`` awaits a matching event. Every HTTP request is also listed in
``FakeDiscord.requests``; requests the stand-in does not implement are answered with a 404 JSON
error and listed in ``FakeDiscord.unhandled``.

Behaviour emulated on purpose because real Discord does it and bots trip over it:

* JSON responses carry ``Content-Type: application/json`` exactly (discord.py only parses JSON
  on an exact match).
* Snowflakes are time-based (interaction expiry is computed from the id).
* Interactions must be acknowledged within ``interaction_timeout`` seconds (3 s like Discord),
  else ``404 Unknown interaction (10062)``; a second acknowledgement gets ``400 (40060)``.
* Interaction tokens (follow-ups, edits of the original) expire ``token_lifetime`` seconds after
  the interaction (15 minutes like Discord): ``401 Invalid Webhook Token (50027)``.
* A reply to a deleted message fails (``400``, "Unknown message") unless its reference says
  ``fail_if_not_exists: false``; editing or deleting a deleted message gets ``404 (10008)``.
* Missing permissions get ``403 (50013)``: channel overwrites set with ``add_text_channel(deny_bot=…)``
  or, while the bot runs, ``deny_bot(channel_id, …)``; a user who refuses DMs
  (``refuse_dms(user)``) gets ``403 Cannot send messages to this user (50007)``.
* Threads (``add_thread``: a public thread, type 11, in a text channel) arrive in GUILD_CREATE's
  ``threads`` or with THREAD_CREATE. A thread has no overwrites of its own: the bot's permissions there
  (``app_permissions`` too) are its parent channel's, and posting there takes Send Messages in
  Threads, not Send Messages.
* The first follow-up after a "thinking" defer (callback type 5) fills in the deferred
  placeholder message (same message id, ephemeral-ness of the defer) instead of creating a
  new message.
* Uploads over the size limit get ``413 (40005)``; content over 2000 characters, embeds over
  6000 characters in one message, or an empty message gets ``400``.
* Without the message-content intent, MESSAGE_CREATE for other users' guild messages arrives
  with empty content/attachments/embeds/components (unless the bot is mentioned).
* The bot's own (non-ephemeral) messages are echoed back over the gateway as MESSAGE_CREATE /
  MESSAGE_UPDATE / MESSAGE_DELETE like Discord does.
* Attachment URLs point at this server's CDN and carry ``?ex=..&is=..&hm=..&`` query strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import io
import itertools
import json
import logging
import mimetypes
import re
import secrets
import socket
import struct
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import aiohttp
import discord
import discord.asset
import discord.gateway
import discord.http
import yarl
from aiohttp import web

__all__ = [
    "DISCORD_EPOCH_MS",
    "Event",
    "FakeDiscord",
    "InteractionRecord",
    "RequestRecord",
    "StandinTimeout",
    "Upload",
    "User",
    "run_bot",
    "snowflake_time_ms",
]

log = logging.getLogger("discord_standin")

DISCORD_EPOCH_MS = 1420070400000
API_PREFIX = "/api/v10"

# Gateway intents (bit values)
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13
INTENT_MESSAGE_CONTENT = 1 << 15

CHANNEL_TEXT = 0
THREAD_TYPES = (10, 11, 12)  # announcement, public and private threads
THREAD_PUBLIC = 11

# Message flags
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_IS_COMPONENTS_V2 = 1 << 15

MAX_CONTENT = 2000
MAX_MODAL_LABEL = 45  # a modal's title, and the label of each of its fields
MAX_ATTACHMENTS = 10
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000  # characters of all the embeds of one message together

# Upload limit per guild boost tier, as discord.py's Guild.filesize_limit computes it.
_TIER_FILESIZE = {0: 10 * 1024 * 1024, 1: 10 * 1024 * 1024, 2: 50 * 1024 * 1024, 3: 100 * 1024 * 1024}

_EXTRA_MIME = {".webp": "image/webp", ".avif": "image/avif", ".heic": "image/heic", ".jfif": "image/jpeg"}


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def snowflake_time_ms(snowflake: Union[int, str]) -> int:
    """Unix time in milliseconds encoded in a snowflake."""
    return (int(snowflake) >> 22) + DISCORD_EPOCH_MS


class _SnowflakeFactory:
    """Time-based, strictly increasing snowflakes: ``(ms since 2015) << 22 | increment``."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate


def _iso_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _guess_content_type(filename: str) -> Optional[str]:
    suffix = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    if suffix in _EXTRA_MIME:
        return _EXTRA_MIME[suffix]
    return mimetypes.guess_type(filename)[0]


def _image_size(data: bytes, content_type: Optional[str]) -> Optional[Tuple[int, int]]:
    if not content_type or not content_type.startswith("image/"):
        return None
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:
        return None


def _json_response(data: Any, status: int = 200) -> web.Response:
    # Built by hand: web.json_response adds "; charset=utf-8" and discord.py then treats the
    # body as text, because it compares the content type for equality.
    return web.Response(status=status, body=json.dumps(data).encode(), headers={"Content-Type": "application/json"})


def _error(status: int, code: int, message: str, errors: Optional[dict] = None) -> web.Response:
    body: Dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return _json_response(body, status=status)


def _form_error(field_name: str, code: str, message: str) -> web.Response:
    return _error(400, 50035, "Invalid Form Body", {field_name: {"_errors": [{"code": code, "message": message}]}})


def _truthy(value: Optional[str]) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------------------------
# public data types
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class User:
    """A Discord user known to the stand-in (and, if ``is_member``, a member of its guild)."""

    id: int
    username: str
    global_name: Optional[str] = None
    bot: bool = False
    roles: List[int] = field(default_factory=list)  # guild role ids, without @everyone
    nick: Optional[str] = None
    locale: str = "en-US"
    is_member: bool = True
    joined_at: str = field(default_factory=_iso_now)

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def to_json(self) -> Dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
        }


@dataclass
class Upload:
    """A file: something a user attaches, or something the bot uploaded.

    ``size``/``width``/``height`` override what the stand-in advertises to the bot (e.g. claim
    a 30 MB attachment without generating 30 MB); by default they come from ``data``.
    """

    filename: str
    data: bytes
    content_type: Optional[str] = None
    size: Optional[int] = None
    width: Optional[int] = None
    height: Optional[int] = None
    description: Optional[str] = None


UploadLike = Union[Upload, Tuple[str, bytes], Tuple[str, bytes, Optional[str]]]


def _as_upload(item: UploadLike) -> Upload:
    if isinstance(item, Upload):
        return item
    if isinstance(item, tuple) and len(item) in (2, 3):
        return Upload(item[0], bytes(item[1]), item[2] if len(item) == 3 else None)
    raise TypeError(f"expected Upload or (filename, bytes[, content_type]), got {item!r}")


@dataclass
class RequestRecord:
    method: str
    path: str
    query: Dict[str, str]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Event:
    """Something the bot did, in order.

    kind:
        ``message`` (a message was posted: channel send, interaction response type 4, follow-up),
        ``edit`` (a message was edited: channel PATCH, webhook/@original PATCH, callback type 7),
        ``delete``, ``interaction_response`` (every callback POST, see ``response_type``),
        ``typing``, ``reaction`` (``extra['emoji']``, ``extra['action']``), ``commands_sync``,
        ``gateway`` (``via`` is ``identify``/``resume``/``presence``/``request_members``).
    via:
        ``channel``, ``interaction``, ``followup``, ``webhook``, or the gateway op name.
    """

    index: int
    kind: str
    via: str
    method: str = ""
    path: str = ""
    payload: Any = None
    files: List[Upload] = field(default_factory=list)
    message: Optional[Dict[str, Any]] = None
    channel_id: Optional[int] = None
    message_id: Optional[int] = None
    interaction_id: Optional[int] = None
    response_type: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def content(self) -> Optional[str]:
        return None if self.message is None else self.message.get("content")

    @property
    def flags(self) -> int:
        return 0 if self.message is None else int(self.message.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def reference(self) -> Optional[Dict[str, Any]]:
        return None if self.message is None else self.message.get("message_reference")

    @property
    def attachments(self) -> List[Dict[str, Any]]:
        return [] if self.message is None else list(self.message.get("attachments") or [])

    @property
    def pings(self) -> Dict[str, Any]:
        """Whom Discord notifies for this new message (``kind="message"``): ``users`` (ids), ``roles``
        (ids) and ``everyone``. Mentions in the content count as far as the request's
        ``allowed_mentions`` lets them (all of them when it sends none); a reply also pings the
        replied-to author unless ``replied_user`` is false."""
        if self.message is None or self.kind != "message" or not isinstance(self.payload, dict):
            return {"users": [], "roles": [], "everyone": False}
        body = self.payload.get("data", self.payload) if self.via == "interaction" else self.payload
        allowed = body.get("allowed_mentions")
        parse = set(allowed.get("parse", [])) if allowed is not None else {"users", "roles", "everyone"}
        listed_users = {int(i) for i in (allowed or {}).get("users", [])}
        listed_roles = {int(i) for i in (allowed or {}).get("roles", [])}
        content = self.message.get("content") or ""
        users = [int(i) for i in dict.fromkeys(re.findall(r"<@!?(\d+)>", content))
                 if "users" in parse or int(i) in listed_users]
        replied = self.message.get("referenced_message")
        if replied and (allowed is None or allowed.get("replied_user")) and int(replied["author"]["id"]) not in users:
            users.append(int(replied["author"]["id"]))
        roles = [int(i) for i in dict.fromkeys(re.findall(r"<@&(\d+)>", content))
                 if "roles" in parse or int(i) in listed_roles]
        everyone = "everyone" in parse and re.search(r"@(everyone|here)\b", content) is not None
        return {"users": users, "roles": roles, "everyone": everyone}

    @property
    def filenames(self) -> List[str]:
        return [f.filename for f in self.files]

    @property
    def embeds(self) -> List[Dict[str, Any]]:
        return [] if self.message is None else list(self.message.get("embeds") or [])

    @property
    def components(self) -> List[Dict[str, Any]]:
        return [] if self.message is None else list(self.message.get("components") or [])

    def file(self, filename: Optional[str] = None) -> Upload:
        """The uploaded file named ``filename`` (or the only one)."""
        if filename is None:
            if len(self.files) != 1:
                raise LookupError(f"event has {len(self.files)} files: {self.filenames}")
            return self.files[0]
        for f in self.files:
            if f.filename == filename:
                return f
        raise LookupError(f"no file {filename!r} in {self.filenames}")

    def summary(self) -> str:
        bits = [f"#{self.index} {self.kind}/{self.via}"]
        if self.response_type is not None:
            bits.append(f"type={self.response_type}")
        if self.message is not None:
            content = self.message.get("content") or ""
            bits.append(f"content={content[:60]!r}")
        if self.files:
            bits.append(f"files={self.filenames}")
        if self.extra:
            bits.append(f"extra={self.extra}")
        return " ".join(bits)


@dataclass
class InteractionRecord:
    """Server-side state of one interaction the stand-in dispatched."""

    id: int
    token: str
    type: int
    payload: Dict[str, Any]
    channel_id: int
    author: User
    created: float  # time.monotonic()
    command_name: Optional[str] = None
    source_message_id: Optional[int] = None  # component interactions: the clicked message
    response_type: Optional[int] = None
    response_data: Any = None
    original_message_id: Optional[int] = None
    loading: bool = False  # original is a "thinking" placeholder nobody has filled yet
    followup_ids: List[int] = field(default_factory=list)
    modal: Optional[Dict[str, Any]] = None

    @property
    def responded(self) -> bool:
        return self.response_type is not None


class StandinTimeout(AssertionError):
    """Raised by :meth:`FakeDiscord.wait_for` when nothing matching was recorded in time."""


@dataclass
class _Waiter:
    predicate: Optional[Callable[[Event], bool]]
    kind: Optional[str]
    since: int
    future: asyncio.Future


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern
    status: int
    body: Dict[str, Any]
    times: int
    reset: bool = False


@dataclass
class _HostedFile:
    data: bytes
    content_type: str
    status: int = 200
    headers: Dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _GatewayConn:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.seq = 0
        self.session_id: Optional[str] = None
        self.intents = 0
        self.identified = False
        self.shard: Optional[List[int]] = None
        self.lock = asyncio.Lock()

    async def send(self, op: int, d: Any = None, t: Optional[str] = None) -> None:
        async with self.lock:
            s = None
            if op == 0:
                self.seq += 1
                s = self.seq
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(json.dumps({"op": op, "d": d, "s": s, "t": t}))
            except (ConnectionError, RuntimeError) as exc:  # peer went away mid-send
                log.debug("gateway send failed: %r", exc)


class _Pointer:
    """Returned by :meth:`FakeDiscord.point_discord_py_here`; ``restore()`` or use as a context manager."""

    def __init__(self, base: str, gateway: yarl.URL, asset_base: str) -> None:
        self._saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, discord.asset.Asset.BASE)
        discord.http.Route.BASE = base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
        discord.asset.Asset.BASE = asset_base
        self._restored = False

    def restore(self) -> None:
        if not self._restored:
            (
                discord.http.Route.BASE,
                discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
                discord.asset.Asset.BASE,
            ) = self._saved
            self._restored = True

    def __enter__(self) -> "_Pointer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.restore()


# --------------------------------------------------------------------------------------------
# the stand-in
# --------------------------------------------------------------------------------------------


class FakeDiscord:
    """Discord's gateway, REST API v10 and CDN on 127.0.0.1, for one guild with one text channel.

    Parameters
    ----------
    premium_tier:
        Guild boost tier; ``guild.filesize_limit`` follows it (0/1: 10 MiB, 2: 50, 3: 100).
    attachment_size_limit:
        What interactions report as ``interaction.filesize_limit`` (default: the guild limit).
    interaction_timeout:
        Seconds an interaction may stay unacknowledged (Discord: 3).
    token_lifetime:
        Seconds an interaction's token lasts for follow-ups and edits (Discord: 15 minutes).
    enforce_limits:
        Reject oversized uploads (413), over-long content and empty messages (400).
    echo_bot_messages:
        Dispatch MESSAGE_CREATE/UPDATE/DELETE for the bot's own non-ephemeral messages.
    bot_permissions:
        Permissions of the bot's managed role (default: view, send, embed, attach, history,
        reactions, external emojis).
    """

    def __init__(
        self,
        *,
        guild_name: str = "Stylize Test Guild",
        channel_name: str = "general",
        bot_name: str = "Stylize",
        premium_tier: int = 0,
        attachment_size_limit: Optional[int] = None,
        interaction_timeout: float = 3.0,
        token_lifetime: float = 15 * 60.0,
        enforce_limits: bool = True,
        echo_bot_messages: bool = True,
        heartbeat_interval_ms: int = 45000,
        bot_permissions: Optional[discord.Permissions] = None,
    ) -> None:
        self._snowflake = _SnowflakeFactory()
        self.premium_tier = premium_tier
        self.attachment_size_limit = attachment_size_limit
        self.interaction_timeout = interaction_timeout
        self.token_lifetime = token_lifetime
        self.enforce_limits = enforce_limits
        self.echo_bot_messages = echo_bot_messages
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.guild_name = guild_name
        self.port: Optional[int] = None

        # identities
        self.application_id = self._snowflake()
        self.bot_user = User(self.application_id, bot_name.lower(), global_name=bot_name, bot=True)
        self.guild_id = self._snowflake()
        self.moderator_role_id = self._snowflake()
        self.bot_role_id = self._snowflake()
        self.channel_id = self._snowflake()

        chat = dict(view_channel=True, send_messages=True, send_messages_in_threads=True,
                    read_message_history=True, attach_files=True, embed_links=True, add_reactions=True,
                    use_external_emojis=True)
        everyone = discord.Permissions(**chat, use_application_commands=True, create_instant_invite=True,
                                       change_nickname=True)
        bot_perms = bot_permissions or discord.Permissions(**chat)
        self.roles: Dict[int, Dict[str, Any]] = {}
        self._add_role(self.guild_id, "@everyone", everyone.value, position=0)
        self._add_role(self.moderator_role_id, "Moderator", discord.Permissions(manage_messages=True).value, position=1)
        self._add_role(
            self.bot_role_id,
            bot_name,
            bot_perms.value,
            position=2,
            managed=True,
            tags={"bot_id": str(self.bot_user.id)},
        )
        self.bot_user.roles = [self.bot_role_id]

        self.channels: Dict[int, Dict[str, Any]] = {}
        self._dm_channels: Dict[int, int] = {}  # user id -> DM channel id
        self._dms_refused: set = set()  # ids of users whose DMs refuse the bot
        self.add_text_channel(channel_name, channel_id=self.channel_id)

        self.users: Dict[int, User] = {self.bot_user.id: self.bot_user}
        self._user_counter = itertools.count(1)
        self.owner = self.make_user("owner", global_name="Guild Owner")
        self.alice = self.make_user("alice", global_name="Alice")
        self.bob = self.make_user("bob", global_name="Bob")
        self.moderator = self.make_user("mod", global_name="Moderator", moderator=True)

        # state
        self.messages: Dict[int, Dict[str, Any]] = {}
        self.interactions: Dict[int, InteractionRecord] = {}
        self._interactions_by_token: Dict[str, InteractionRecord] = {}
        self.global_commands: List[Dict[str, Any]] = []
        self.guild_commands: Dict[int, List[Dict[str, Any]]] = {}
        self.presence: Optional[Dict[str, Any]] = None

        # recording
        self.events: List[Event] = []
        self.requests: List[RequestRecord] = []
        self.unhandled: List[RequestRecord] = []
        self.internal_errors: List[str] = []
        self.hits: Counter = Counter()
        self._waiters: List[_Waiter] = []
        self._last_activity = time.monotonic()

        # transport
        self._cdn: Dict[str, Tuple[bytes, str]] = {}
        self._hosted: Dict[str, _HostedFile] = {}
        self._faults: List[_Fault] = []
        self._conns: List[_GatewayConn] = []
        self._sessions: Dict[str, Dict[str, Any]] = {}
        self._runner: Optional[web.AppRunner] = None
        self._pointer: Optional[_Pointer] = None
        self._routes = self._build_routes()

    # ----------------------------------------------------------------------------------------
    # lifecycle
    # ----------------------------------------------------------------------------------------

    async def start(self) -> "FakeDiscord":
        app = web.Application(client_max_size=512 * 1024 * 1024)  # aiohttp's default is 1 MiB
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for conn in list(self._conns):
            if not conn.ws.closed:
                with contextlib.suppress(Exception):
                    await conn.ws.close(code=1001, message=b"stand-in stopping")
        self._conns.clear()
        for w in self._waiters:
            if not w.future.done():
                w.future.cancel()
        self._waiters.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeDiscord":
        await self.start()
        self.point_discord_py_here()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.restore_discord_py()
        await self.stop()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeDiscord is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def point_discord_py_here(self) -> _Pointer:
        """Point ``discord.http.Route.BASE``, ``DiscordWebSocket.DEFAULT_GATEWAY`` and
        ``discord.asset.Asset.BASE`` at this server. Returns an object whose ``restore()`` (or
        ``with`` exit) puts the old values back; :meth:`restore_discord_py` does the same."""
        self.restore_discord_py()
        self._pointer = _Pointer(self.api_base, yarl.URL(self.gateway_url), self.base_url + "/cdn")
        return self._pointer

    def restore_discord_py(self) -> None:
        if self._pointer is not None:
            self._pointer.restore()
            self._pointer = None

    # ----------------------------------------------------------------------------------------
    # guild model
    # ----------------------------------------------------------------------------------------

    def _add_role(self, role_id: int, name: str, permissions: int, *, position: int, **extra: Any) -> None:
        self.roles[role_id] = {
            "id": str(role_id),
            "name": name,
            "permissions": str(permissions),
            "position": position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
            **extra,
        }

    def add_role(self, name: str, permissions: Union[int, discord.Permissions] = 0) -> int:
        """Add a guild role (call before the bot connects, or it won't know it). Returns its id."""
        role_id = self._snowflake()
        value = permissions.value if isinstance(permissions, discord.Permissions) else int(permissions)
        self._add_role(role_id, name, value, position=len(self.roles))
        return role_id

    def add_text_channel(self, name: str, *, channel_id: Optional[int] = None,
                         deny_bot: Optional[discord.Permissions] = None) -> int:
        """Add a guild text channel (call before the bot connects). Returns its id. ``deny_bot``:
        permissions a member overwrite takes from the bot there (e.g. ``send_messages``); the
        stand-in then refuses what they guard, like Discord (403, code 50013)."""
        cid = channel_id or self._snowflake()
        overwrites = [] if deny_bot is None else [
            {"id": str(self.bot_user.id), "type": 1, "allow": "0", "deny": str(deny_bot.value)}]
        self.channels[cid] = {
            "id": str(cid),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": len(self._guild_channels()),
            "permission_overwrites": overwrites,
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }
        return cid

    async def add_thread(self, name: str, *, parent_id: Optional[int] = None, owner: Optional[User] = None) -> int:
        """Open a public thread in a text channel (default: the first one) as ``owner`` (default: alice).
        Returns its id. Made before the bot connects, it arrives in GUILD_CREATE's ``threads``; while the bot
        runs, with THREAD_CREATE (``newly_created``), like Discord. It has no overwrites of its own: take a
        permission from the bot there with ``deny_bot(parent_id, …)``."""
        parent = self.channels[parent_id or self.channel_id]
        assert parent.get("type") == CHANNEL_TEXT and parent.get("guild_id"), "threads open in guild text channels"
        tid = self._snowflake()
        now = _iso_now()
        self.channels[tid] = {
            "id": str(tid),
            "type": THREAD_PUBLIC,
            "guild_id": str(self.guild_id),
            "parent_id": parent["id"],
            "owner_id": str((owner or self.alice).id),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "total_message_sent": 0,
            "member_count": 1,
            "flags": 0,
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "archive_timestamp": now,
                                "locked": False, "create_timestamp": now},
        }
        await self.dispatch("THREAD_CREATE", {**copy.deepcopy(self.channels[tid]), "newly_created": True},
                            intents=INTENT_GUILDS)
        return tid

    def _guild_channels(self) -> List[Dict[str, Any]]:
        """The guild's channels, threads not included (Discord lists those apart)."""
        return [c for c in self.channels.values()
                if c.get("guild_id") == str(self.guild_id) and c.get("type") not in THREAD_TYPES]

    def dm_channel_id(self, user: User) -> int:
        """The DM channel between ``user`` and the bot (created on first use)."""
        cid = self._dm_channels.get(user.id)
        if cid is None:
            cid = self._snowflake()
            self._dm_channels[user.id] = cid
            self.channels[cid] = {
                "id": str(cid),
                "type": 1,
                "recipients": [user.to_json()],
                "last_message_id": None,
                "flags": 0,
            }
        return cid

    async def deny_bot(self, channel_id: int, permissions: discord.Permissions) -> None:
        """Take ``permissions`` from the bot in a channel while it runs (a member overwrite, announced
        with CHANNEL_UPDATE like Discord); the stand-in then refuses what they guard (403, 50013)."""
        channel = self.channels[channel_id]
        assert channel.get("type") not in THREAD_TYPES, "a thread's permissions are its parent channel's"
        channel["permission_overwrites"] = [o for o in channel.get("permission_overwrites", [])
                                            if int(o["id"]) != self.bot_user.id] + [
            {"id": str(self.bot_user.id), "type": 1, "allow": "0", "deny": str(permissions.value)}]
        await self.dispatch("CHANNEL_UPDATE", copy.deepcopy(channel))

    async def delete_channel(self, channel_id: int) -> None:
        """Delete a guild channel (CHANNEL_DELETE); its messages and threads go with it, requests there get 404
        (10003)."""
        channel = self.channels.pop(channel_id)
        for tid in [tid for tid, c in self.channels.items() if c.get("parent_id") == str(channel_id)]:
            del self.channels[tid]  # Discord sends no THREAD_DELETE for them: clients drop a channel's threads
        for mid in [mid for mid, msg in self.messages.items() if msg["channel_id"] == str(channel_id)]:
            del self.messages[mid]
        await self.dispatch("CHANNEL_DELETE", channel)

    def refuse_dms(self, user: User) -> None:
        """``user`` accepts no direct messages from the bot: sending there gets 403 (50007), as when
        a member turned off DMs from server members."""
        self._dms_refused.add(user.id)

    def make_user(
        self,
        username: Optional[str] = None,
        *,
        global_name: Optional[str] = None,
        moderator: bool = False,
        bot: bool = False,
        roles: Iterable[int] = (),
        nick: Optional[str] = None,
        is_member: bool = True,
        locale: str = "en-US",
    ) -> User:
        """Create a distinct user (a guild member unless ``is_member=False``).

        Users made before the bot connects are in GUILD_CREATE; later ones become known to
        the bot's cache when they send something (their message carries the member data).
        """
        n = next(self._user_counter)
        name = username or f"user{n}"
        role_ids = list(roles)
        if moderator:
            role_ids.append(self.moderator_role_id)
        user = User(
            self._snowflake(),
            name,
            global_name=global_name or name.capitalize(),
            bot=bot,
            roles=role_ids,
            nick=nick,
            is_member=is_member,
            locale=locale,
        )
        self.users[user.id] = user
        return user

    @property
    def guild_filesize_limit(self) -> int:
        return _TIER_FILESIZE.get(self.premium_tier, _TIER_FILESIZE[0])

    @property
    def interaction_filesize_limit(self) -> int:
        return self.attachment_size_limit if self.attachment_size_limit is not None else self.guild_filesize_limit

    def permissions_for(self, user: User) -> int:
        """Guild-level permission bits of ``user`` (no channel overwrites are modelled)."""
        if user.id == self.owner.id:
            return discord.Permissions.all().value
        value = int(self.roles[self.guild_id]["permissions"])
        for rid in user.roles:
            role = self.roles.get(rid)
            if role is not None:
                value |= int(role["permissions"])
        if value & discord.Permissions(administrator=True).value:
            return discord.Permissions.all().value
        return value

    def channel_permissions(self, user: User, channel_id: int) -> int:
        """Permission bits of ``user`` in a channel: guild-level bits, then the channel's overwrites
        for @everyone, the user's roles and the user, in Discord's order (DMs: everything; a thread:
        its parent channel's)."""
        channel = self.channels[channel_id]
        if not channel.get("guild_id"):
            return discord.Permissions.all().value  # a DM: no overwrites take anything away
        if channel.get("type") in THREAD_TYPES:
            channel = self.channels[int(channel["parent_id"])]
        value = self.permissions_for(user)
        if value == discord.Permissions.all().value:  # owner or administrator: overwrites don't apply
            return value
        overwrites = {(int(o["type"]), int(o["id"])): o for o in channel.get("permission_overwrites", [])}
        everyone = overwrites.get((0, self.guild_id))
        roles = [o for (kind, oid), o in overwrites.items() if kind == 0 and oid in user.roles]
        member = overwrites.get((1, user.id))
        for layer in ([everyone] if everyone else [], roles, [member] if member else []):
            deny = allow = 0
            for o in layer:
                deny |= int(o["deny"])
                allow |= int(o["allow"])
            value = (value & ~deny) | allow
        return value

    def member_json(self, user: User, *, with_user: bool = True, permissions: bool = False) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "roles": [str(r) for r in user.roles],
            "joined_at": user.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "nick": user.nick,
            "avatar": None,
            "banner": None,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = user.to_json()
        if permissions:
            data["permissions"] = str(self.permissions_for(user))
        return data

    def guild_json(self) -> Dict[str, Any]:
        members = [u for u in self.users.values() if u.is_member]
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": list(self.roles.values()),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": {0: 0, 1: 2, 2: 7, 3: 14}.get(self.premium_tier, 0),
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "nsfw": False,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "joined_at": self.bot_user.joined_at,
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(members),
            "members": [self.member_json(u) for u in members],
            "channels": self._guild_channels(),
            "threads": [c for c in self.channels.values() if c.get("type") in THREAD_TYPES],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "incidents_data": None,
        }

    def application_json(self) -> Dict[str, Any]:
        return {
            "id": str(self.application_id),
            "name": self.bot_user.global_name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": (1 << 13) | (1 << 15) | (1 << 19),  # *_LIMITED privileged intents
            "owner": self.owner.to_json(),
            "team": None,
            "bot": self.bot_user.to_json(),
            "rpc_origins": [],
            "redirect_uris": [],
            "tags": [],
            "interactions_endpoint_url": None,
            "install_params": None,
            "approximate_guild_count": 1,
        }

    # ----------------------------------------------------------------------------------------
    # recording and waiting
    # ----------------------------------------------------------------------------------------

    def mark(self) -> int:
        """Cursor into :attr:`events`; pass as ``since=`` to only match later events."""
        return len(self.events)

    def _record(self, kind: str, via: str, **kwargs: Any) -> Event:
        msg = kwargs.get("message")
        if msg is not None:
            kwargs["message"] = copy.deepcopy(msg)
        event = Event(index=len(self.events), kind=kind, via=via, **kwargs)
        self.events.append(event)
        log.debug("recorded %s", event.summary())
        for w in list(self._waiters):
            if w.future.done():
                self._waiters.remove(w)
                continue
            try:
                ok = self._matches(w.predicate, w.kind, w.since, event)
            except Exception as exc:  # a broken predicate should fail the waiting test
                w.future.set_exception(exc)
                self._waiters.remove(w)
                continue
            if ok:
                w.future.set_result(event)
                self._waiters.remove(w)
        return event

    @staticmethod
    def _matches(predicate: Optional[Callable[[Event], bool]], kind: Optional[str], since: int, event: Event) -> bool:
        if event.index < since:
            return False
        if kind is not None and event.kind != kind:
            return False
        return predicate is None or bool(predicate(event))

    def find(self, predicate: Optional[Callable[[Event], bool]] = None, *, kind: Optional[str] = None, since: int = 0) -> List[Event]:
        """All recorded events matching (no waiting)."""
        return [e for e in self.events[since:] if self._matches(predicate, kind, since, e)]

    async def wait_for(
        self,
        predicate: Optional[Callable[[Event], bool]] = None,
        *,
        kind: Optional[str] = None,
        since: int = 0,
        timeout: float = 5.0,
    ) -> Event:
        """The first event at index >= ``since`` matching ``kind`` and ``predicate``, waiting up to
        ``timeout`` seconds for it. Raises :class:`StandinTimeout` (an AssertionError) listing
        what was recorded otherwise."""
        for event in self.events[since:]:
            if self._matches(predicate, kind, since, event):
                return event
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        waiter = _Waiter(predicate, kind, since, future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise StandinTimeout(
                f"no {kind or 'any'} event matching {predicate!r} within {timeout}s (since #{since}).\n"
                + self.describe()
            ) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def response_to(
        self,
        interaction: Union[int, str, Dict[str, Any], InteractionRecord],
        predicate: Optional[Callable[[Event], bool]] = None,
        *,
        kind: Optional[str] = "interaction_response",
        timeout: float = 5.0,
    ) -> Event:
        """The first event of ``kind`` that answers ``interaction`` (what ``send_interaction``,
        ``click_button``, ``submit_modal``… returned, or its id), waiting like :meth:`wait_for`: its
        callback by default, its first message (callback or follow-up) with ``kind="message"``.
        Waiting for *this* interaction's answer, never "the next one", keeps a test right when an
        earlier interaction's answer arrives late."""
        iid = self._interaction_record(interaction).id
        return await self.wait_for(lambda e: e.interaction_id == iid and (predicate is None or bool(predicate(e))),
                                   kind=kind, timeout=timeout)

    async def assert_nothing(
        self,
        predicate: Optional[Callable[[Event], bool]] = None,
        *,
        kind: Optional[str] = None,
        since: int = 0,
        within: float = 0.3,
    ) -> None:
        """Fail if a matching event is (or gets, within ``within`` seconds) recorded."""
        try:
            event = await self.wait_for(predicate, kind=kind, since=since, timeout=within)
        except StandinTimeout:
            return
        raise AssertionError(f"unexpected event: {event.summary()}\n" + self.describe())

    async def wait_quiet(self, quiet: float = 0.1, timeout: float = 5.0) -> None:
        """Return once no HTTP request has arrived for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            idle = time.monotonic() - self._last_activity
            if idle >= quiet:
                return
            if time.monotonic() >= deadline:
                raise StandinTimeout(f"bot still busy after {timeout}s\n" + self.describe())
            await asyncio.sleep(quiet - idle)

    def describe(self, last: int = 20) -> str:
        lines = ["recorded events:"] + ["  " + e.summary() for e in self.events[-last:]]
        if self.unhandled:
            lines.append("unhandled requests: " + ", ".join(str(r) for r in self.unhandled))
        if self.internal_errors:
            lines.append("stand-in errors: " + " | ".join(self.internal_errors))
        return "\n".join(lines)

    @property
    def sent(self) -> List[Event]:
        """``message`` events: every message the bot posted (channel, interaction, follow-up)."""
        return [e for e in self.events if e.kind == "message"]

    @property
    def edits(self) -> List[Event]:
        return [e for e in self.events if e.kind == "edit"]

    @property
    def interaction_responses(self) -> List[Event]:
        return [e for e in self.events if e.kind == "interaction_response"]

    @property
    def request_paths(self) -> List[str]:
        """``"METHOD /path"`` for every HTTP request received (gateway/CDN included)."""
        return [str(r) for r in self.requests]

    def get_message(self, message_id: Union[int, str]) -> Dict[str, Any]:
        """Current stored state of a message (deep copy)."""
        return copy.deepcopy(self.messages[int(message_id)])

    def channel_messages(self, channel_id: Optional[int] = None) -> List[Dict[str, Any]]:
        cid = channel_id or self.channel_id
        return [copy.deepcopy(m) for m in self.messages.values() if int(m["channel_id"]) == cid]

    def attachment_bytes(self, attachment: Dict[str, Any]) -> bytes:
        """Bytes behind an attachment dict (as found in stored messages)."""
        return self._cdn[urllib.parse.urlsplit(attachment["url"]).path][0]

    def original_response(self, interaction: Union[int, Dict[str, Any], InteractionRecord]) -> Optional[Dict[str, Any]]:
        rec = self._interaction_record(interaction)
        if rec.original_message_id is None or rec.original_message_id not in self.messages:
            return None
        return self.get_message(rec.original_message_id)

    def _interaction_record(self, interaction: Union[int, str, Dict[str, Any], InteractionRecord]) -> InteractionRecord:
        if isinstance(interaction, InteractionRecord):
            return interaction
        if isinstance(interaction, dict):
            return self.interactions[int(interaction["id"])]
        return self.interactions[int(interaction)]

    # ----------------------------------------------------------------------------------------
    # test controls: hosted files, injected faults
    # ----------------------------------------------------------------------------------------

    def host_file(
        self,
        name: str,
        data: bytes = b"",
        content_type: str = "application/octet-stream",
        *,
        status: int = 200,
        headers: Optional[Dict[str, str]] = None,
        delay: float = 0.0,
    ) -> str:
        """Serve ``data`` at ``/files/{name}``; returns the URL. ``status``/``headers`` allow
        redirects (``status=302, headers={"Location": url}``) and errors; ``delay`` sleeps
        before answering. Hits are counted in :attr:`hits` under ``/files/{name}``."""
        self._hosted[name] = _HostedFile(bytes(data), content_type, status, dict(headers or {}), delay)
        return self.file_url(name)

    def file_url(self, name: str) -> str:
        return f"{self.base_url}/files/{urllib.parse.quote(name)}"

    def hits_for(self, url: str) -> int:
        """How many times ``url`` (a CDN or hosted-file URL of this server) was fetched."""
        return self.hits[urllib.parse.unquote(urllib.parse.urlsplit(url).path)]

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int = 500,
        code: int = 0,
        message: str = "injected failure",
        times: int = 1,
        body: Optional[Dict[str, Any]] = None,
        reset: bool = False,
    ) -> None:
        """Answer the next ``times`` requests whose method matches (``"*"`` = any) and whose path
        (e.g. ``/api/v10/channels/123/messages``) matches ``path_regex`` with an error — or, with
        ``reset``, not at all: the connection is reset (TCP RST) once the request is read, which
        the client sees as ``aiohttp.ClientOSError`` errno 104 (not a ``discord.HTTPException``).

        Note: discord.py retries 500/502/504 up to 5 times with 1, 3, 5, 7 s sleeps; use
        e.g. 403/404/400 (or 429 with ``body={"retry_after": 0.01, ...}``) for fast tests."""
        self._faults.append(_Fault(method.upper(), re.compile(path_regex), status,
                                   body or {"message": message, "code": code}, times, reset))

    # ----------------------------------------------------------------------------------------
    # gateway
    # ----------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return any(c.identified and not c.ws.closed for c in self._conns)

    async def dispatch(
        self,
        event: str,
        data: Dict[str, Any],
        *,
        intents: int = 0,
        transform: Optional[Callable[[_GatewayConn, Dict[str, Any]], Dict[str, Any]]] = None,
    ) -> None:
        """Send a DISPATCH ``event`` to every identified gateway connection (whose intents
        include any of ``intents``, if given)."""
        for conn in list(self._conns):
            if not conn.identified or conn.ws.closed:
                continue
            if intents and not (conn.intents & intents):
                continue
            await conn.send(0, transform(conn, data) if transform else data, event)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py reconnects to ``resume_gateway_url`` and RESUMEs."""
        for conn in list(self._conns):
            if conn.identified:
                await conn.send(7, None)

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = _GatewayConn(ws)
        self._conns.append(conn)
        await conn.send(10, {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["stand-in"]})
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    try:
                        await self._gateway_op(conn, json.loads(msg.data))
                    except Exception as exc:
                        log.exception("gateway op failed")
                        self.internal_errors.append(f"gateway: {exc!r}")
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    break
        finally:
            if conn in self._conns:
                self._conns.remove(conn)
            if conn.session_id and conn.session_id in self._sessions:
                self._sessions[conn.session_id]["seq"] = conn.seq
        return ws

    async def _gateway_op(self, conn: _GatewayConn, frame: Dict[str, Any]) -> None:
        op, d = frame.get("op"), frame.get("d")
        if op == 1:  # heartbeat
            await conn.send(11)
        elif op == 2:  # identify
            conn.intents = int(d.get("intents") or 0)
            conn.shard = d.get("shard")
            conn.session_id = secrets.token_hex(16)
            self._sessions[conn.session_id] = {"intents": conn.intents, "shard": conn.shard, "seq": 0}
            self._record("gateway", "identify", payload=d)
            ready = {
                "v": 10,
                "user": {**self.bot_user.to_json(), "verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"},
                "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                "session_id": conn.session_id,
                "session_type": "normal",
                "resume_gateway_url": self.gateway_url,
                "application": {"id": str(self.application_id), "flags": self.application_json()["flags"]},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": [],
                "user_settings": {},
                "auth_session_id_hash": secrets.token_hex(8),
                "_trace": ["stand-in"],
            }
            if conn.shard is not None:
                ready["shard"] = conn.shard
            conn.identified = True
            await conn.send(0, ready, "READY")
            if conn.intents & INTENT_GUILDS:
                await conn.send(0, self.guild_json(), "GUILD_CREATE")
        elif op == 6:  # resume
            session = self._sessions.get(d.get("session_id"))
            self._record("gateway", "resume", payload=d)
            if session is None:
                await conn.send(9, False)
                return
            conn.session_id = d["session_id"]
            conn.intents = session["intents"]
            conn.shard = session["shard"]
            conn.seq = max(int(d.get("seq") or 0), session["seq"])
            conn.identified = True
            await conn.send(0, {"_trace": ["stand-in"]}, "RESUMED")
        elif op == 3:  # presence update
            self.presence = d
            self._record("gateway", "presence", payload=d)
        elif op == 8:  # request guild members
            self._record("gateway", "request_members", payload=d)
            members = [u for u in self.users.values() if u.is_member]
            user_ids = d.get("user_ids")
            if user_ids is not None:
                wanted = {int(x) for x in (user_ids if isinstance(user_ids, list) else [user_ids])}
                members = [u for u in members if u.id in wanted]
            elif d.get("query"):
                q = d["query"].lower()
                members = [u for u in members if u.username.lower().startswith(q)]
            if d.get("limit"):
                members = members[: int(d["limit"])]
            chunk = {
                "guild_id": str(self.guild_id),
                "members": [self.member_json(u) for u in members],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if d.get("nonce") is not None:
                chunk["nonce"] = d["nonce"]
            await conn.send(0, chunk, "GUILD_MEMBERS_CHUNK")
        elif op == 4:  # voice state update: not modelled
            pass
        else:
            log.warning("stand-in gateway: unknown op %r", op)

    def _message_create_payload(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        data = copy.deepcopy(msg)
        channel = self.channels.get(int(msg["channel_id"]), {})
        if channel.get("guild_id"):
            data["guild_id"] = channel["guild_id"]
            author = self.users.get(int(msg["author"]["id"]))
            if author is not None and author.is_member and not msg.get("webhook_id"):
                data["member"] = self.member_json(author, with_user=False)
            mentions = []
            for m in data.get("mentions", []):
                u = self.users.get(int(m["id"]))
                if u is not None and u.is_member:
                    m = {**m, "member": self.member_json(u, with_user=False)}
                mentions.append(m)
            data["mentions"] = mentions
        return data

    def _content_filter(self, conn: _GatewayConn, data: Dict[str, Any]) -> Dict[str, Any]:
        # Discord strips message content for bots without the MESSAGE_CONTENT intent, except
        # for their own messages, DMs and messages that mention them.
        if conn.intents & INTENT_MESSAGE_CONTENT or "guild_id" not in data:
            return data
        if str(data.get("author", {}).get("id")) == str(self.bot_user.id):
            return data
        if any(str(m.get("id")) == str(self.bot_user.id) for m in data.get("mentions", [])):
            return data
        stripped = dict(data)
        stripped.update(content="", embeds=[], attachments=[], components=[])
        stripped.pop("poll", None)
        return stripped

    async def _dispatch_message(self, event: str, msg: Dict[str, Any]) -> None:
        data = self._message_create_payload(msg)
        channel = self.channels.get(int(msg["channel_id"]), {})
        intents = INTENT_GUILD_MESSAGES if channel.get("guild_id") else INTENT_DIRECT_MESSAGES
        await self.dispatch(event, data, intents=intents, transform=self._content_filter)

    async def _echo(self, event: str, msg: Dict[str, Any]) -> None:
        if not self.echo_bot_messages or int(msg.get("flags") or 0) & FLAG_EPHEMERAL:
            return
        if event == "MESSAGE_DELETE":
            data: Dict[str, Any] = {"id": msg["id"], "channel_id": msg["channel_id"]}
            if self.channels.get(int(msg["channel_id"]), {}).get("guild_id"):
                data["guild_id"] = str(self.guild_id)
            intents = INTENT_GUILD_MESSAGES if "guild_id" in data else INTENT_DIRECT_MESSAGES
            await self.dispatch(event, data, intents=intents)
        else:
            await self._dispatch_message(event, msg)

    # ----------------------------------------------------------------------------------------
    # driving the bot as users
    # ----------------------------------------------------------------------------------------

    def _mentions_in(self, content: str) -> List[Dict[str, Any]]:
        found = []
        for m in re.finditer(r"<@!?(\d+)>", content or ""):
            u = self.users.get(int(m.group(1)))
            if u is not None and all(f["id"] != str(u.id) for f in found):
                found.append(u.to_json())
        return found

    def _store_cdn(self, folder: str, owner_id: int, att_id: int, up: Upload) -> Tuple[str, str]:
        path = f"/cdn/{folder}/{owner_id}/{att_id}/{up.filename}"
        ctype = up.content_type or _guess_content_type(up.filename) or "application/octet-stream"
        self._cdn[path] = (up.data, ctype)
        self._cdn["/media" + path[len("/cdn") :]] = (up.data, ctype)
        now = int(time.time())
        query = f"?ex={now + 86400:x}&is={now:x}&hm={secrets.token_hex(32)}&"
        quoted = urllib.parse.quote(path)
        return self.base_url + quoted + query, self.base_url + "/media" + quoted[len("/cdn") :] + query

    def _attachment_json(self, folder: str, owner_id: int, up: Upload, *, ephemeral: bool = False) -> Dict[str, Any]:
        att_id = self._snowflake()
        url, proxy_url = self._store_cdn(folder, owner_id, att_id, up)
        ctype = up.content_type or _guess_content_type(up.filename)
        att: Dict[str, Any] = {
            "id": str(att_id),
            "filename": up.filename,
            "size": up.size if up.size is not None else len(up.data),
            "url": url,
            "proxy_url": proxy_url,
            "content_type": ctype,
            "flags": 0,
        }
        dims = (up.width, up.height) if up.width and up.height else _image_size(up.data, ctype)
        if dims:
            att["width"], att["height"] = dims
        if up.description is not None:
            att["description"] = up.description
        if ephemeral:
            att["ephemeral"] = True
        if ctype is None:
            del att["content_type"]
        return att

    def _new_message(
        self,
        *,
        channel_id: int,
        author: User,
        content: str = "",
        attachments: Sequence[Dict[str, Any]] = (),
        embeds: Sequence[Dict[str, Any]] = (),
        components: Sequence[Dict[str, Any]] = (),
        flags: int = 0,
        reference: Optional[Dict[str, Any]] = None,
        msg_type: Optional[int] = None,
        tts: bool = False,
        nonce: Any = None,
        extra: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        mid = self._snowflake()
        msg: Dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "type": msg_type if msg_type is not None else (19 if reference else 0),
            "content": content or "",
            "author": author.to_json(),
            "attachments": list(attachments),
            "embeds": list(embeds),
            "components": list(components),
            "mentions": self._mentions_in(content),
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": tts,
            "timestamp": _iso_now(),
            "edited_timestamp": None,
            "flags": flags,
        }
        if nonce is not None:
            msg["nonce"] = nonce
        if reference is not None:
            ref_id = int(reference["message_id"])
            msg["message_reference"] = {
                "type": reference.get("type", 0),
                "message_id": str(ref_id),
                "channel_id": str(reference.get("channel_id") or channel_id),
            }
            if self.channels.get(channel_id, {}).get("guild_id"):
                msg["message_reference"]["guild_id"] = str(self.guild_id)
            referenced = self.messages.get(ref_id)
            if referenced is not None:
                resolved = copy.deepcopy(referenced)
                resolved.pop("referenced_message", None)
                msg["referenced_message"] = resolved
                if referenced["author"]["id"] not in [m["id"] for m in msg["mentions"]]:
                    msg["mentions"].append(copy.deepcopy(referenced["author"]))
            else:
                msg["referenced_message"] = None
        if extra:
            msg.update(extra)
        self.messages[mid] = msg
        channel = self.channels.get(channel_id)
        if channel is not None:
            channel["last_message_id"] = str(mid)
            if channel.get("type") in THREAD_TYPES:
                channel["message_count"] += 1
                channel["total_message_sent"] += 1
        return msg

    async def send_message(
        self,
        author: User,
        content: str = "",
        attachments: Sequence[UploadLike] = (),
        *,
        reference: Union[None, int, str, Dict[str, Any]] = None,
        channel_id: Optional[int] = None,
        dm: bool = False,
        embeds: Sequence[Dict[str, Any]] = (),
    ) -> Dict[str, Any]:
        """Post a message as ``author`` (in the guild channel, ``channel_id``, or the author's DM
        with the bot if ``dm``) and dispatch MESSAGE_CREATE. Attachment bytes are served from
        the stand-in CDN. ``reference`` (a message id or dict) makes it a reply. Returns the
        stored message dict."""
        cid = self.dm_channel_id(author) if dm else (channel_id or self.channel_id)
        atts = [self._attachment_json("attachments", cid, _as_upload(a)) for a in attachments]
        ref = None
        if reference is not None:
            ref_id = int(reference["id"]) if isinstance(reference, dict) else int(reference)
            ref = {"type": 0, "message_id": ref_id, "channel_id": cid}
        msg = self._new_message(channel_id=cid, author=author, content=content, attachments=atts, embeds=embeds, reference=ref)
        await self._dispatch_message("MESSAGE_CREATE", msg)
        return copy.deepcopy(msg)

    async def edit_message(self, message_id: Union[int, str], content: str) -> Dict[str, Any]:
        """Edit a user's message (server side) and dispatch MESSAGE_UPDATE."""
        msg = self.messages[int(message_id)]
        msg["content"] = content
        msg["mentions"] = self._mentions_in(content)
        msg["edited_timestamp"] = _iso_now()
        await self._dispatch_message("MESSAGE_UPDATE", msg)
        return copy.deepcopy(msg)

    async def delete_message(self, message_id: Union[int, str]) -> None:
        """Delete any message (as its author or a moderator would) and dispatch MESSAGE_DELETE."""
        msg = self.messages.pop(int(message_id))
        data: Dict[str, Any] = {"id": msg["id"], "channel_id": msg["channel_id"]}
        guild = bool(self.channels.get(int(msg["channel_id"]), {}).get("guild_id"))
        if guild:
            data["guild_id"] = str(self.guild_id)
        await self.dispatch("MESSAGE_DELETE", data, intents=INTENT_GUILD_MESSAGES if guild else INTENT_DIRECT_MESSAGES)

    async def add_reaction(self, user: User, message_id: Union[int, str], emoji: str) -> None:
        """``user`` reacts to a message with a unicode ``emoji``: dispatch MESSAGE_REACTION_ADD."""
        msg = self.messages[int(message_id)]
        guild = bool(self.channels.get(int(msg["channel_id"]), {}).get("guild_id"))
        data: Dict[str, Any] = {
            "user_id": str(user.id),
            "channel_id": msg["channel_id"],
            "message_id": msg["id"],
            "message_author_id": msg["author"]["id"],
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "burst_colors": [],
            "type": 0,
        }
        if guild:
            data["guild_id"] = str(self.guild_id)
            data["member"] = self.member_json(user)
        await self.dispatch(
            "MESSAGE_REACTION_ADD",
            data,
            intents=INTENT_GUILD_MESSAGE_REACTIONS if guild else INTENT_DIRECT_MESSAGE_REACTIONS,
        )

    def _command_id(self, name: str, command_type: int, guild_id: Optional[int]) -> int:
        registered = self.guild_commands.get(guild_id, []) if guild_id else self.global_commands
        for cmd in registered:
            if cmd["name"] == name and int(cmd.get("type", 1)) == command_type:
                return int(cmd["id"])
        return self._snowflake()

    def _build_options(self, options: Any, resolved: Dict[str, Dict[str, Any]], channel_id: int) -> List[Dict[str, Any]]:
        if options is None:
            return []
        if isinstance(options, list):
            return copy.deepcopy(options)
        out = []
        for name, value in options.items():
            if isinstance(value, dict) and "type" in value:
                out.append({"name": name, **value})
            elif isinstance(value, bool):
                out.append({"name": name, "type": 5, "value": value})
            elif isinstance(value, int):
                out.append({"name": name, "type": 4, "value": value})
            elif isinstance(value, float):
                out.append({"name": name, "type": 10, "value": value})
            elif isinstance(value, str):
                out.append({"name": name, "type": 3, "value": value})
            elif isinstance(value, (Upload, tuple)):
                att = self._attachment_json("ephemeral-attachments", self.application_id, _as_upload(value), ephemeral=True)
                resolved.setdefault("attachments", {})[att["id"]] = att
                out.append({"name": name, "type": 11, "value": att["id"]})
            elif isinstance(value, User):
                resolved.setdefault("users", {})[str(value.id)] = value.to_json()
                if value.is_member:
                    resolved.setdefault("members", {})[str(value.id)] = self.member_json(value, with_user=False, permissions=True)
                out.append({"name": name, "type": 6, "value": str(value.id)})
            else:
                raise TypeError(f"can't infer an option type for {name}={value!r}; pass a raw option dict")
        return out

    def _base_interaction(self, author: User, itype: int, channel_id: int, data: Dict[str, Any], dm: bool) -> Dict[str, Any]:
        iid = self._snowflake()
        payload: Dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "channel_id": str(channel_id),
            "channel": copy.deepcopy(self.channels[channel_id]),
            "token": f"itok-{iid}-{secrets.token_urlsafe(24)}",
            "version": 1,
            "locale": author.locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.interaction_filesize_limit,
        }
        if dm:
            payload["user"] = author.to_json()
            payload["context"] = 1
            payload["authorizing_integration_owners"] = {"0": str(self.guild_id)}
            payload["app_permissions"] = str(discord.Permissions(
                view_channel=True, send_messages=True, attach_files=True, embed_links=True, read_message_history=True
            ).value)
        else:
            payload["guild_id"] = str(self.guild_id)
            payload["guild"] = {"id": str(self.guild_id), "locale": "en-US", "features": []}
            payload["guild_locale"] = "en-US"
            payload["member"] = self.member_json(author, permissions=True)
            payload["context"] = 0
            payload["authorizing_integration_owners"] = {"0": str(self.guild_id)}
            payload["app_permissions"] = str(self.channel_permissions(self.bot_user, channel_id))
        return payload

    def _register_interaction(self, payload: Dict[str, Any], author: User, *, command_name: Optional[str] = None, source: Optional[int] = None) -> InteractionRecord:
        rec = InteractionRecord(
            id=int(payload["id"]),
            token=payload["token"],
            type=payload["type"],
            payload=payload,
            channel_id=int(payload["channel_id"]),
            author=author,
            created=time.monotonic(),
            command_name=command_name,
            source_message_id=source,
        )
        self.interactions[rec.id] = rec
        self._interactions_by_token[rec.token] = rec
        return rec

    async def send_interaction(
        self,
        author: User,
        command_name: str,
        options: Union[None, Dict[str, Any], List[Dict[str, Any]]] = None,
        *,
        resolved: Optional[Dict[str, Dict[str, Any]]] = None,
        channel_id: Optional[int] = None,
        dm: bool = False,
        command_type: int = 1,
        command_guild_id: Optional[int] = None,
        target_id: Optional[int] = None,
        autocomplete: bool = False,
    ) -> Dict[str, Any]:
        """Dispatch an APPLICATION_COMMAND interaction (type 2; type 4 if ``autocomplete``).

        ``command_name`` may name a subcommand: ``"group sub"`` or ``"group subgroup sub"`` (slash commands
        only: a user or message command's name is taken whole, spaces and all).
        ``options`` is either a raw list of option dicts, or a dict ``{name: value}`` whose
        types are inferred: str (3), int (4), bool (5), float (10), :class:`User` (6, with
        resolved user+member) and :class:`Upload`/``(filename, bytes[, content_type])`` (11, an
        attachment served from the CDN, put in ``data.resolved.attachments``). ``resolved`` is
        merged into ``data.resolved``. Set ``command_guild_id`` for guild-registered commands.
        Returns the interaction payload (``id``, ``token``...)."""
        cid = self.dm_channel_id(author) if dm else (channel_id or self.channel_id)
        parts = command_name.split() if command_type == 1 else [command_name]  # menu names may hold spaces
        res: Dict[str, Dict[str, Any]] = copy.deepcopy(resolved) if resolved else {}
        opts = self._build_options(options, res, cid)
        for depth, sub in enumerate(reversed(parts[1:])):
            opts = [{"name": sub, "type": 1 if depth == 0 else 2, "options": opts}]
        data: Dict[str, Any] = {
            "id": str(self._command_id(parts[0], command_type, command_guild_id)),
            "name": parts[0],
            "type": command_type,
        }
        if opts:
            data["options"] = opts
        if res:
            data["resolved"] = res
        if command_guild_id:
            data["guild_id"] = str(command_guild_id)
        if target_id is not None:
            data["target_id"] = str(target_id)
        payload = self._base_interaction(author, 4 if autocomplete else 2, cid, data, dm)
        self._register_interaction(payload, author, command_name=command_name)
        await self.dispatch("INTERACTION_CREATE", payload)
        return copy.deepcopy(payload)

    async def use_message_command(self, author: User, name: str, message_id: Union[int, str]) -> Dict[str, Any]:
        """Use the message context menu ``name`` (Apps → name) on a stored message: an APPLICATION_COMMAND
        interaction of command type 3 whose ``data`` has ``target_id`` and the message in
        ``resolved.messages``, as Discord sends it. Returns the interaction payload."""
        msg = self.messages.get(int(message_id))
        if msg is None:
            raise LookupError(f"unknown message {message_id}")
        cid = int(msg["channel_id"])
        dm = not self.channels.get(cid, {}).get("guild_id")
        return await self.send_interaction(author, name, resolved={"messages": {str(msg["id"]): copy.deepcopy(msg)}},
                                           channel_id=None if dm else cid, dm=dm, command_type=3,
                                           target_id=int(msg["id"]))

    @staticmethod
    def _walk_components(components: Iterable[Dict[str, Any]]) -> Iterable[Dict[str, Any]]:
        for comp in components or []:
            yield comp
            yield from FakeDiscord._walk_components(comp.get("components") or [])
            for key in ("accessory", "component"):
                if isinstance(comp.get(key), dict):
                    yield from FakeDiscord._walk_components([comp[key]])

    def find_component(
        self,
        message_id: Union[int, str],
        custom_id: Optional[str] = None,
        *,
        label: Optional[str] = None,
        types: Sequence[int] = (2,),
    ) -> Dict[str, Any]:
        """A component on a stored message by ``custom_id`` or ``label`` (or the only one of ``types``)."""
        msg = self.messages.get(int(message_id))
        if msg is None:
            raise LookupError(f"unknown message {message_id}")
        candidates = [c for c in self._walk_components(msg.get("components", [])) if c.get("type") in types]
        if custom_id is not None:
            candidates = [c for c in candidates if c.get("custom_id") == custom_id]
        if label is not None:
            candidates = [c for c in candidates if c.get("label") == label]
        if len(candidates) != 1:
            available = [(c.get("type"), c.get("label"), c.get("custom_id")) for c in self._walk_components(msg.get("components", []))]
            raise LookupError(f"{len(candidates)} components match custom_id={custom_id!r} label={label!r}; message has {available}")
        return candidates[0]

    async def _component_interaction(self, author: User, message_id: Union[int, str], data: Dict[str, Any]) -> Dict[str, Any]:
        msg = self.messages[int(message_id)]
        cid = int(msg["channel_id"])
        dm = not self.channels.get(cid, {}).get("guild_id")
        payload = self._base_interaction(author, 3, cid, data, dm)
        payload["message"] = copy.deepcopy(msg)
        self._register_interaction(payload, author, source=int(msg["id"]))
        await self.dispatch("INTERACTION_CREATE", payload)
        return copy.deepcopy(payload)

    async def click_button(
        self,
        author: User,
        message_id: Union[int, str],
        custom_id: Optional[str] = None,
        *,
        label: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Click a button on a stored message (found by ``custom_id``, ``label``, or as the only
        button): dispatch a MESSAGE_COMPONENT interaction (type 3). Raises LookupError if the
        button isn't there and ValueError if it is disabled. Returns the interaction payload."""
        comp = self.find_component(message_id, custom_id, label=label, types=(2,))
        if comp.get("disabled"):
            raise ValueError(f"button {comp.get('label')!r} ({comp.get('custom_id')}) is disabled")
        if "custom_id" not in comp:
            raise ValueError("link/premium buttons don't send interactions")
        return await self._component_interaction(author, message_id, {"custom_id": comp["custom_id"], "component_type": 2})

    async def select(
        self,
        author: User,
        message_id: Union[int, str],
        values: Sequence[str],
        *,
        custom_id: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Choose ``values`` in a string select menu (type 3) on a stored message."""
        comp = self.find_component(message_id, custom_id, types=(3,))
        return await self._component_interaction(
            author, message_id, {"custom_id": comp["custom_id"], "component_type": 3, "values": list(values)}
        )

    async def submit_modal(
        self,
        author: User,
        values: Dict[str, Union[str, Sequence[str]]],
        *,
        interaction: Union[None, int, Dict[str, Any], InteractionRecord] = None,
    ) -> Dict[str, Any]:
        """Submit the modal the bot opened (callback type 9) for ``interaction`` (default: the
        latest one). ``values`` maps a field's custom_id or label to its value (str for text
        inputs, list of str for selects); unnamed text inputs are submitted empty."""
        if interaction is None:
            recs = [r for r in self.interactions.values() if r.modal is not None]
            if not recs:
                raise LookupError("the bot has not opened any modal")
            rec = recs[-1]
        else:
            rec = self._interaction_record(interaction)
        if rec.modal is None:
            raise LookupError(f"interaction {rec.id} did not open a modal")

        used = set()

        def fill(comp: Dict[str, Any], label: Optional[str] = None) -> Dict[str, Any]:
            ctype = comp.get("type")
            if ctype == 1:
                return {"type": 1, "components": [fill(c) for c in comp.get("components", [])]}
            if ctype == 18:
                return {"type": 18, "component": fill(comp["component"], comp.get("label"))}
            out: Dict[str, Any] = {"type": ctype}
            if "custom_id" in comp:
                out["custom_id"] = comp["custom_id"]
                value: Any = "" if ctype == 4 else []
                for key in (comp["custom_id"], comp.get("label"), label):
                    if key is not None and key in values:
                        value = values[key]
                        used.add(key)
                        break
                if ctype == 4:
                    out["value"] = value
                else:
                    out["values"] = [value] if isinstance(value, str) else list(value)
            return out

        data = {"custom_id": rec.modal["custom_id"], "components": [fill(c) for c in rec.modal.get("components", [])]}
        unknown = set(values) - used
        if unknown:
            raise LookupError(f"modal {rec.modal.get('title')!r} has no fields {sorted(unknown)}: {rec.modal['components']}")
        cid = rec.channel_id
        dm = not self.channels.get(cid, {}).get("guild_id")
        payload = self._base_interaction(author, 5, cid, data, dm)
        if rec.source_message_id is not None and rec.source_message_id in self.messages:
            payload["message"] = copy.deepcopy(self.messages[rec.source_message_id])
        self._register_interaction(payload, author, source=rec.source_message_id)
        await self.dispatch("INTERACTION_CREATE", payload)
        return copy.deepcopy(payload)

    # ----------------------------------------------------------------------------------------
    # HTTP plumbing
    # ----------------------------------------------------------------------------------------

    def _build_routes(self) -> List[Tuple[str, re.Pattern, Callable[..., Any]]]:
        S = r"(\d+)"
        T = r"([^/]+)"
        table = [
            ("GET", r"/users/@me", self._r_me),
            ("POST", r"/users/@me/channels", self._r_create_dm),
            ("GET", rf"/users/{S}", self._r_user),
            ("GET", r"/oauth2/applications/@me", self._r_application),
            ("GET", r"/applications/@me", self._r_application),
            ("GET", r"/gateway", self._r_gateway),
            ("GET", r"/gateway/bot", self._r_gateway_bot),
            ("GET", rf"/guilds/{S}", self._r_guild),
            ("GET", rf"/guilds/{S}/channels", self._r_guild_channels),
            ("GET", rf"/guilds/{S}/roles", self._r_guild_roles),
            ("GET", rf"/guilds/{S}/members/{S}", self._r_guild_member),
            ("GET", rf"/channels/{S}", self._r_channel),
            ("POST", rf"/channels/{S}/typing", self._r_typing),
            ("GET", rf"/channels/{S}/messages", self._r_history),
            ("POST", rf"/channels/{S}/messages", self._r_create_message),
            ("GET", rf"/channels/{S}/messages/{S}", self._r_get_message),
            ("PATCH", rf"/channels/{S}/messages/{S}", self._r_edit_message),
            ("DELETE", rf"/channels/{S}/messages/{S}", self._r_delete_message),
            ("PUT", rf"/channels/{S}/messages/{S}/reactions/{T}/@me", self._r_reaction),
            ("DELETE", rf"/channels/{S}/messages/{S}/reactions/{T}/@me", self._r_reaction),
            ("GET", rf"/applications/{S}/commands", self._r_get_commands),
            ("PUT", rf"/applications/{S}/commands", self._r_put_commands),
            ("POST", rf"/applications/{S}/commands", self._r_post_command),
            ("GET", rf"/applications/{S}/guilds/{S}/commands", self._r_get_commands),
            ("PUT", rf"/applications/{S}/guilds/{S}/commands", self._r_put_commands),
            ("POST", rf"/applications/{S}/guilds/{S}/commands", self._r_post_command),
            ("POST", rf"/interactions/{S}/{T}/callback", self._r_callback),
            ("POST", rf"/webhooks/{S}/{T}", self._r_followup),
            ("GET", rf"/webhooks/{S}/{T}/messages/(@original|\d+)", self._r_webhook_get),
            ("PATCH", rf"/webhooks/{S}/{T}/messages/(@original|\d+)", self._r_webhook_edit),
            ("DELETE", rf"/webhooks/{S}/{T}/messages/(@original|\d+)", self._r_webhook_delete),
        ]
        return [(m, re.compile(API_PREFIX + p + "$"), h) for m, p, h in table]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._last_activity = time.monotonic()
        path = request.path
        rec = RequestRecord(request.method, path, dict(request.query))
        self.requests.append(rec)
        try:
            if path == "/gateway" and request.method == "GET":
                return await self._gateway(request)

            for fault in self._faults:
                if fault.times > 0 and fault.method in ("*", request.method) and fault.pattern.search(path):
                    fault.times -= 1
                    await request.read()
                    if fault.reset:
                        return self._reset(request)
                    return _json_response(fault.body, status=fault.status)

            if request.method == "GET" and (path.startswith("/cdn/") or path.startswith("/media/")):
                return self._r_cdn(path)
            if request.method in ("GET", "HEAD") and path.startswith("/files/"):
                return await self._r_hosted(path)

            if path.startswith(API_PREFIX + "/"):
                needs_auth = not path.startswith((API_PREFIX + "/webhooks/", API_PREFIX + "/interactions/"))
                if needs_auth and not request.headers.get("Authorization", "").startswith("Bot "):
                    return _error(401, 0, "401: Unauthorized")
                for method, pattern, handler in self._routes:
                    if method != request.method:
                        continue
                    m = pattern.match(path)
                    if m:
                        return await handler(request, *m.groups())

            self.unhandled.append(rec)
            log.warning("stand-in: unhandled request %s %s", request.method, path)
            return _error(404, 0, f"404: Not Found (the stand-in does not implement {request.method} {path})")
        except Exception as exc:
            # A 400 rather than a 500: discord.py retries 5xx with multi-second sleeps.
            log.exception("stand-in handler failed for %s %s", request.method, path)
            self.internal_errors.append(f"{request.method} {path}: {exc!r}")
            return _error(400, 0, f"stand-in internal error: {exc!r}")

    @staticmethod
    def _reset(request: web.Request) -> web.StreamResponse:
        """Drop the connection with a TCP RST (SO_LINGER 0), as a flaky network or proxy does."""
        transport = request.transport
        assert transport is not None
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return web.Response(status=204)  # never sent: the connection is gone

    async def _read_body(self, request: web.Request) -> Tuple[Any, Dict[int, Upload]]:
        """JSON body, or multipart ``payload_json`` + ``files[n]`` (returns ``{n: Upload}``)."""
        if request.content_type.startswith("multipart/"):
            payload: Dict[str, Any] = {}
            files: Dict[int, Upload] = {}
            reader = await request.multipart()
            async for part in reader:
                name = part.name or ""
                if name == "payload_json":
                    payload.update(json.loads(await part.text()))
                    continue
                m = re.fullmatch(r"files\[(\d+)\]|file(\d*)", name)
                if m and part.filename is not None:
                    index = int(m.group(1) or m.group(2) or 0)
                    data = bytes(await part.read(decode=False))
                    files[index] = Upload(part.filename, data, part.headers.get("Content-Type"))
                else:
                    payload[name] = await part.text()
            return payload, files
        raw = await request.read()
        if not raw:
            return None, {}
        return json.loads(raw), {}

    def _resolve_new_attachments(self, payload: Dict[str, Any], files: Dict[int, Upload]) -> List[Tuple[Upload, Dict[str, Any]]]:
        """Pair uploaded files with their ``attachments`` entries (``id`` = file index)."""
        entries = payload.get("attachments")
        if entries is None:
            return [(files[i], {}) for i in sorted(files)]
        out = []
        for entry in entries:
            try:
                index = int(entry.get("id"))
            except (TypeError, ValueError):
                continue
            if index in files:
                out.append((files[index], entry))
        return out

    def _check_uploads(self, uploads: Sequence[Upload], limit: int) -> Optional[web.Response]:
        if not self.enforce_limits:
            return None
        if len(uploads) > MAX_ATTACHMENTS:
            return _form_error("attachments", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ATTACHMENTS} or fewer in length.")
        for up in uploads:
            if len(up.data) > limit:
                return _error(413, 40005, "Request entity too large")
        return None

    def _check_message(self, msg: Dict[str, Any]) -> Optional[web.Response]:
        if not self.enforce_limits:
            return None
        if len(msg.get("content") or "") > MAX_CONTENT:
            return _form_error("content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length.")
        if len(msg.get("embeds") or []) > MAX_EMBEDS:
            return _form_error("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
        if sum(len(discord.Embed.from_dict(e)) for e in msg.get("embeds") or []) > MAX_EMBED_TOTAL:
            return _form_error("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
        if len(msg.get("attachments") or []) > MAX_ATTACHMENTS:
            return _form_error("attachments", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ATTACHMENTS} or fewer in length.")
        empty = not (msg.get("content") or "").strip() and not any(
            msg.get(k) for k in ("embeds", "attachments", "components", "sticker_items", "poll")
        )
        if empty and not int(msg.get("flags") or 0) & FLAG_LOADING:
            return _error(400, 50006, "Cannot send an empty message")
        return None

    def _bot_message_from_payload(
        self,
        payload: Dict[str, Any],
        files: Dict[int, Upload],
        *,
        channel_id: int,
        limit: int,
        folder: str = "attachments",
        allowed_flags: int = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_COMPONENTS_V2,
        force_flags: int = 0,
        msg_type: Optional[int] = None,
        extra: Optional[Dict[str, Any]] = None,
    ) -> Tuple[Optional[Dict[str, Any]], List[Upload], Optional[web.Response]]:
        """Validate and store a message the bot creates. Returns (message, uploads, error)."""
        allowed = payload.get("allowed_mentions") or {}
        for kind in ("users", "roles"):
            if kind in allowed.get("parse", []) and allowed.get(kind):
                return None, [], _form_error("allowed_mentions", "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                                             f"parse:[\"{kind}\"] and {kind}: [ids...] are mutually exclusive.")
        pairs = self._resolve_new_attachments(payload, files)
        uploads = [up for up, _ in pairs]
        err = self._check_uploads(uploads, limit)
        if err is not None:
            return None, uploads, err
        flags = (int(payload.get("flags") or 0) & allowed_flags) | force_flags
        reference = payload.get("message_reference")
        if reference is not None and reference.get("message_id") is not None:
            ref_id = int(reference["message_id"])
            if ref_id not in self.messages and reference.get("fail_if_not_exists", True):
                return None, uploads, _form_error("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
        else:
            reference = None
        preview = {
            "content": payload.get("content") or "",
            "embeds": payload.get("embeds") or [],
            "components": payload.get("components") or [],
            "attachments": uploads,
            "sticker_items": payload.get("sticker_ids") or [],
            "poll": payload.get("poll"),
            "flags": flags,
        }
        err = self._check_message(preview)
        if err is not None:
            return None, uploads, err
        atts = []
        for up, entry in pairs:
            up = Upload(entry.get("filename") or up.filename, up.data, None, description=entry.get("description"))
            atts.append(self._attachment_json(folder, channel_id, up, ephemeral=bool(flags & FLAG_EPHEMERAL)))
        msg = self._new_message(
            channel_id=channel_id,
            author=self.bot_user,
            content=payload.get("content") or "",
            attachments=atts,
            embeds=payload.get("embeds") or [],
            components=payload.get("components") or [],
            flags=flags,
            reference=reference,
            msg_type=msg_type,
            tts=bool(payload.get("tts")),
            nonce=payload.get("nonce"),
            extra=extra,
        )
        if payload.get("poll"):
            msg["poll"] = payload["poll"]
        return msg, uploads, None

    def _apply_edit(
        self, msg: Dict[str, Any], payload: Dict[str, Any], files: Dict[int, Upload], *, limit: int, mark_edited: bool = True
    ) -> Tuple[Optional[Dict[str, Any]], List[Upload], Optional[web.Response]]:
        """Apply a PATCH body to a copy of ``msg``; on success store it. Returns (msg, uploads, error)."""
        payload = payload or {}
        new = copy.deepcopy(msg)
        entries = payload.get("attachments")
        existing = {a["id"]: a for a in msg.get("attachments", [])}
        pairs: List[Tuple[Upload, Dict[str, Any]]] = []
        if entries is None:
            pairs = [(files[i], {}) for i in sorted(files)]
            kept = list(msg.get("attachments", []))
        else:
            kept = []
            for entry in entries:
                eid = str(entry.get("id"))
                if eid in existing:
                    kept.append(existing[eid])
                else:
                    try:
                        index = int(entry.get("id"))
                    except (TypeError, ValueError):
                        continue
                    if index in files:
                        pairs.append((files[index], entry))
        uploads = [up for up, _ in pairs]
        err = self._check_uploads(uploads, limit)
        if err is not None:
            return None, uploads, err
        if "content" in payload:
            new["content"] = payload["content"] or ""
            new["mentions"] = self._mentions_in(new["content"])
        for key in ("embeds", "components"):
            if key in payload:
                new[key] = payload[key] or []
        if payload.get("flags") is not None:
            editable = FLAG_SUPPRESS_EMBEDS | FLAG_IS_COMPONENTS_V2
            new["flags"] = (int(new.get("flags") or 0) & ~editable) | (int(payload["flags"]) & editable)
        new["flags"] = int(new.get("flags") or 0) & ~FLAG_LOADING
        ephemeral = bool(new["flags"] & FLAG_EPHEMERAL)
        new_atts = []
        for up, entry in pairs:
            up = Upload(entry.get("filename") or up.filename, up.data, None, description=entry.get("description"))
            new_atts.append((up, ephemeral))
        new["attachments"] = kept + [None] * len(new_atts)  # placeholders for the size check
        err = self._check_message(new)
        if err is not None:
            return None, uploads, err
        new["attachments"] = kept + [self._attachment_json("attachments", int(msg["channel_id"]), up, ephemeral=e) for up, e in new_atts]
        if mark_edited:
            new["edited_timestamp"] = _iso_now()
        self.messages[int(msg["id"])] = new
        return new, uploads, None

    # ----------------------------------------------------------------------------------------
    # REST handlers
    # ----------------------------------------------------------------------------------------

    async def _r_me(self, request: web.Request) -> web.Response:
        return _json_response({**self.bot_user.to_json(), "verified": True, "mfa_enabled": False, "locale": "en-US", "email": None})

    async def _r_user(self, request: web.Request, uid: str) -> web.Response:
        user = self.users.get(int(uid))
        if user is None:
            return _error(404, 10013, "Unknown User")
        return _json_response(user.to_json())

    async def _r_create_dm(self, request: web.Request) -> web.Response:
        body, _ = await self._read_body(request)
        user = self.users.get(int(body["recipient_id"]))
        if user is None:
            return _error(404, 10013, "Unknown User")
        return _json_response(self.channels[self.dm_channel_id(user)])

    async def _r_application(self, request: web.Request) -> web.Response:
        return _json_response(self.application_json())

    async def _r_gateway(self, request: web.Request) -> web.Response:
        return _json_response({"url": self.gateway_url})

    async def _r_gateway_bot(self, request: web.Request) -> web.Response:
        return _json_response(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
            }
        )

    def _guild_or_404(self, gid: str) -> Optional[web.Response]:
        return None if int(gid) == self.guild_id else _error(404, 10004, "Unknown Guild")

    async def _r_guild(self, request: web.Request, gid: str) -> web.Response:
        err = self._guild_or_404(gid)
        if err:
            return err
        data = self.guild_json()
        for key in ("members", "channels", "threads", "presences", "voice_states", "joined_at", "large", "member_count"):
            data.pop(key, None)
        return _json_response(data)

    async def _r_guild_channels(self, request: web.Request, gid: str) -> web.Response:
        return self._guild_or_404(gid) or _json_response(self.guild_json()["channels"])

    async def _r_guild_roles(self, request: web.Request, gid: str) -> web.Response:
        return self._guild_or_404(gid) or _json_response(list(self.roles.values()))

    async def _r_guild_member(self, request: web.Request, gid: str, uid: str) -> web.Response:
        err = self._guild_or_404(gid)
        if err:
            return err
        user = self.users.get(int(uid))
        if user is None or not user.is_member:
            return _error(404, 10007, "Unknown Member")
        return _json_response(self.member_json(user))

    def _channel_or_404(self, cid: str) -> Tuple[Optional[Dict[str, Any]], Optional[web.Response]]:
        channel = self.channels.get(int(cid))
        if channel is None:
            return None, _error(404, 10003, "Unknown Channel")
        return channel, None

    async def _r_channel(self, request: web.Request, cid: str) -> web.Response:
        channel, err = self._channel_or_404(cid)
        return err or _json_response(channel)

    async def _r_typing(self, request: web.Request, cid: str) -> web.Response:
        _, err = self._channel_or_404(cid)
        err = err or self._bot_may_post(int(cid))
        if err:
            return err
        self._record("typing", "channel", method="POST", path=request.path, channel_id=int(cid))
        return web.Response(status=204)

    async def _r_history(self, request: web.Request, cid: str) -> web.Response:
        _, err = self._channel_or_404(cid)
        if err:
            return err
        q = request.query
        limit = int(q.get("limit", 50))
        msgs = [m for m in self.messages.values() if m["channel_id"] == cid and not int(m.get("flags") or 0) & FLAG_EPHEMERAL]
        msgs.sort(key=lambda m: int(m["id"]), reverse=True)
        if "before" in q:
            msgs = [m for m in msgs if int(m["id"]) < int(q["before"])]
        if "after" in q:
            msgs = [m for m in msgs if int(m["id"]) > int(q["after"])]
            msgs = sorted(msgs, key=lambda m: int(m["id"]))[:limit]
            msgs.reverse()
        return _json_response(msgs[:limit])

    async def _r_get_message(self, request: web.Request, cid: str, mid: str) -> web.Response:
        msg = self.messages.get(int(mid))
        if msg is None or msg["channel_id"] != cid:
            return _error(404, 10008, "Unknown Message")
        return _json_response(msg)

    def _channel_limit(self, cid: int) -> int:
        return self.guild_filesize_limit if self.channels.get(cid, {}).get("guild_id") else _TIER_FILESIZE[0]

    def _bot_may_post(self, channel_id: int) -> Optional[web.Response]:
        """None if the bot may post in the channel, else Discord's 403: it takes View Channel and Send Messages,
        in a thread Send Messages in Threads instead (Send Messages does not count there)."""
        in_thread = self.channels[channel_id].get("type") in THREAD_TYPES
        needed = discord.Permissions(view_channel=True, send_messages=not in_thread, send_messages_in_threads=in_thread)
        if needed <= discord.Permissions(self.channel_permissions(self.bot_user, channel_id)):
            return None
        return _error(403, 50013, "Missing Permissions")

    async def _r_create_message(self, request: web.Request, cid: str) -> web.Response:
        _, err = self._channel_or_404(cid)
        if err:
            return err
        err = self._bot_may_post(int(cid))
        if err is None and any(self._dm_channels.get(uid) == int(cid) for uid in self._dms_refused):
            err = _error(403, 50007, "Cannot send messages to this user")
        if err:
            await request.read()
            return err
        payload, files = await self._read_body(request)
        payload = payload or {}
        msg, uploads, err = self._bot_message_from_payload(payload, files, channel_id=int(cid), limit=self._channel_limit(int(cid)))
        if err is not None:
            return err
        assert msg is not None
        self._record(
            "message", "channel", method="POST", path=request.path, payload=payload, files=uploads,
            message=msg, channel_id=int(cid), message_id=int(msg["id"]),
        )
        await self._echo("MESSAGE_CREATE", msg)
        return _json_response(msg)

    async def _r_edit_message(self, request: web.Request, cid: str, mid: str) -> web.Response:
        msg = self.messages.get(int(mid))
        if msg is None or msg["channel_id"] != cid:
            return _error(404, 10008, "Unknown Message")
        payload, files = await self._read_body(request)
        if msg["author"]["id"] != str(self.bot_user.id):
            return _error(403, 50005, "Cannot edit a message authored by another user")
        if self.channels.get(int(cid), {}).get("guild_id") and not discord.Permissions(
                self.channel_permissions(self.bot_user, int(cid))).view_channel:
            return _error(403, 50001, "Missing Access")  # even its own messages, in a channel it cannot see
        new, uploads, err = self._apply_edit(msg, payload or {}, files, limit=self._channel_limit(int(cid)))
        if err is not None:
            return err
        assert new is not None
        self._record(
            "edit", "channel", method="PATCH", path=request.path, payload=payload, files=uploads,
            message=new, channel_id=int(cid), message_id=int(mid),
        )
        await self._echo("MESSAGE_UPDATE", new)
        return _json_response(new)

    async def _r_delete_message(self, request: web.Request, cid: str, mid: str) -> web.Response:
        msg = self.messages.get(int(mid))
        if msg is None or msg["channel_id"] != cid:
            return _error(404, 10008, "Unknown Message")
        del self.messages[int(mid)]
        self._record("delete", "channel", method="DELETE", path=request.path, message=msg, channel_id=int(cid), message_id=int(mid))
        await self._echo("MESSAGE_DELETE", msg)
        return web.Response(status=204)

    async def _r_reaction(self, request: web.Request, cid: str, mid: str, emoji: str) -> web.Response:
        msg = self.messages.get(int(mid))
        if msg is None or msg["channel_id"] != cid:
            return _error(404, 10008, "Unknown Message")
        emoji = urllib.parse.unquote(emoji)
        action = "add" if request.method == "PUT" else "remove"
        reactions = msg.setdefault("reactions", [])
        existing = next((r for r in reactions if r["emoji"].get("name") == emoji), None)
        if action == "add" and (existing is None or not existing["me"]):
            if existing is None:
                reactions.append({"emoji": {"id": None, "name": emoji}, "count": 1, "me": True,
                                  "count_details": {"burst": 0, "normal": 1}, "burst_colors": [], "me_burst": False, "burst_me": False})
            else:
                existing["me"] = True
                existing["count"] += 1
        elif action == "remove" and existing is not None and existing["me"]:
            existing["me"] = False
            existing["count"] -= 1
            if existing["count"] <= 0:
                reactions.remove(existing)
        self._record(
            "reaction", "channel", method=request.method, path=request.path, channel_id=int(cid),
            message_id=int(mid), extra={"emoji": emoji, "action": action},
        )
        return web.Response(status=204)

    def _command_store(self, gid: Optional[str]) -> List[Dict[str, Any]]:
        if gid is None:
            return self.global_commands
        return self.guild_commands.setdefault(int(gid), [])

    def _store_command(self, cmd: Dict[str, Any], gid: Optional[str], existing: List[Dict[str, Any]]) -> Dict[str, Any]:
        ctype = int(cmd.get("type", 1))
        old = next((c for c in existing if c["name"] == cmd["name"] and int(c.get("type", 1)) == ctype), None)
        stored = {
            "default_member_permissions": None,
            "nsfw": False,
            "description": "",
            "options": [],
            **copy.deepcopy(cmd),
            "id": old["id"] if old else str(self._snowflake()),
            "application_id": str(self.application_id),
            "version": str(self._snowflake()),
            "type": ctype,
        }
        if gid is not None:
            stored["guild_id"] = str(gid)
        else:
            stored.setdefault("contexts", [0, 1, 2])
            stored.setdefault("integration_types", [0])
        return stored

    async def _r_get_commands(self, request: web.Request, app: str, gid: Optional[str] = None) -> web.Response:
        return _json_response(self._command_store(gid))

    async def _r_put_commands(self, request: web.Request, app: str, gid: Optional[str] = None) -> web.Response:
        if int(app) != self.application_id:
            return _error(403, 50001, "Missing Access")
        body, _ = await self._read_body(request)
        existing = self._command_store(gid)
        stored = [self._store_command(cmd, gid, existing) for cmd in (body or [])]
        existing[:] = stored
        self._record(
            "commands_sync", "guild" if gid else "global", method="PUT", path=request.path, payload=body,
            extra={"guild_id": int(gid) if gid else None, "names": [c["name"] for c in stored]},
        )
        return _json_response(stored)

    async def _r_post_command(self, request: web.Request, app: str, gid: Optional[str] = None) -> web.Response:
        body, _ = await self._read_body(request)
        existing = self._command_store(gid)
        stored = self._store_command(body, gid, existing)
        existing[:] = [c for c in existing if c["id"] != stored["id"]] + [stored]
        self._record("commands_sync", "guild" if gid else "global", method="POST", path=request.path, payload=body,
                     extra={"guild_id": int(gid) if gid else None, "names": [stored["name"]]})
        return _json_response(stored, status=201)

    def _interaction_message_extra(self, rec: InteractionRecord) -> Dict[str, Any]:
        metadata: Dict[str, Any] = {
            "id": str(rec.id),
            "type": rec.type,
            "user": rec.author.to_json(),
            "authorizing_integration_owners": rec.payload.get("authorizing_integration_owners", {}),
        }
        if rec.type == 2:
            metadata["name"] = rec.command_name
            metadata["command_type"] = rec.payload["data"].get("type", 1)
        if rec.source_message_id is not None:
            metadata["interacted_message_id"] = str(rec.source_message_id)
        return {
            "webhook_id": str(self.application_id),
            "application_id": str(self.application_id),
            "interaction_metadata": metadata,
        }

    async def _r_callback(self, request: web.Request, iid: str, token: str) -> web.Response:
        rec = self.interactions.get(int(iid))
        payload, files = await self._read_body(request)
        payload = payload or {}
        if rec is None or rec.token != token:
            return _error(404, 10062, "Unknown interaction")
        if rec.responded:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - rec.created > self.interaction_timeout:
            return _error(404, 10062, "Unknown interaction")
        rtype = int(payload.get("type", 0))
        data = payload.get("data") or {}
        limit = self.interaction_filesize_limit
        msg_type = 20 if rec.type == 2 else 0
        with_response = _truthy(request.query.get("with_response"))
        resource: Dict[str, Any] = {"type": rtype}
        message: Optional[Dict[str, Any]] = None
        follow_kind: Optional[str] = None
        uploads: List[Upload] = []

        if rtype == 4:  # CHANNEL_MESSAGE_WITH_SOURCE
            message, uploads, err = self._bot_message_from_payload(
                data, files, channel_id=rec.channel_id, limit=limit,
                allowed_flags=FLAG_EPHEMERAL | FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_COMPONENTS_V2,
                msg_type=msg_type, extra=self._interaction_message_extra(rec),
            )
            if err is not None:
                return err
            rec.original_message_id = int(message["id"])
            follow_kind = "message"
        elif rtype == 5:  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE ("thinking")
            message, _, err = self._bot_message_from_payload(
                {}, {}, channel_id=rec.channel_id, limit=limit,
                force_flags=FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL),
                msg_type=msg_type, extra=self._interaction_message_extra(rec),
            )
            assert message is not None
            rec.original_message_id = int(message["id"])
            rec.loading = True
        elif rtype in (6, 7):  # DEFERRED_UPDATE_MESSAGE / UPDATE_MESSAGE
            if rec.source_message_id is None or rec.source_message_id not in self.messages:
                return _error(400, 40004 if rec.source_message_id is None else 10008, "Interaction has no message to update")
            rec.original_message_id = rec.source_message_id
            message = self.messages[rec.source_message_id]
            if rtype == 7:
                message, uploads, err = self._apply_edit(message, data, files, limit=limit)
                if err is not None:
                    return err
                follow_kind = "edit"
        elif rtype == 8:  # APPLICATION_COMMAND_AUTOCOMPLETE_RESULT
            pass
        elif rtype == 9:  # MODAL
            too_long = [t for t in [data.get("title") or ""] + [c.get("label") or "" for c in
                                                                self._walk_components(data.get("components", []))]
                        if len(t) > MAX_MODAL_LABEL]
            if too_long:
                return _form_error("data", "BASE_TYPE_MAX_LENGTH",
                                   f"Must be {MAX_MODAL_LABEL} or fewer in length: {too_long[0]!r}")
            rec.modal = data
        elif rtype == 1:
            pass
        else:
            return _form_error("type", "BASE_TYPE_CHOICES", f"Value must be one of (1, 4, 5, 6, 7, 8, 9, 10, 12). Got {rtype}")

        rec.response_type = rtype
        rec.response_data = data
        self._record(
            "interaction_response", "interaction", method="POST", path=request.path, payload=payload, files=uploads,
            message=message, channel_id=rec.channel_id, message_id=int(message["id"]) if message else None,
            interaction_id=rec.id, response_type=rtype,
        )
        if follow_kind is not None and message is not None:
            self._record(
                follow_kind, "interaction", method="POST", path=request.path, payload=payload, files=uploads,
                message=message, channel_id=rec.channel_id, message_id=int(message["id"]),
                interaction_id=rec.id, response_type=rtype,
            )
        if rtype in (4, 5) and message is not None:
            await self._echo("MESSAGE_CREATE", message)
        elif rtype == 7 and message is not None:
            await self._echo("MESSAGE_UPDATE", message)

        if not with_response:
            return web.Response(status=204)
        interaction_info: Dict[str, Any] = {"id": str(rec.id), "type": rec.type}
        if message is not None:
            interaction_info["response_message_id"] = message["id"]
            interaction_info["response_message_loading"] = bool(int(message.get("flags") or 0) & FLAG_LOADING)
            interaction_info["response_message_ephemeral"] = bool(int(message.get("flags") or 0) & FLAG_EPHEMERAL)
            resource["message"] = message
        body: Dict[str, Any] = {"interaction": interaction_info}
        if rtype not in (1, 8):
            body["resource"] = resource
        return _json_response(body)

    def _webhook_record(self, app: str, token: str) -> Tuple[Optional[InteractionRecord], Optional[web.Response]]:
        rec = self._interactions_by_token.get(token)
        if rec is None or int(app) != self.application_id:
            return None, _error(404, 10015, "Unknown Webhook")
        if not rec.responded:
            # Follow-ups and @original only exist after the interaction was acknowledged.
            return None, _error(404, 10015, "Unknown Webhook")
        if time.monotonic() - rec.created > self.token_lifetime:
            return None, _error(401, 50027, "Invalid Webhook Token")
        return rec, None

    def _webhook_message(self, rec: InteractionRecord, which: str) -> Optional[Dict[str, Any]]:
        if which == "@original":
            mid = rec.original_message_id
        else:
            mid = int(which)
            if mid != rec.original_message_id and mid not in rec.followup_ids:
                return None
        return self.messages.get(mid) if mid is not None else None

    async def _r_followup(self, request: web.Request, app: str, token: str) -> web.Response:
        payload, files = await self._read_body(request)
        payload = payload or {}
        rec, err = self._webhook_record(app, token)
        if err is not None:
            return err
        assert rec is not None
        limit = self.interaction_filesize_limit
        if rec.loading and rec.original_message_id in self.messages:
            # The first follow-up after a "thinking" defer replaces the placeholder message and
            # keeps the ephemeral-ness chosen when deferring.
            original = self.messages[rec.original_message_id]
            msg, uploads, err = self._apply_edit(original, {**payload, "flags": None}, files, limit=limit, mark_edited=False)
            if err is not None:
                return err
            rec.loading = False
            event_name = "MESSAGE_UPDATE"
        else:
            msg, uploads, err = self._bot_message_from_payload(
                payload, files, channel_id=rec.channel_id, limit=limit,
                allowed_flags=FLAG_EPHEMERAL | FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_COMPONENTS_V2,
                msg_type=20 if rec.type == 2 else 0, extra=self._interaction_message_extra(rec),
            )
            if err is not None:
                return err
            assert msg is not None
            msg["interaction_metadata"]["original_response_message_id"] = str(rec.original_message_id)
            rec.followup_ids.append(int(msg["id"]))
            event_name = "MESSAGE_CREATE"
        assert msg is not None
        self._record(
            "message", "followup", method="POST", path=request.path, payload=payload, files=uploads,
            message=msg, channel_id=rec.channel_id, message_id=int(msg["id"]), interaction_id=rec.id,
        )
        await self._echo(event_name, msg)
        if _truthy(request.query.get("wait")):
            return _json_response(msg)
        return web.Response(status=204)

    async def _r_webhook_get(self, request: web.Request, app: str, token: str, which: str) -> web.Response:
        rec, err = self._webhook_record(app, token)
        if err is not None:
            return err
        msg = self._webhook_message(rec, which)  # type: ignore[arg-type]
        return _json_response(msg) if msg is not None else _error(404, 10008, "Unknown Message")

    async def _r_webhook_edit(self, request: web.Request, app: str, token: str, which: str) -> web.Response:
        payload, files = await self._read_body(request)
        rec, err = self._webhook_record(app, token)
        if err is not None:
            return err
        assert rec is not None
        msg = self._webhook_message(rec, which)
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        was_loading = bool(int(msg.get("flags") or 0) & FLAG_LOADING)
        new, uploads, err = self._apply_edit(msg, payload or {}, files, limit=self.interaction_filesize_limit, mark_edited=not was_loading)
        if err is not None:
            return err
        assert new is not None
        if int(new["id"]) == rec.original_message_id:
            rec.loading = False
        self._record(
            "edit", "webhook", method="PATCH", path=request.path, payload=payload, files=uploads, message=new,
            channel_id=int(new["channel_id"]), message_id=int(new["id"]), interaction_id=rec.id,
            extra={"was_loading": was_loading, "target": which},
        )
        await self._echo("MESSAGE_UPDATE", new)
        return _json_response(new)

    async def _r_webhook_delete(self, request: web.Request, app: str, token: str, which: str) -> web.Response:
        rec, err = self._webhook_record(app, token)
        if err is not None:
            return err
        assert rec is not None
        msg = self._webhook_message(rec, which)
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        del self.messages[int(msg["id"])]
        if int(msg["id"]) == rec.original_message_id:
            rec.loading = False
        self._record(
            "delete", "webhook", method="DELETE", path=request.path, message=msg, channel_id=int(msg["channel_id"]),
            message_id=int(msg["id"]), interaction_id=rec.id, extra={"target": which},
        )
        await self._echo("MESSAGE_DELETE", msg)
        return web.Response(status=204)

    def _r_cdn(self, path: str) -> web.StreamResponse:
        self.hits[path] += 1
        entry = self._cdn.get(path)
        if entry is None:
            return web.Response(status=404, text="404: Not Found")
        data, ctype = entry
        return web.Response(body=data, headers={"Content-Type": ctype})

    async def _r_hosted(self, path: str) -> web.StreamResponse:
        self.hits[path] += 1
        hosted = self._hosted.get(urllib.parse.unquote(path[len("/files/") :]))
        if hosted is None:
            return web.Response(status=404, text="not found")
        if hosted.delay:
            await asyncio.sleep(hosted.delay)
        return web.Response(status=hosted.status, body=hosted.data, headers={"Content-Type": hosted.content_type, **hosted.headers})


# --------------------------------------------------------------------------------------------
# running a bot against the stand-in
# --------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def run_bot(
    bot: discord.Client,
    *,
    token: str = "fake-token",
    ready_timeout: float = 5.0,
    fast_ready: bool = True,
) -> AsyncIterator[discord.Client]:
    """Log ``bot`` in, connect it in a background task and wait until it is ready; on exit
    close it and wait for the connection task to finish.

    discord.py waits ``guild_ready_timeout`` (default 2 s) after the last GUILD_CREATE before
    READY; create bots with ``guild_ready_timeout=0.05`` (with ``fast_ready`` this helper also
    lowers the client's setting to 0.05 s if it is higher). Call only while discord.py is
    pointed at a running :class:`FakeDiscord` (the ``fake_discord`` fixture does that)."""
    if "127.0.0.1" not in discord.http.Route.BASE:
        raise RuntimeError(f"discord.py is not pointed at the stand-in (Route.BASE={discord.http.Route.BASE!r})")
    if fast_ready and bot._connection.guild_ready_timeout > 0.05:
        bot._connection.guild_ready_timeout = 0.05
    connect_task: Optional[asyncio.Task] = None
    try:
        await bot.login(token)
        connect_task = asyncio.create_task(bot.connect(reconnect=True), name="standin-bot-connect")
        ready_task = asyncio.create_task(bot.wait_until_ready(), name="standin-bot-ready")
        done, _ = await asyncio.wait({ready_task, connect_task}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED)
        if ready_task not in done:
            ready_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready_task
            if connect_task in done:
                connect_task.result()  # re-raise why it stopped
                raise RuntimeError("bot.connect() returned before the bot became ready")
            raise TimeoutError(f"bot not ready within {ready_timeout}s")
        yield bot
    finally:
        await bot.close()
        if connect_task is not None:
            try:
                await asyncio.wait_for(connect_task, timeout=5.0)
            except asyncio.TimeoutError:
                log.warning("bot.connect() did not finish after close()")
            except Exception:
                log.debug("bot.connect() ended with an error after close()", exc_info=True)
