"""Message context menus (Apps → …): "Stylize: settings" and "Stylize: use this photo".

"Stylize: settings" answers, only to whoever asked, how a painting was made: from the bot's record of
the job (found by the result message's id) while it is kept, else from the settings inside the picture
(engine.stamp) — Discord may strip those, so the record comes first. "Stylize: use this photo" opens a
modal asking for a library style (a select when the library has at most 25 styles, else a text field
checked against the names) and settings, then paints the message's picture like `stylize` would.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from engine import stamp
from engine.stamp import Stamp

from ..checks import enabled_here, too_fast
from ..errors import explain, tell
from ..painting.request import Origin, Request, Sources
from ..parsing import UsageError, split_arguments
from ..render import settings_embed
from ..storage import StorageUnavailable

if TYPE_CHECKING:
    from ..app import StylizeBot

SELECT_LIMIT = 25  # options in a Discord select menu
PICTURE_TYPES = ("image/png", "image/jpeg")
NO_SETTINGS = ("I found no settings for that picture: I keep my records of a painting for a while only, and "
               "Discord may strip the settings I write into the file (PNG and JPEG) — or I didn't paint it.")


class Menus(commands.Cog):
    """The message context menus; `cog_load` adds them to the tree and `cog_unload` takes them away."""

    def __init__(self, bot: StylizeBot) -> None:
        self.bot = bot
        self.menus = [app_commands.ContextMenu(name="Stylize: settings", callback=self.show_settings),
                      app_commands.ContextMenu(name="Stylize: use this photo", callback=self.use_photo)]

    async def cog_load(self) -> None:
        for menu in self.menus:
            self.bot.tree.add_command(menu)

    async def cog_unload(self) -> None:
        for menu in self.menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)

    async def show_settings(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """How the picture in `message` was made, for the asker's eyes only."""
        if not await enabled_here(interaction, self.bot.config, posting=False):  # the answer is private
            return
        if await too_fast(interaction, self.bot.painter.cooldowns.buttons):  # it downloads pictures
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        found, source = None, ""
        try:
            kept = await self.bot.store.kept_job(message_id=message.id)
        except StorageUnavailable:
            kept = None
        if kept is not None:
            found = Stamp.from_values(json.loads(kept.settings), json.loads(kept.styles))
            source = "From my record of this job."
        if found is None:
            found = await self._stamp_in(message)
            source = "Read from the settings inside the picture."
        if found is None:
            await interaction.followup.send(NO_SETTINGS, ephemeral=True)
        else:
            await interaction.followup.send(embed=settings_embed(found, source), ephemeral=True)

    async def use_photo(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Open the modal that paints this message's picture with a library style."""
        if not await enabled_here(interaction, self.bot.config):
            return
        photo = next((a for a in message.attachments if (a.content_type or "").startswith("image/")), None)
        if photo is None:
            await tell(interaction, "That message has no picture to paint — pick one with an image attached.")
            return
        styles = await self.bot.library.styles(interaction.guild_id)
        await interaction.response.send_modal(UsePhoto(self, message, photo, [(s.name, s.credit) for s in styles]))

    async def paint(self, interaction: discord.Interaction, message: discord.Message, photo: discord.Attachment,
                    style: str, text: str) -> None:
        """The modal's answer: a job for whoever submitted it, prepared like any request, replying to the photo.
        The answer is deferred privately first: whatever goes wrong is told to the asker alone."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        user, guild_id, painter = interaction.user, interaction.guild_id, self.bot.painter
        try:
            if not style.strip():
                raise UsageError("Choose a style from the library.")
            named = await self.bot.library.find(guild_id, [style.strip().lower()])
            args = split_arguments(text, links_allowed=False)
            if args.names:
                raise UsageError(f"Settings are key=value words (`{args.names[0]}` is not one); the style goes "
                                 "in its own field.")
            sources = Sources(photo, tuple(named), poster=message.author.id)  # the photo stays its poster's
            plan = await painter.prepare(user, guild_id, lambda caps: sources, raw=args.raw,
                                         cooldown=painter.cooldowns.commands)  # a painting request
            job = await painter.submit(Request(user.id, guild_id, Origin.at(interaction.channel, message.id)), plan)
        except Exception as error:
            await tell(interaction, f"⚠️ {explain(error, 'painting from the menu')}")
            return
        await tell(interaction, f"🎨 Queued as job `{job.short}` — it will answer under the photo.")

    async def _stamp_in(self, message: discord.Message) -> Stamp | None:
        """The settings inside the first PNG or JPEG attachment that has them (downloads are size-capped)."""
        limit = self.bot.config.limits.attachment_bytes
        for attachment in message.attachments:
            if attachment.content_type not in PICTURE_TYPES or attachment.size > limit:
                continue
            try:
                data = await attachment.read()
            except discord.HTTPException:
                continue
            found = await asyncio.get_running_loop().run_in_executor(None, stamp.read, data)
            if found is not None:
                return found
        return None


class UsePhoto(discord.ui.Modal, title="Paint this photo"):
    """A library style (select or typed name) and optional settings for "Stylize: use this photo"."""

    def __init__(self, menus: Menus, message: discord.Message, photo: discord.Attachment,
                 styles: list[tuple[str, str]]) -> None:
        super().__init__(timeout=600)
        self.menus, self.message, self.photo = menus, message, photo
        self.style: discord.ui.Select[Any] | discord.ui.TextInput[Any]
        if len(styles) <= SELECT_LIMIT:
            self.style = discord.ui.Select(placeholder="Choose a style", options=[
                discord.SelectOption(label=name[:100], value=name, description=credit[:100]) for name, credit in styles])
            description = None
        else:
            self.style = discord.ui.TextInput(placeholder="e.g. starry_night", max_length=32)
            description = "A style's name from the library (`stylize styles` lists them)."
        self.settings = discord.ui.TextInput(style=discord.TextStyle.paragraph, required=False, max_length=1000,
                                             placeholder="key=value settings, e.g. steps=300 size=512")
        self.add_item(discord.ui.Label(text="Style", description=description, component=self.style))
        self.add_item(discord.ui.Label(text="Settings", component=self.settings))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        style = self.style.values[0] if isinstance(self.style, discord.ui.Select) and self.style.values else (
            self.style.value if isinstance(self.style, discord.ui.TextInput) else "")
        await self.menus.paint(interaction, self.message, self.photo, style, self.settings.value or "")


async def setup(bot: StylizeBot) -> None:
    await bot.add_cog(Menus(bot))
