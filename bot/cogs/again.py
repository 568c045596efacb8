"""Paint it again: the buttons under every result and the "Stylize: paint again" context menu.

Each queues a new job from a finished job's kept inputs (bot.storage, [storage] keep_days) for whoever
clicks, under their own caps, per-user limit and cooldown, and the job replies to the result it came
from, so the channel reads as a history. The buttons are DynamicItems whose custom_id holds the job's
64-bit id and what to change, so they work on every result message, after a restart too; the menu
finds the job by its result's message id. ⤴ Bigger starts from the result picture itself (the
message's attachment) and paints from the photo as it was taken in (kept up to the largest size any
role may ask for, see Intake.keep_side).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from functools import partial
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from engine import SPECS, Settings, format_value

from ..checks import enabled_here
from ..config import Caps
from ..errors import explain, tell
from ..jobs import settings_from
from ..painting.buttons import AGAIN_ID, OPS, again_button
from ..painting.request import Origin, Request, Sources
from ..painting.service import Change
from ..parsing import UsageError, split_arguments
from ..storage import KeptJob, StorageUnavailable

if TYPE_CHECKING:
    from ..app import StylizeBot

log = logging.getLogger(__name__)

STYLE_STEP = 2.0
"""➕ More style multiplies style_weight by this, ➖ Less style divides by it (the one place it is set). On the
frontier's six pairs (128 px, 100 steps, style_weight 5 → 10 → 20) each doubling cut yardstick (a)'s style
distance by a median 32 % and 31 % (12–42 % by pair): at least the 25 % a click should visibly make."""
BIGGER_STEPS = 3  # ⤴ Bigger paints in one pass with 1/BIGGER_STEPS of the steps: the picture is painted already
MODAL_TIMEOUT = 900.0  # seconds a Tweak form stays open (an interaction's follow-ups last 15 minutes)


class AgainButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=AGAIN_ID):
    """One button under a result; the job id and the change live in its custom_id, so no state is kept."""

    def __init__(self, job_id: str, op: str) -> None:
        super().__init__(again_button(job_id, op))
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


def prefill(message: discord.Message, me: discord.abc.User | None) -> str | None:
    """The Tweak form's text, read from the result message's echo (no database before the form, which must
    be the first answer, within 3 s): the settings the user chose, and the seed (unchanged, it paints the
    same). None if `message` is not one of the bot's results."""
    if me is None or message.author.id != me.id or not message.embeds:
        return None
    lines = (message.embeds[0].description or "").splitlines()
    if not lines or not lines[0].startswith("**Settings**"):
        return None
    chosen = {}
    for line in lines[1:]:
        mine = line.startswith("• **")
        name, _, value = line.removeprefix("• **").removesuffix("**").partition(" = ")
        if mine or name == "seed":
            chosen[name] = value
    return "\n".join(f"{spec.name}={chosen[spec.name]}" for spec in SPECS if spec.name in chosen)


class TweakModal(discord.ui.Modal, title="Tweak and paint again"):
    """The settings of a kept job as key=value text; submitting paints it again with what the text says."""

    settings: discord.ui.Label[TweakModal] = discord.ui.Label(
        text="Settings, key=value", description="A setting left out takes this server's default.",
        component=discord.ui.TextInput(style=discord.TextStyle.paragraph, required=False, max_length=4000))

    def __init__(self, cog: Again, message: discord.Message, job_id: str | None, text: str) -> None:
        super().__init__(timeout=MODAL_TIMEOUT)
        self.cog, self.message, self.job_id = cog, message, job_id
        self.text.default = text

    @property
    def text(self) -> discord.ui.TextInput[TweakModal]:
        return self.settings.component  # type: ignore[return-value]

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        await self.cog.tweaked(interaction, self.message, self.job_id, self.text.value)


