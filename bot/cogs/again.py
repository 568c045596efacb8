"""Paint it again: the buttons under every result and the "Stylize: paint again" context menu.

Each queues a new job from a finished job's kept inputs (bot.storage, [storage] keep_days) for whoever
clicks, under their own caps, per-user limit and cooldown, and the job replies to the result it came
from, so the channel reads as a history. The buttons are DynamicItems whose custom_id holds the job's
64-bit id and what to change, so they work on every result message, after a restart too; the menu
finds the job by its result's message id. ⤴ Bigger starts from the result picture itself (the
message's attachment) and paints from the photo as it was taken in (kept up to the largest size any
role may ask for, see Stylize.keep_side).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands
from PIL import Image

from engine import SPECS, Settings, format_value
from engine.stamp import StyleCredit

from ..config import Caps
from ..inputs.images import decode_image
from ..jobs import settings_from
from ..parsing import UsageError, check_blend, parse_settings, split_arguments
from ..render import fit
from ..storage import KeptJob, StorageUnavailable
from .stylize import (OUR_FAULT, Inputs, Origin, Request, Stylize, enabled_here, role_ids, slow_down, tell,
                      user_facing)

if TYPE_CHECKING:
    from ..app import StylizeBot

log = logging.getLogger(__name__)

STYLE_STEP = 2.0
"""➕ More style multiplies style_weight by this, ➖ Less style divides by it (the one place it is set). On the
frontier's six pairs (128 px, 100 steps, style_weight 5 → 10 → 20) each doubling cut yardstick (a)'s style
distance by a median 32 % and 31 % (12–42 % by pair): at least the 25 % a click should visibly make."""
BIGGER_STEPS = 3  # ⤴ Bigger paints in one pass with 1/BIGGER_STEPS of the steps: the picture is painted already
MODAL_TIMEOUT = 900.0  # seconds a Tweak form stays open (an interaction's follow-ups last 15 minutes)


@dataclass(frozen=True)
class Op:
    label: str
    emoji: str
    row: int


OPS = {"variation": Op("Variation", "🎲", 0), "more": Op("More style", "➕", 0), "less": Op("Less style", "➖", 0),
       "colours": Op("Keep colours", "🎨", 1), "bigger": Op("Bigger", "⤴️", 1), "tweak": Op("Tweak", "✏️", 1)}


class AgainButton(discord.ui.DynamicItem[discord.ui.Button[Any]],
                  template=rf"stylize:again:(?P<job>[0-9a-f]+):(?P<op>{'|'.join(OPS)})"):
    """One button under a result; the job id and the change live in its custom_id, so no state is kept."""

    def __init__(self, job_id: str, op: str) -> None:
        look = OPS[op]
        super().__init__(discord.ui.Button(label=look.label, emoji=look.emoji, row=look.row,
                                           style=discord.ButtonStyle.secondary,
                                           custom_id=f"stylize:again:{job_id}:{op}"))
        self.job_id, self.op = job_id, op

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: Any, /
                             ) -> AgainButton:
        return cls(match["job"], match["op"])

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog(Again.__cog_name__)  # type: ignore[attr-defined]
        if isinstance(cog, Again):
            await cog.clicked(interaction, self.job_id, self.op)


def changed(op: str, settings: Settings, given: frozenset[str], caps: Caps) -> tuple[Settings, frozenset[str]]:
    """The settings a button asks for, from those a job ran with, and which of them the user chose."""
    if op == "variation":
        return dataclasses.replace(settings, seed=None), given - {"seed"}
    if op in ("more", "less"):
        weight = settings.style_weight * STYLE_STEP if op == "more" else settings.style_weight / STYLE_STEP
        return Settings.parse({"style_weight": weight}, settings), given | {"style_weight"}
    if op == "colours":
        colour = "none" if settings.preserve_color == "luminance" else "luminance"
        return dataclasses.replace(settings, preserve_color=colour), given | {"preserve_color"}
    assert op == "bigger", op
    size = min(2 * settings.size, caps.max_size, math.floor(caps.max_style_size / settings.style_scale))
    if size <= settings.size:
        raise UsageError(f"This picture is {settings.size} px already, the largest you may ask for here.")
    steps = max(1, round(settings.steps / BIGGER_STEPS))
    return Settings.parse({"size": size, "steps": steps, "scales": 1}, settings), given | {"size", "steps", "scales"}


def prefill(settings: Settings, given: frozenset[str]) -> str:
    """The Tweak form's text: the settings the user chose, and the seed (unchanged, it paints the same)."""
    return "\n".join(f"{spec.name}={format_value(getattr(settings, spec.name))}" for spec in SPECS
                     if spec.name in given or spec.name == "seed")


