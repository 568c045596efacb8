"""The style library: built-in paintings shipped in bot/styles, plus each server's own, kept in the store.

Users name styles instead of attaching a painting (`style=starry_night,wave`, or the name alone).
Names are short `[a-z0-9_-]` words that can never be read as something else: no setting name or
alias, no subcommand. The names of a server's styles are cached in memory, so autocomplete answers
without touching the disk; the contact sheet (thumbnails with names) is cached until the library
changes.
"""

from __future__ import annotations

import asyncio
import difflib
import io
import logging
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from engine import SPECS, ParamError, Settings

from .config import Caps
from .parsing import STYLE_KEYS, STYLE_NAME, UsageError, canonical, parse_settings, quoted_name, split_arguments
from .storage import Mode, Store, StorageUnavailable

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent / "styles"
MAX_SIDE = 1024  # library pictures are kept at most this large (a style's statistics need no more)
MAX_SERVER_STYLES = 100
CREDIT_LIMIT = 100
CHOICE_LIMIT = 100  # characters of an autocomplete choice's label and of its value (Discord's limit)
SUBCOMMANDS = ("paint", "help", "cancel", "queue", "styles", "defaults", "forget", "add", "remove", "list",
               "again", "settings", "mask", "animate")
RESERVED = frozenset({*SUBCOMMANDS, *STYLE_KEYS, "none", "auto", "random", "default", "all", "content",
                      *(name for spec in SPECS for name in (spec.name, *spec.aliases))})
THUMB, LABEL, COLUMNS = 160, 22, 4


@dataclass(frozen=True)
class Style:
    """One named style: a built-in file, or a server's picture in the store."""

    name: str
    credit: str
    builtin: bool
    file: str  # built-in: path of the JPEG; server style: picture name in the store


def check_name(name: str) -> str:
    """The name, lower-cased, if a new style may take it; UsageError saying why not otherwise."""
    name = name.strip().lower()
    if not STYLE_NAME.fullmatch(name):
        raise UsageError("Style names are 1–32 characters of a-z, 0-9, _ and - (e.g. `water_lilies`).")
    if name in RESERVED:
        raise UsageError(f"`{name}` can't be a style name: it is a setting or a command.")
    return name


def _builtins() -> dict[str, Style]:
    with open(BUILTIN_DIR / "styles.toml", "rb") as fh:
        credits = tomllib.load(fh)
    return {name: Style(name, credit, True, str(BUILTIN_DIR / f"{name}.jpg")) for name, credit in credits.items()}


class Library:
    """Built-in and server styles; server styles need the store (read-only: listed and used, not changed)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.builtins = _builtins()
        self._server: dict[int, dict[str, Style]] = {}
        self._sheets: dict[int | None, bytes] = {}
        self._loading: dict[int, asyncio.Lock] = {}

    async def styles(self, guild_id: int | None) -> list[Style]:
        """Built-in styles, then this server's, each group by name."""
        return [*self.builtins.values(), *(await self._server_styles(guild_id)).values()]

    async def _server_styles(self, guild_id: int | None) -> dict[str, Style]:
        if guild_id is None or self.store.mode is Mode.UNAVAILABLE:
            return {}
        async with self._loading.setdefault(guild_id, asyncio.Lock()):
            if guild_id not in self._server:
                try:
                    stored = await self.store.styles(guild_id)
                except StorageUnavailable:
                    return {}
                self._server[guild_id] = {s.name: Style(s.name, s.credit, False, s.picture) for s in stored}
        return self._server[guild_id]

    async def find(self, guild_id: int | None, names: list[str]) -> list[Style]:
        """The styles these names stand for, in order; UsageError naming the first unknown one."""
        if not names:
            return []
        known = {style.name: style for style in await self.styles(guild_id)}
        found = []
        for name in names:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                hint = f" — did you mean `{close[0]}`?" if close else ""
                raise UsageError(f"I don't know a style called `{name}`{hint} `styles` lists them; settings "
                                 "look like key=value (e.g. steps=300).")
            found.append(known[name])
        return found

    async def complete(self, guild_id: int | None, typed: str) -> list[tuple[str, str]]:
        """Autocomplete for `preset`: (label, value) pairs, at most 25; `a,b,st` completes the last name.
        Discord refuses a value over CHOICE_LIMIT characters, so the names typed before the last are kept
        only if they are styles here (once each), and a value still too long is not offered."""
        head, _, last = typed.lower().replace(" ", "").rpartition(",")
        styles = await self.styles(guild_id)
        known = {s.name for s in styles}
        chosen = [name for name in dict.fromkeys(head.split(",")) if name in known]
        head = "".join(f"{name}," for name in chosen)
        ranked = sorted((s for s in styles if s.name not in chosen),
                        key=lambda s: (not s.name.startswith(last), last not in s.name, s.name))
        return [(f"{head}{s.name} — {s.credit}"[:CHOICE_LIMIT], f"{head}{s.name}") for s in ranked
                if (last in s.name or last in s.credit.lower()) and len(head) + len(s.name) <= CHOICE_LIMIT][:25]

    async def image(self, style: Style) -> Image.Image:
        """The style's picture, decoded off the event loop."""
        loop = asyncio.get_running_loop()
        if style.builtin:
            return await loop.run_in_executor(None, _open_rgb, Path(style.file))
        data = await self.store.picture(style.file)
        return await loop.run_in_executor(None, _open_rgb, io.BytesIO(data))

    async def add(self, guild_id: int, name: str, picture: Image.Image, credit: str, user_id: int) -> None:
        name = check_name(name)
        existing = await self.styles(guild_id)
        if any(style.name == name for style in existing):
            raise UsageError(f"There is already a style called `{name}` — remove it first, or pick another name.")
        if len(existing) - len(self.builtins) >= MAX_SERVER_STYLES:
            raise UsageError(f"This server has {MAX_SERVER_STYLES} styles, the most it can keep — remove one first.")
        png = await asyncio.get_running_loop().run_in_executor(None, _library_png, picture)
        await self.store.add_style(guild_id, name, png, credit[:CREDIT_LIMIT], user_id)
        self._changed(guild_id)

    async def remove(self, guild_id: int, name: str) -> None:
        name = name.strip().lower()
        if name in self.builtins:
            raise UsageError(f"`{name}` is a built-in style; only this server's own styles can be removed.")
        if not await self.store.remove_style(guild_id, name):
            raise UsageError(f"This server has no style called {quoted_name(name)}.")
        self._changed(guild_id)

    def _changed(self, guild_id: int) -> None:
        self._server.pop(guild_id, None)
        self._sheets.pop(guild_id, None)

    async def contact_sheet(self, guild_id: int | None) -> bytes:
        """One JPEG of every style's thumbnail with its name, cached until the library changes."""
        styles = await self.styles(guild_id)
        key = guild_id if len(styles) > len(self.builtins) else None
        if key not in self._sheets:
            pictures = [await self.image(style) for style in styles]
            self._sheets[key] = await asyncio.get_running_loop().run_in_executor(
                None, contact_sheet, [s.name for s in styles], pictures)
        return self._sheets[key]


