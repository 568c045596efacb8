"""The buttons on the bot's messages, as the messages carry them: Cancel on a status message, the "again" row
under a result. The job id and the action live in each custom_id, so any run of the bot can answer a click
(the cogs register DynamicItems that match these ids)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord


@dataclass(frozen=True)
class Op:
    label: str
    emoji: str
    row: int


OPS = {"variation": Op("Variation", "🎲", 0), "more": Op("More style", "➕", 0), "less": Op("Less style", "➖", 0),
       "colours": Op("Keep colours", "🎨", 1), "bigger": Op("Bigger", "⤴️", 1), "tweak": Op("Tweak", "✏️", 1)}
CANCEL_ID = r"stylize:cancel:(?P<job>[0-9a-f]+)"
AGAIN_ID = rf"stylize:again:(?P<job>[0-9a-f]+):(?P<op>{'|'.join(OPS)})"


def cancel_button(job_id: str) -> discord.ui.Button[Any]:
    return discord.ui.Button(label="Cancel", emoji="🛑", style=discord.ButtonStyle.danger,
                             custom_id=f"stylize:cancel:{job_id}")


def again_button(job_id: str, op: str) -> discord.ui.Button[Any]:
    look = OPS[op]
    return discord.ui.Button(label=look.label, emoji=look.emoji, row=look.row, style=discord.ButtonStyle.secondary,
                             custom_id=f"stylize:again:{job_id}:{op}")


def cancel_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(cancel_button(job_id))
    return view


def result_view(job_id: str) -> discord.ui.View:
    """The buttons under a result: two rows of three."""
    view = discord.ui.View(timeout=None)
    for op in OPS:
        view.add_item(again_button(job_id, op))
    return view