class TweakModal(discord.ui.Modal, title="Tweak and paint again"):
    """The settings of a kept job as key=value text; submitting paints it again with what the text says."""

    settings: discord.ui.Label[TweakModal] = discord.ui.Label(
        text="Settings, key=value", description="A setting left out takes this server's default.",
        component=discord.ui.TextInput(style=discord.TextStyle.paragraph, required=False, max_length=4000))

    def __init__(self, cog: Again, kept: KeptJob, message: discord.Message) -> None:
        super().__init__(timeout=MODAL_TIMEOUT)
        self.cog, self.kept, self.message = cog, kept, message
        self.text.default = prefill(settings_from(kept.settings), frozenset(kept.given))

    @property
    def text(self) -> discord.ui.TextInput[TweakModal]:
        return self.settings.component  # type: ignore[return-value]

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        await self.cog.tweaked(interaction, self.kept, self.message, self.text.value)


class Again(commands.Cog):
    """Paint a result again: with changes (buttons), or with settings of your own (Tweak, the menu)."""

    def __init__(self, bot: StylizeBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Stylize: paint again", callback=self.paint_again)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(AgainButton)
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
        self.bot.remove_dynamic_items(AgainButton)

    @staticmethod
    def result_view(job_id: str) -> discord.ui.View:
        """The buttons under a result: two rows of three."""
        view = discord.ui.View(timeout=None)
        for op in OPS:
            view.add_item(AgainButton(job_id, op))
        return view

    async def clicked(self, interaction: discord.Interaction, job_id: str, op: str) -> None:
        kept = await self._kept(interaction, job_id=job_id)
        if kept is None:
            return
        assert isinstance(interaction.message, discord.Message)  # a button's interaction comes with its message
        if op == "tweak":
            await interaction.response.send_modal(TweakModal(self, kept, interaction.message))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        settings, given = settings_from(kept.settings), frozenset(kept.given)
        await self._paint(interaction, kept, interaction.message, lambda caps: changed(op, settings, given, caps),
                          OPS[op].emoji, start=op == "bigger")

    async def paint_again(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Apps → Stylize: paint again — the Tweak form for one of the bot's results."""
        kept = await self._kept(interaction, message_id=message.id)
        if kept is not None:
            await interaction.response.send_modal(TweakModal(self, kept, message))

    async def tweaked(self, interaction: discord.Interaction, kept: KeptJob, message: discord.Message,
                      text: str) -> None:
        """The Tweak form was sent: its settings on top of this server's defaults, like a new command's."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        base = await self.bot.server_defaults.settings(interaction.guild_id)

        def settings_for(caps: Caps) -> tuple[Settings, frozenset[str]]:
            args = split_arguments(text, links_allowed=False)
            if args.names:
                raise UsageError(f"Only settings change here (key=value) — `{args.names[0]}` isn't one. For other "
                                 f"pictures, start anew with `{self.bot.config.prefix}stylize`.")
            return parse_settings(args.raw, base)

        await self._paint(interaction, kept, message, settings_for, OPS["tweak"].emoji)

    # ----------------------------------------------------------------------------------- helpers

    async def _kept(self, interaction: discord.Interaction, *, job_id: str | None = None,
                    message_id: int | None = None) -> KeptJob | None:
        """The kept job a click or the menu is about; None after telling the user why there is none."""
        config, store = self.bot.config, self.bot.store
        again = (f"send the photo and the style again with `{config.prefix}stylize` (or `/stylize paint`)")
        if not await enabled_here(interaction, config):
            return None
        if store.keep_days <= 0:
            await tell(interaction, f"This bot keeps no photos or settings of finished jobs — to paint it again, "
                                    f"{again}.")
            return None
        try:
            kept = await store.kept_job(job_id, message_id=message_id)
        except StorageUnavailable as error:
            await tell(interaction, f"⚠️ I can't paint it again: {error}.")
            return None
        if kept is None:
            what = (f"the photo and style of job `{job_id[:8]}`" if job_id is not None
                    else "a photo and settings for that message (is it one of my paintings?)")
            days = format_value(float(store.keep_days))
            await tell(interaction, f"I no longer have {what}: I keep them {days} days, and `forget` deletes them "
                                    f"at once. To paint it again, {again}.")
        return kept

    async def _paint(self, interaction: discord.Interaction, kept: KeptJob, message: discord.Message,
                     settings_for: Callable[[Caps], tuple[Settings, frozenset[str]]], emoji: str, *,
                     start: bool = False) -> None:
        """Queue a job for the user of `interaction` (deferred) from `kept` with the settings `settings_for`
        gives under their caps, replying to `message`; `start`: from the picture on `message`. Tells them
        how it went, in a note only they see."""
        stylize = self.bot.get_cog(Stylize.__cog_name__)
        assert isinstance(stylize, Stylize)
        user = interaction.user
        try:
            retry = stylize.cooldown(user.id)
            if retry is not None:
                raise UsageError(slow_down(retry))
            caps = self.bot.config.limits.caps_for(role_ids(user))
            settings, given = settings_for(caps)
            caps.check(settings)
            check_blend(settings, len(kept.pictures) - 1 - kept.masked, masked=kept.masked)
            if start and not message.attachments:
                raise UsageError("That message has no picture left to start from.")

            async def gather() -> Inputs:
                photo, *styles = await self._pictures(kept)
                caps.check(settings, photo.size)  # the style cap at the size this photo's styles will be painted
                mask = styles.pop() if kept.masked else None
                init = await stylize.load(message.attachments[0], "The picture", settings) if start else None
                credits = tuple(StyleCredit(**c) for c in json.loads(kept.styles)) or (StyleCredit(),) * len(styles)
                return Inputs(kept.user_id, photo, tuple(styles), credits, mask, init)

            request = Request(user.id, interaction.guild_id, message.id, Origin.resumed(message.channel, message.id))
            job = await stylize.submit(request, settings, given, gather)
        except Exception as error:
            cause = user_facing(error)
            if cause is None:
                log.error("painting job %s again failed", kept.id, exc_info=error)
            text = str(cause) if cause else OUR_FAULT
            await interaction.followup.send(fit(f"⚠️ {text}"), ephemeral=True)
            return
        await interaction.followup.send(f"{emoji} Queued as job `{job.short}` — it will answer under the picture.",
                                        ephemeral=True)

    async def _pictures(self, kept: KeptJob) -> list[Image.Image]:
        """The kept pictures, decoded off the event loop: the photo, the styles, then the mask."""
        data = [await self.bot.store.picture(name) for name in kept.pictures]
        pixels = self.bot.config.limits.input_pixels
        loop = asyncio.get_running_loop()
        return [await loop.run_in_executor(None, lambda d=d: decode_image(d, max_pixels=pixels)) for d in data]


async def setup(bot: StylizeBot) -> None:
    await bot.add_cog(Again(bot))