def _open_rgb(source: Path | io.BytesIO) -> Image.Image:
    with Image.open(source) as im:
        return im.convert("RGB")


def _library_png(picture: Image.Image) -> bytes:
    """A server style as kept: at most MAX_SIDE px, PNG."""
    im = picture.copy()
    im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def contact_sheet(names: list[str], pictures: list[Image.Image]) -> bytes:
    """A grid of square thumbnails, each with its name under it."""
    columns = min(max(COLUMNS, math.ceil(math.sqrt(len(pictures)))), len(pictures)) or 1  # wider when many
    rows = math.ceil(len(pictures) / columns)
    sheet = Image.new("RGB", (columns * THUMB, rows * (THUMB + LABEL)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for n, (name, picture) in enumerate(zip(names, pictures)):
        x, y = n % columns * THUMB, n // columns * (THUMB + LABEL)
        thumb = picture.copy()
        side = min(thumb.size)
        left, top = (thumb.width - side) // 2, (thumb.height - side) // 2
        thumb = thumb.crop((left, top, left + side, top + side)).resize((THUMB - 8, THUMB - 8), Image.Resampling.LANCZOS)
        sheet.paste(thumb, (x + 4, y + 4))
        draw.text((x + THUMB // 2, y + THUMB + LABEL // 2 - 2), name, fill="black", font=font, anchor="mm")
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=85)
    return out.getvalue()


class ServerDefaults:
    """Each server's own default settings (`/stylize-defaults`), on top of the configuration's [defaults]
    and within its caps; kept in the store and cached here."""

    def __init__(self, store: Store, base: Settings, caps: Caps) -> None:
        self.store = store
        self.base = base
        self.caps = caps
        self._cache: dict[int, dict[str, str]] = {}

    async def raw(self, guild_id: int | None) -> dict[str, str]:
        """The settings this server changed, as key=value text (empty without a server or a store)."""
        if guild_id is None or self.store.mode is Mode.UNAVAILABLE:
            return {}
        if guild_id not in self._cache:
            try:
                self._cache[guild_id] = await self.store.guild_defaults(guild_id)
            except StorageUnavailable:
                return {}
        return self._cache[guild_id]

    async def settings(self, guild_id: int | None) -> Settings:
        """The base of this server's jobs; stored values that the configuration now refuses are dropped."""
        raw = await self.raw(guild_id)
        try:
            settings = Settings.parse(raw, self.base)
            self.caps.check(settings)
        except ParamError as error:
            log.warning("server %s: stored defaults %s no longer fit the configuration (%s); ignored",
                        guild_id, raw, error)
            return self.base
        return settings

    async def change(self, guild_id: int, text: str) -> dict[str, str]:
        """Apply `key=value …` (`key=default` drops one, `reset` drops all); the new set, checked and stored."""
        raw = dict(await self.raw(guild_id))
        words = text.split()
        if words == ["reset"]:
            raw = {}
        else:
            args = split_arguments(text, links_allowed=False)
            if args.names:
                raise UsageError(f"I don't understand `{args.names[0]}` — give settings as key=value "
                                 "(key=default to go back to the configuration's value, or just `reset`).")
            for key, value in args.raw.items():
                name = canonical(key)
                if name is None:
                    parse_settings({key: value}, self.base)  # "unknown setting — did you mean", quoted inert
                    continue
                if value.strip().lower() == "default":
                    raw.pop(name, None)
                else:
                    raw[name] = value.strip()
        settings, _ = parse_settings(raw, self.base)  # what a member types, refused in words that stay inert
        self.caps.check(settings)
        await self.store.set_guild_defaults(guild_id, raw)
        self._cache[guild_id] = raw
        return raw