class Again(commands.Cog):
    """Paint a result again: with changes (buttons), or with settings of your own (Tweak, the menu)."""

    def __init__(self, bot: StylizeBot) -> None:
        self.bot = bot
        self.painter = bot.painter
        self.menu = app_commands.ContextMenu(name="Stylize: paint again", callback=self.paint_again)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(AgainButton)
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
        self.bot.remove_dynamic_items(AgainButton)

    async def clicked(self, interaction: discord.Interaction, job_id: str, op: str) -> None:
        assert isinstance(interaction.message, discord.Message)  # a button's interaction comes with its message
        if not await self._keeps(interaction):
            return
        if op == "tweak":
            await self._tweak_form(interaction, interaction.message, job_id)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        kept = await self._kept(interaction, job_id=job_id)
        if kept is None:
            return

        def change(settings: Settings, given: frozenset[str], caps: Caps) -> tuple[Settings, frozenset[str]]:
            return changed(op, settings, given, caps)

        await self._paint(interaction, kept, interaction.message, OPS[op].emoji, change=change,
                          start=op == "bigger")

    async def paint_again(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Apps → Stylize: paint again — the Tweak form for one of the bot's results."""
        if await self._keeps(interaction):
            await self._tweak_form(interaction, message, None)

    async def _tweak_form(self, interaction: discord.Interaction, message: discord.Message, job_id: str | None
                          ) -> None:
        text = prefill(message, self.bot.user)
        if text is None:
            await tell(interaction, f"I no longer have a photo and settings for that message (is it one of my "
                                    f"paintings?). To paint it again, {self._again()}.")
            return
        await interaction.response.send_modal(TweakModal(self, message, job_id, text))

    async def tweaked(self, interaction: discord.Interaction, message: discord.Message, job_id: str | None,
                      text: str) -> None:
        """The Tweak form was sent: its settings on top of this server's defaults, like a new command's."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        kept = await self._kept(interaction, job_id=job_id, message_id=None if job_id else message.id)
        if kept is None:
            return
        args = split_arguments(text, links_allowed=False)
        if args.names:
            await tell(interaction, f"⚠️ Only settings change here (key=value) — `{args.names[0]}` isn't one. "
                                    f"For other pictures, start anew with `{self.bot.config.prefix}stylize`.")
            return
        await self._paint(interaction, kept, message, OPS["tweak"].emoji, raw=args.raw)

    # ----------------------------------------------------------------------------------- helpers

    def _again(self) -> str:
        return f"send the photo and the style again with `{self.bot.config.prefix}stylize` (or `/stylize paint`)"

    async def _keeps(self, interaction: discord.Interaction) -> bool:
        """Whether the bot works here and keeps finished jobs; if not, the user is told why."""
        if not await enabled_here(interaction, self.bot.config):
            return False
        if self.bot.store.keep_days <= 0:
            await tell(interaction, f"This bot keeps no photos or settings of finished jobs — to paint it again, "
                                    f"{self._again()}.")
            return False
        return True

    async def _kept(self, interaction: discord.Interaction, *, job_id: str | None = None,
                    message_id: int | None = None) -> KeptJob | None:
        """The kept job a click or the form is about; None after telling the user why there is none."""
        store = self.bot.store
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
                                    f"at once. To paint it again, {self._again()}.")
        return kept

    async def _paint(self, interaction: discord.Interaction, kept: KeptJob, message: discord.Message, emoji: str, *,
                     raw: dict[str, Any] | None = None, change: Change | None = None, start: bool = False) -> None:
        """Queue a job for the user of `interaction` (deferred) from `kept`: its settings `change`d, or `raw`
        key=value on this server's defaults, prepared like any request (role defaults, caps, blend, cooldown),
        replying to `message`; `start`: from the picture on `message`. Tells them how it went, in a note only
        they see."""
        user, painter = interaction.user, self.painter
        pictures = kept.pictures
        styles = tuple(pictures[1:len(pictures) - kept.masked])
        sources = Sources(pictures[0], styles, pictures[-1] if kept.masked else None)
        try:
            plan = await painter.prepare(
                user, interaction.guild_id, lambda caps: sources, raw=raw,
                kept=None if raw is not None else (settings_from(kept.settings), frozenset(kept.given)),
                change=change, cooldown=painter.cooldowns.commands)
            if start and not message.attachments:
                raise UsageError("That message has no picture left to start from.")
            request = Request(user.id, interaction.guild_id, Origin.at(message.channel, message.id))
            job = await painter.submit(request, plan, partial(painter.intake.kept, kept, plan.settings, plan.caps,
                                                              message.attachments[0] if start else None))
        except Exception as error:
            await tell(interaction, f"⚠️ {explain(error, f'painting job {kept.id} again')}")
            return
        await tell(interaction, f"{emoji} Queued as job `{job.short}` — it will answer under the picture.")


async def setup(bot: StylizeBot) -> None:
    await bot.add_cog(Again(bot))
