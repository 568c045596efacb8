"""The bot's configuration: one TOML file (documented in config.example.toml) checked at start-up.

Every table maps onto a frozen dataclass. Unknown keys, wrong types and out-of-range values stop
the bot with one clear line naming the file and the key, because a typo that is silently ignored
("max_step = 50") is worse than a refusal to start. The token may come from the environment
(DISCORD_TOKEN, or DISCORD_TOKEN_FILE naming a file that holds it, as Docker secrets do; either wins)
or the configuration file; it is kept out of repr(), str() and every error message.
So is [jobs] redis_url, which STYLIZE_REDIS_URL overrides the same way (the workers read that too).
compose.yaml's Celery stack sets STYLIZE_JOBS_BACKEND and STYLIZE_WORKERS (= its number of GPU workers),
so that choosing the stack in .env needs no matching edit of config.toml.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch

from engine import SPECS, ParamError, Settings
from engine.animate import total_steps
from engine.memory import gpu_bytes, machine_bytes
from engine.params import SPEC
from engine.transfer import fit, painted

TOKEN_ENV = "DISCORD_TOKEN"
TOKEN_FILE_ENV = "DISCORD_TOKEN_FILE"  # a file holding the token, e.g. a Docker secret in /run/secrets/
REDIS_URL_ENV = "STYLIZE_REDIS_URL"  # wins over [jobs] redis_url (it may hold a password); workers read it too
DATA_DIR_ENV = "STYLIZE_DATA_DIR"  # wins over [storage] data_dir (the image sets /data, a volume)
BACKEND_ENV, WORKERS_ENV = "STYLIZE_JOBS_BACKEND", "STYLIZE_WORKERS"  # win over [jobs] backend and workers
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


class ConfigError(ValueError):
    """The configuration is unusable; the message names the file and the key — every key at fault, one per
    line (`problems`), so that one edit fixes them all."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)

    @classmethod
    def of(cls, where: str, problems: list[str]) -> ConfigError:
        lines = tuple(f"{where}: {problem}" for problem in problems)
        if len(lines) == 1:
            return cls(lines[0])
        return cls(f"{where}: {len(lines)} problems\n" + "\n".join(f"  - {problem}" for problem in problems), lines)


class _Invalid(ValueError):
    """One value of the file refused (the text names its key); the parse goes on to find the others."""


def _at_least(minimum: float, **extra: Any) -> Any:
    return field(metadata={"min": minimum}, **extra)


