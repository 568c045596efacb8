"""What users read: status lines, the result embed, `help` and `queue` — all generated from SPECS.

Kept apart from the cog so Discord's size limits (2000-char messages, 25 fields and 6000 chars per
embed, the upload limit) are handled and tested in one place; `fit` is the one cap every outgoing
text passes (a longer one is refused by Discord, and the user would see nothing).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import discord
from PIL import Image

from engine import SPECS, Settings, format_value, masks, stamp
from engine.stamp import Stamp, StyleCredit

from .config import Caps
from .jobs import ClipProgress, Job, Snapshot, Status, short_id
from .parsing import inert, quoted_name

MESSAGE_LIMIT = 2000
EMBED_FIELDS = 25
EMBED_TOTAL = 6000  # characters of all the embeds of one message together
MESSAGE_EMBEDS = 10
FIELD_VALUE = 1024
BAR_WIDTH = 20
COLOUR = discord.Colour.from_rgb(88, 101, 242)


def fit(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` within Discord's message limit: cut at a line break where there is one, marked with …"""
    if len(text) <= limit:
        return text
    head, newline, _ = text[: limit - 2].rpartition("\n")
    return head + "\n…" if newline else text[: limit - 1] + "…"


MASK_HELP = ("**Two styles in two regions:** attach the photo, painting 1, painting 2 and a black-and-white mask "
             "(white → painting 1, black → painting 2, or the photo with one painting), then "
             "`{prefix}stylize mask=last`; or give `mask=https://…/mask.png`. A coloured mask says which colour "
             "goes where: `regions=red:1,blue:2,white:photo`.")


def usage(prefix: str) -> str:
    """How to ask, with examples for every way of giving the two pictures."""
    return (f"**Usage:** `{prefix}stylize` with the photo and then the style image attached, "
            f"or as links, or reply to a photo and attach the style. Settings are key=value:\n"
            f"`{prefix}stylize https://…/photo.jpg https://…/painting.jpg steps=300 size=512`\n"
            f"`/stylize paint content:<photo> style:<painting> style_weight:30`\n"
            f"Or name a style instead of attaching one: `{prefix}stylize starry_night` with the photo "
            f"(`{prefix}stylize styles` shows them all).\n"
            f"Every setting: `{prefix}stylize help`.")


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    filled = min(width, max(0, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


def status_text(job_id: str, snapshot: Snapshot) -> str:
    """The live status line of a pending job, and the backend's note (e.g. a retry) under it."""
    line = _status_line(short_id(job_id), snapshot)
    return f"{line}\n🔁 {snapshot.note}" if snapshot.note else line


def _status_line(job_id: str, snapshot: Snapshot) -> str:
    if snapshot.status is Status.QUEUED:
        ahead = (snapshot.position or 1) - 1
        return (f"⏳ Queued — number **{snapshot.position}** in line"
                f"{f' ({ahead} ahead of you)' if ahead else ' (next up)'}. Job `{job_id}`")
    progress = snapshot.progress
    if progress is None:
        return f"🎨 Starting… Job `{job_id}`"
    fraction = progress.step / progress.total
    eta = progress.eta
    left = f" · about {duration(eta)} left" if eta is not None and progress.step < progress.total else ""
    frame = f"frame {progress.frame}/{progress.frames} · " if isinstance(progress, ClipProgress) else ""
    return (f"🎨 `{bar(fraction)}` **{fraction:.0%}** · {frame}step {progress.step}/{progress.total} · "
            f"pass {progress.scale}/{progress.scales} at {progress.size[0]}×{progress.size[1]}{left}. Job `{job_id}`")


def settings_lines(settings: Settings, given: frozenset[str]) -> str:
    """Every effective hyperparameter, one per line; those the user set are bold with a •."""
    return "\n".join(f"• **{spec.name} = {format_value(value)}**" if spec.name in given
                     else f"{spec.name} = {format_value(value)}" for spec, value in settings.items())


def credits_text(styles: Sequence[StyleCredit]) -> str | None:
    """The echo's list of styles in blend order, library ones with their credits; None without library styles."""
    if not any(s.name for s in styles):
        return None
    return "\n".join(f"{quoted_name(s.name)} — {inert(s.credit or '')}" if s.name else "your picture" for s in styles)


def result_embed(job: Job, given: frozenset[str], filename: str, styles: str | None = None) -> discord.Embed:
    """The echo that travels with the picture: settings as run (seed included), the library styles with
    their credits, wall time, device, losses."""
    result = job.result
    assert result is not None
    embed = discord.Embed(title="Your painting", colour=COLOUR,
                          description="**Settings** (• = set by you)\n" + settings_lines(result.settings, given))
    if styles:
        embed.add_field(name="Styles", value=styles[:FIELD_VALUE], inline=False)
    if job.mask is not None:
        regions = masks.plan(result.settings, len(job.styles), masked=True)
        embed.add_field(name="Mask", value=", ".join(f"{r.colour} → {'style ' + r.target if r.target.isdigit() else r.target}"
                                                    for r in regions), inline=False)
    if job.durations_ms:
        frames = len(job.durations_ms)  # one when every frame was merged into the first (max_fps)
        embed.add_field(name="Animation", value=f"{frames} frame{'s' if frames > 1 else ''}, "
                                                f"{sum(job.durations_ms) / 1000:g} s")
    embed.add_field(name="Time", value=duration(result.elapsed))
    embed.add_field(name="Device", value=result.device)
    losses = " · ".join(f"{name} {value:.4g}" for name, value in result.losses.items())
    embed.add_field(name="Final losses", value=losses or "—", inline=False)
    embed.set_image(url=f"attachment://{filename}")
    embed.set_footer(text=f"Job {job.short} · {result.steps} steps")
    return embed


def settings_text(settings: Settings) -> str:
    """The settings that differ from the defaults as `key=value` words, ready to paste into a command."""
    default = Settings()
    return " ".join(f"{spec.name}={format_value(value)}" for spec, value in settings.items()
                    if value != getattr(default, spec.name) and spec.name != "steps_per_epoch")


def settings_embed(found: Stamp, source: str) -> discord.Embed:
    """The "Stylize: settings" answer: every setting a picture was made with, its styles, and where that came from."""
    embed = discord.Embed(title="Settings of this painting", colour=COLOUR,
                          description=settings_lines(found.settings, frozenset()))
    credits = credits_text(found.styles)
    if credits:
        embed.add_field(name="Styles", value=credits[:FIELD_VALUE], inline=False)
    text = settings_text(found.settings)
    embed.add_field(name="To paint with these", value=f"`{text}`"[:FIELD_VALUE] if text else "the defaults",
                    inline=False)
    embed.set_footer(text=source)
    return embed


def help_embeds(prefix: str, base: Settings, caps: Caps) -> list[discord.Embed]:
    """One field per hyperparameter (name, aliases, meaning, default, range), split over embeds as needed."""
    first = discord.Embed(title="Stylize — settings", colour=COLOUR,
                          description=usage(prefix) + "\n\n" + MASK_HELP.format(prefix=prefix)
                          + f"\n\nHere your caps are size ≤ {caps.max_size} and steps ≤ {caps.max_steps}; an "
                          f"animated photo (`animate=true`) may last ≤ {caps.motion.max_seconds:g} s and have ≤ "
                          f"{caps.motion.max_frames} frames once frames faster than {caps.motion.max_fps:g} per second "
                          "are merged.")
    embeds = [first]
    for spec in SPECS:
        name = spec.name + (f" (or {', '.join(spec.aliases)})" if spec.aliases else "")
        value = (f"{spec.help}\ndefault **{format_value(getattr(base, spec.name))}** · "
                 f"{spec.describe_range()}")[:FIELD_VALUE]
        embed = embeds[-1]
        if len(embed.fields) == EMBED_FIELDS or len(embed) + len(name) + len(value) > EMBED_TOTAL:
            embed = discord.Embed(colour=COLOUR)
            embeds.append(embed)
        embed.add_field(name=name[:256], value=value, inline=False)
    return embeds


def help_messages(prefix: str, base: Settings, caps: Caps) -> list[list[discord.Embed]]:
    """help_embeds grouped into messages: Discord's 6,000 characters hold for all the embeds of one message."""
    messages: list[list[discord.Embed]] = []
    for embed in help_embeds(prefix, base, caps):
        if not messages or len(messages[-1]) == MESSAGE_EMBEDS or \
                sum(len(e) for e in messages[-1]) + len(embed) > EMBED_TOTAL:
            messages.append([])
        messages[-1].append(embed)
    return messages


def queue_text(jobs: Sequence[Job], shown: Callable[[Job], bool] = lambda job: True) -> str:
    """Running jobs, then waiting ones in the order they will run, cut to one message. Only the `shown`
    ones are listed (numbered by their place in the whole line); the others are only counted."""
    if not jobs:
        return "The queue is empty — nothing is running or waiting."
    lines = []
    waiting = hidden = 0
    for job in jobs:
        running = job.status is Status.RUNNING
        waiting += not running
        if not shown(job):
            hidden += 1
            continue
        what = f"<@{job.user_id}> · size {job.settings.size}, {job.settings.steps} steps · job `{job.short}`"
        if running:
            done = f" · {job.progress.step / job.progress.total:.0%}" if job.progress else ""
            lines.append(f"🎨 running: {what}{done}")
        else:
            lines.append(f"{waiting}. {what}")
    if hidden:
        lines.append(f"…and {hidden} job{'s' if hidden > 1 else ''} from elsewhere.")
    return fit(f"**Queue** ({waiting} waiting)\n" + "\n".join(lines))


def encode_for_upload(image: Image.Image, limit: int, name: str = "stylized",
                      settings: Stamp | None = None) -> tuple[bytes, str] | None:
    """PNG if it fits under `limit` bytes, else the best JPEG quality that fits; None if nothing does.
    `settings` travel inside the file (engine.stamp: PNG text chunk, JPEG comment)."""
    png = stamp.save(image, settings, "PNG", optimize=False)
    if len(png) <= limit:
        return png, f"{name}.png"
    rgb = image.convert("RGB")
    for quality in (95, 90, 85, 75, 60):
        jpeg = stamp.save(rgb, settings, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
        if len(jpeg) <= limit:
            return jpeg, f"{name}.jpg"
    return None


def preview_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