@dataclass(frozen=True)
class Motion:
    """Caps on an animated photo painted frame by frame (animate=true): the decoder enforces the frames, the
    duration and the frame rate while it reads them (bot.inputs.images.decode_clip), `check` the cost."""

    max_frames: int = 48  # frames painted, once frames faster than max_fps are merged
    max_seconds: float = 10.0  # its total duration, delays under 20 ms counted as 100 ms (as browsers do)
    max_fps: float = 12.0  # faster frames are merged (durations added up) down to this rate
    max_frame_pixels: int = 256 * 256  # pixels of each painted frame
    max_work: int = 400_000_000  # pixels per frame × steps of all frames (steps + frame_steps × later frames)

    def check(self, settings: Settings, frames: int, canvas: tuple[int, int]) -> None:
        """Refuse painting `frames` frames of a `canvas` (width, height) over the pixel and work caps
        (ParamError, user-facing), saying what would fit."""
        width, height = fit(canvas, settings.long_side(canvas))
        pixels = width * height
        if pixels > self.max_frame_pixels:
            side = settings.long_side(canvas)
            while side > 1 and math.prod(fit(canvas, side)) > self.max_frame_pixels:
                side -= max(1, side // 64)
            ask = f"size={side}" if settings.pixels is None else f"pixels={self.max_frame_pixels}"
            raise ParamError(f"its frames would be painted at {width}×{height} ({pixels:,} pixels), over your cap of "
                             f"{self.max_frame_pixels:,} pixels per frame — ask for {ask} or less")
        work = pixels * total_steps(settings, frames)
        if work > self.max_work:
            fits = 1 + (self.max_work // pixels - settings.steps) // settings.frame_steps
            what = (f"{fits} frame{'s' if fits > 1 else ''} would fit at these settings" if fits >= 1 else
                    "even one frame is over it at this size and steps")
            raise ParamError(f"{frames} frame{'s' if frames > 1 else ''} of {width}×{height} with steps="
                             f"{settings.steps} and frame_steps={settings.frame_steps} is {work:,} pixel-steps, over "
                             f"your budget of {self.max_work:,} — {what}; send fewer frames, or ask for a smaller "
                             "size or fewer steps or frame_steps")


@dataclass(frozen=True)
class RoleLimit:
    """Higher caps for the members of one role (None: same as everyone), and whether they animate by default."""

    id: int
    max_size: int | None = None
    max_steps: int | None = None
    max_styles: int | None = None
    max_style_size: int | None = None
    max_frames: int | None = None
    max_seconds: float | None = None
    max_fps: float | None = None
    max_frame_pixels: int | None = None
    max_work: int | None = None
    animate: bool | None = None  # true: an animated photo is animated unless the member says animate=false


@dataclass(frozen=True)
class Caps:
    """The largest job one member may ask for."""

    max_size: int
    max_steps: int
    max_styles: int
    max_style_size: int  # longest side of the style pictures as painted: size × style_scale
    motion: Motion = Motion()
    animate: bool = False  # the member's default for animate (a role's); their server's defaults apply otherwise

    def check(self, settings: Settings, shape: tuple[int, int] | None = None) -> None:
        """Refuse settings above these caps, saying what is allowed (ParamError, user-facing). The style
        cap judges the style pictures at the size the engine will paint them (engine.transfer.painted):
        for a pixel count that depends on the photo's shape, so it is judged as a square until `shape`
        (width, height) is known, and again once it is — before any style picture is fetched."""
        size_cap = ("size", self.max_size) if settings.pixels is None else ("pixels", self.max_size**2)
        for name, cap in (size_cap, ("steps", self.max_steps)):
            value = getattr(settings, name)
            if value > cap:
                raise ParamError(f"{name}={value} is over this server's cap of {cap} for you "
                                 f"— ask for {name}={cap} or less")
        sizes = painted(settings, shape or (1, 1))
        if sizes.style <= self.max_style_size:
            return
        side = max(sizes.content)
        most = f"style_scale={math.floor(self.max_style_size / side * 100) / 100:g}"
        if settings.pixels is None:
            given = f"style_scale={settings.style_scale:g} at size={side}"
        elif shape is None:
            given = f"style_scale={settings.style_scale:g} at pixels={settings.pixels}"
        else:
            width, height = sizes.content
            given = (f"pixels={settings.pixels} on this {max(shape) / min(shape):.3g}:1 photo "
                     f"(painted {width}×{height}) with style_scale={settings.style_scale:g}")
            fitting = self._largest_pixels(settings, shape)
            most = f"pixels={fitting} or {most}" if fitting else most
        raise ParamError(f"{given} paints the style pictures at {sizes.style} px, over this server's cap of "
                         f"{self.max_style_size} for you — ask for {most} or less")

    def _largest_pixels(self, settings: Settings, shape: tuple[int, int]) -> int | None:
        """The largest pixel count whose style pictures fit the style cap on a photo of `shape`, if any."""
        side = math.floor(self.max_style_size / settings.style_scale)
        pixels = math.floor(side**2 * min(shape) / max(shape))
        while pixels >= SPEC["pixels"].min:
            if painted(dataclasses.replace(settings, pixels=pixels), shape).style <= self.max_style_size:
                return pixels
            pixels -= max(1, pixels // 1000)
        return None


@dataclass(frozen=True)
class Limits:
    attachment_bytes: int = _at_least(1, default=25 * 1024 * 1024)
    input_pixels: int = _at_least(1, default=40_000_000)
    max_styles: int = _at_least(1, default=3)
    max_size: int = _at_least(64, default=1024)
    max_steps: int = _at_least(1, default=1000)
    max_style_size: int | None = _at_least(64, default=None)  # size × style_scale; never below max_size
    queue_size: int = _at_least(1, default=20)
    per_user: int = _at_least(1, default=2)
    memory_gb: float | None = _at_least(0.1, default=None)  # one job's memory; None: the machine's ÷ workers
    gpu_memory_gb: float | None = _at_least(0.1, default=None)  # one job's GPU memory; None: the GPU's ÷ workers
    job_timeout: float = _at_least(1, default=900.0)
    fetch_timeout: float = _at_least(1, default=15.0)
    max_frames: int = _at_least(1, default=Motion.max_frames)
    max_seconds: float = _at_least(0.1, default=Motion.max_seconds)
    max_fps: float = _at_least(1, default=Motion.max_fps)
    max_frame_pixels: int = _at_least(64 * 64, default=Motion.max_frame_pixels)
    max_work: int = _at_least(1, default=Motion.max_work)
    roles: tuple[RoleLimit, ...] = ()

    def job_memory(self, workers: int, device: str = "cpu") -> float:
        """Bytes one job may use on `device`: on a CUDA GPU gpu_memory_gb, or the GPU's memory shared by the
        workers; elsewhere memory_gb, or this machine's (or container's) memory shared by the workers."""
        if torch.device(device).type == "cuda":
            return self.gpu_memory_gb * 1e9 if self.gpu_memory_gb is not None else gpu_bytes(device) / workers
        return self.memory_gb * 1e9 if self.memory_gb is not None else machine_bytes() / workers

    def caps_for(self, role_ids: Iterable[int]) -> Caps:
        """Everyone's caps, raised by every listed role the member has."""
        mine = set(role_ids)
        size, steps, styles, style = self.max_size, self.max_steps, self.max_styles, self.max_style_size or 0
        motion = {f.name: getattr(self, f.name) for f in fields(Motion)}
        animate = False
        for role in self.roles:
            if role.id in mine:
                size = max(size, role.max_size or 0)
                steps = max(steps, role.max_steps or 0)
                styles = max(styles, role.max_styles or 0)
                style = max(style, role.max_style_size or 0)
                motion = {name: max(cap, getattr(role, name) or 0) for name, cap in motion.items()}
                animate = animate or bool(role.animate)
        return Caps(size, steps, styles, max(style, size), Motion(**motion), animate)


@dataclass(frozen=True)
class Access:
    guilds: frozenset[int] = frozenset()  # empty: every guild (and DMs)
    channels: frozenset[int] = frozenset()  # empty: every channel
    moderator_roles: frozenset[int] = frozenset()

    def allows(self, guild_id: int | None, channel_id: int) -> bool:
        if self.guilds and guild_id not in self.guilds:
            return False
        return not self.channels or channel_id in self.channels


@dataclass(frozen=True)
class Cooldown:
    """Per user: at most `commands` commands and `buttons` button presses in any `seconds`."""

    commands: int = _at_least(1, default=5)
    buttons: int = _at_least(1, default=5)
    seconds: float = _at_least(1, default=30.0)


BACKENDS = ("inprocess", "celery")
_REDIS_URL = re.compile(r"(rediss?|unix)://\S+")


@dataclass(frozen=True)
class Jobs:
    """Where jobs run: in this process (default), or on Celery workers through Redis (docs/scaling.md)."""

    backend: str = "inprocess"
    redis_url: str = field(default="redis://localhost:6379/0", repr=False)  # may hold a password
    key_prefix: str = "stylize"  # Redis keys of this bot start with it; one bot per prefix
    keep: float = _at_least(60, default=86400.0)  # seconds a job's pictures and record stay in Redis
    batch_size: int = _at_least(1, default=1)  # most jobs of one shape painted as one batch; 1: one at a time
    batch_wait: float = _at_least(0, default=0.05)  # seconds a batch waits for more jobs of its shape


@dataclass(frozen=True)
class Storage:
    """What the bot keeps between runs (bot.storage): style libraries, server defaults, recent job inputs."""

    data_dir: str = "./data"
    keep_days: float = _at_least(0, default=7.0)  # job inputs; 0 keeps nothing
    max_megabytes: int = _at_least(1, default=2048)  # disk cap; the oldest job inputs go first


@dataclass(frozen=True)
class Config:
    token: str = field(default="", repr=False)
    prefix: str = "!"
    device: str = "auto"
    workers: int = _at_least(1, default=1)
    log_level: str = "INFO"
    progress_interval: float = _at_least(2, default=3.0)  # Discord rate-limits message edits
    owner_ids: frozenset[int] = frozenset()  # empty: the application's owner(s)
    access: Access = Access()
    limits: Limits = Limits()
    cooldown: Cooldown = Cooldown()
    jobs: Jobs = Jobs()
    storage: Storage = Storage()
    defaults: Settings = Settings()  # the `base` of every job's settings


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> Config:
    """Read and check `path` (None: all defaults); `env` may supply DISCORD_TOKEN or DISCORD_TOKEN_FILE."""
    where = str(path) if path is not None else "configuration"
    table: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                table = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{where}: no such file (copy config.example.toml to start)") from None
        except PermissionError:
            raise ConfigError(f"{where}: permission denied — the bot runs as user id {_uid()}, which may not "
                              f"read it; make it readable: `chmod 644 {path.name}` (on the host, next to "
                              "compose.yaml, when it runs in Docker)") from None
        except OSError as error:
            raise ConfigError(f"{where}: cannot read it ({error.strerror})") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{where}: not valid TOML ({error})") from None
    return parse_config(table, where=where, env=env or {})


def parse_config(table: Mapping[str, Any], *, where: str = "configuration",
                 env: Mapping[str, str] | None = None) -> Config:
    """Build a Config from already-parsed TOML, raising ConfigError('<where>: <key> …') that lists every
    problem found (a refused value is replaced by its default so that the checks after it still run)."""
    env, problems = env or {}, []
    table = dict(table)
    defaults = table.pop("defaults", {})
    if not isinstance(defaults, dict):
        problems.append("[defaults] must be a table of hyperparameters")
        defaults = {}
    config: Config = _stack_overrides(_build(Config, table, "", problems), env, problems)
    token = _token(env, config.token, problems)
    if token is not None and not token.strip():
        problems.append(f"no bot token — set the {TOKEN_ENV} environment variable, "
                        f"or {TOKEN_FILE_ENV} to a file that holds it, or `token` in the file")
    if not config.prefix.strip() or config.prefix != config.prefix.strip():
        problems.append("prefix must be non-empty, without spaces around it")
    if not _DEVICE.fullmatch(config.device):
        problems.append(f"device must be auto, cpu, mps, cuda or cuda:N, not {config.device!r}")
    redis_url = env.get(REDIS_URL_ENV)
    if redis_url:
        config = dataclasses.replace(config, jobs=dataclasses.replace(config.jobs, redis_url=redis_url.strip()))
    data_dir = env.get(DATA_DIR_ENV, "").strip()
    if data_dir:
        config = dataclasses.replace(config, storage=dataclasses.replace(config.storage, data_dir=data_dir))
    if not config.storage.data_dir.strip():
        problems.append("storage.data_dir must name a folder")
    if config.jobs.backend not in BACKENDS:
        problems.append(f"jobs.backend must be one of {', '.join(BACKENDS)}, not {config.jobs.backend!r}")
    if not _REDIS_URL.fullmatch(config.jobs.redis_url):
        problems.append("jobs.redis_url must look like redis://host:6379/0 (or rediss://, unix://)")
    keep, timeout = config.jobs.keep, config.limits.job_timeout
    if config.jobs.backend == "celery" and keep < 2 * timeout + 600:  # a job may run twice, then await delivery
        problems.append(f"jobs.keep = {keep:g} s is too short for limits.job_timeout = {timeout:g} s — a job's "
                        f"record must outlive two attempts and its delivery: set jobs.keep to at least "
                        f"2 × limits.job_timeout + 600 = {2 * timeout + 600:g}, or lower limits.job_timeout")
    if not re.fullmatch(r"[\w.-]+", config.jobs.key_prefix):
        problems.append("jobs.key_prefix may hold only letters, digits, '_', '.' and '-'")
    if config.log_level.upper() not in LOG_LEVELS:
        problems.append(f"log_level must be one of {', '.join(LOG_LEVELS)}")
    base = _defaults(defaults, problems)
    problems += _over_limits(base, config.limits)
    if problems:
        raise ConfigError.of(where, problems)
    return dataclasses.replace(config, token=(token or "").strip(), log_level=config.log_level.upper(),
                               defaults=base)


def _defaults(defaults: Mapping[str, Any], problems: list[str]) -> Settings:
    """[defaults] as Settings; each refused key is a problem of its own, and a key of another table (a line
    written below the [defaults] header by mistake) says which table it belongs to."""
    good: dict[str, Any] = {}
    for key, value in defaults.items():
        home = _TABLE_OF.get(key)
        if home is not None and key not in _SPEC_NAMES:  # max_size is also an alias of size
            problems.append(f"[defaults] holds painting settings only: {key} belongs {home} — in TOML a key "
                            "belongs to the [table] above it, so move the line up there")
            continue
        try:
            Settings.parse({key: value})
        except ParamError as error:
            problems.append(f"[defaults] {error}")
            continue
        good[key] = value
    try:
        return Settings.parse(good)
    except ParamError as error:  # settings that disagree with each other (steps and steps_per_epoch, …)
        problems.append(f"[defaults] {error}")
        return Settings()


def _over_limits(base: Settings, limits: Limits) -> list[str]:
    """[defaults] above everyone's caps in [limits], worded for the one who edits the file."""
    out = []
    if base.pixels is None and base.size > limits.max_size:
        out.append(f"[defaults] size = {base.size} is over [limits] max_size = {limits.max_size} — lower the "
                   "one or raise the other (roles' higher caps go under [[limits.roles]])")
    if base.pixels is not None and base.pixels > limits.max_size**2:
        out.append(f"[defaults] pixels = {base.pixels} is over [limits] max_size = {limits.max_size} squared "
                   f"({limits.max_size**2}) — lower the one or raise the other")
    if base.steps > limits.max_steps:
        out.append(f"[defaults] steps = {base.steps} is over [limits] max_steps = {limits.max_steps} — lower "
                   "the one or raise the other")
    side = base.size if base.pixels is None else math.isqrt(base.pixels)
    style, cap = round(side * base.style_scale), max(limits.max_style_size or 0, limits.max_size)
    if style > cap and side <= limits.max_size:  # (a size over its cap is reported above)
        out.append(f"[defaults] style_scale = {base.style_scale:g} paints the style pictures at {style} px "
                   f"({side} px × {base.style_scale:g}), over [limits] max_style_size = {cap} (when left out, "
                   "max_size) — lower style_scale or size, or raise max_style_size")
    return out


def old_scale_weights(config: Config) -> list[str]:
    """Warnings for [defaults] style_weight and tv_weight that look like the scale before 1.0.0 (the losses
    became relative errors and the weights mean 10× what they did; CHANGELOG.md). Not errors: such a
    value is allowed, but rarely meant."""
    out = []
    for name, old_default in (("style_weight", 100.0), ("tv_weight", 50.0)):
        value = getattr(config.defaults, name)
        if value >= old_default:
            out.append(f"[defaults] {name} = {value:g} looks like the scale before version 1.0.0, when the default "
                       f"was {old_default:g} (now {getattr(Settings(), name):g}): divide it by 10 for about the same "
                       "balance (CHANGELOG.md, \"Upgrading to 1.0.0\")")
    return out


def _token(env: Mapping[str, str], configured: str, problems: list[str]) -> str | None:
    """$DISCORD_TOKEN, else the contents of the file $DISCORD_TOKEN_FILE names, else `token` from the file;
    None (and a problem) when those cannot be read."""
    direct, path = env.get(TOKEN_ENV), env.get(TOKEN_FILE_ENV)
    if direct and path:
        problems.append(f"set {TOKEN_ENV} or {TOKEN_FILE_ENV}, not both")
        return None
    if not path:
        return direct or configured
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        problems.append(f"{TOKEN_FILE_ENV}: cannot read {path} ({error.strerror})")
    except UnicodeDecodeError:
        problems.append(f"{TOKEN_FILE_ENV}: {path} is not a text file")
    return None


def _build(cls: type, table: Mapping[str, Any], section: str, problems: list[str]) -> Any:
    """Instantiate dataclass `cls` from a TOML table, checking keys, types and minimums; a refused key is
    added to `problems` and left at its default."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.name != "defaults"}
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{section}{key}"
        f = known.get(key)
        if f is None:
            problems.append(f"unknown key {name!r}{_hint(key, known, section)}")
            continue
        try:
            converted = _convert(value, hints[key], name, problems)
        except _Invalid as error:
            problems.append(str(error))
            continue
        minimum = f.metadata.get("min")
        if minimum is not None and converted < minimum:
            problems.append(f"{name} must be at least {minimum:g}")
            continue
        values[key] = converted
    missing = [n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING
               and n not in values]
    if missing:
        raise _Invalid(f"{section}{missing[0]} is required")
    return cls(**values)


def _hint(key: str, known: Iterable[str], section: str) -> str:
    """' — did you mean …?' for an unknown key: a near spelling, or the table where a key of that name lives."""
    close = difflib.get_close_matches(key, list(known), n=1)
    if close:
        return f" — did you mean {section}{close[0]}?"
    home = _TABLE_OF.get(key)
    if home is not None:
        return f" — {key} belongs {home} (a key belongs to the [table] above it)"
    if key in _SPEC_NAMES:
        return f" — {key} is a painting setting: it goes under [defaults] (a key belongs to the [table] above it)"
    return ""


def _convert(value: Any, hint: Any, name: str, problems: list[str]) -> Any:
    """`value` as type `hint`; the error names the key and the type, never the value (it may be secret)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # X | None: TOML has no null, so only X arrives here
        return _convert(value, next(a for a in args if a is not type(None)), name, problems)
    if origin in (tuple, frozenset):
        if not isinstance(value, list):
            raise _Invalid(f"{name} must be a list")
        items = [_convert(v, args[0], f"{name}[{i}]", problems) for i, v in enumerate(value)]
        return origin(items)
    if is_dataclass(hint):
        if not isinstance(value, dict):
            raise _Invalid(f"{name} must be a table")
        return _build(hint, value, f"{name}.", problems)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        wanted = _TYPE_NAMES.get(hint, hint.__name__)
        article = "an" if wanted[0] in "aeiou" else "a"
        raise _Invalid(f"{name} must be {article} {wanted}, not {_TYPE_NAMES.get(type(value), type(value).__name__)}")
    return value


def _stack_overrides(config: Config, env: Mapping[str, str], problems: list[str]) -> Config:
    """[jobs] backend and workers as the environment sets them (compose.yaml's Celery stack)."""
    backend, workers = env.get(BACKEND_ENV) or config.jobs.backend, env.get(WORKERS_ENV) or str(config.workers)
    if not workers.isdigit() or int(workers) < 1:
        problems.append(f"{WORKERS_ENV} must be a whole number of at least 1, not {workers!r}")
        workers = str(config.workers)
    return dataclasses.replace(config, workers=int(workers), jobs=dataclasses.replace(config.jobs, backend=backend))


def _uid() -> int | str:
    return os.getuid() if hasattr(os, "getuid") else "?"


_TYPE_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean", list: "list", dict: "table"}
_SPEC_NAMES = {name for spec in SPECS for name in (spec.name, *spec.aliases)}
# Where each key of a table lives, for a key written in the wrong one: "under [access]", "at the top of the file".
_TABLES = {"access": Access, "limits": Limits, "cooldown": Cooldown, "jobs": Jobs, "storage": Storage}
_TABLE_OF = {f.name: "at the top of the file, above every [table]" for f in fields(Config)
             if f.name not in (*_TABLES, "defaults")}
_TABLE_OF.update({f.name: f"under [{table}]" for table, cls in _TABLES.items() for f in fields(cls)})
