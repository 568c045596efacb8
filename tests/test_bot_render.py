"""bot.render: texts within Discord's limits, help from SPECS, and uploads that fit."""

from __future__ import annotations

import io

from PIL import Image

from bot.config import Caps
from bot.jobs import Job, Snapshot, Status
from bot.render import (EMBED_FIELDS, EMBED_TOTAL, MESSAGE_LIMIT, duration, encode_for_upload, fit, help_embeds,
                        queue_text, settings_embed, settings_lines, status_text)
from engine import SPECS, Progress, Settings
from engine.stamp import Stamp, StyleCredit
from test_bot_parsing import NITRO, live


def noise(size: tuple[int, int]) -> Image.Image:
    return Image.effect_noise(size, 80).convert("RGB")


def test_png_when_it_fits_else_jpeg_else_nothing() -> None:
    image = noise((96, 64))
    data, name = encode_for_upload(image, 10 * 1024 * 1024)
    assert name == "stylized.png" and Image.open(io.BytesIO(data)).format == "PNG"
    png_size = len(data)
    data, name = encode_for_upload(image, png_size - 1)
    assert name == "stylized.jpg" and len(data) < png_size and Image.open(io.BytesIO(data)).size == (96, 64)
    assert encode_for_upload(image, 100) is None


def test_status_lines() -> None:
    queued = status_text("ab12", Snapshot(Status.QUEUED, 3, None, None))
    assert "number **3** in line (2 ahead of you)" in queued and "`ab12`" in queued
    assert "(next up)" in status_text("ab12", Snapshot(Status.QUEUED, 1, None, None))
    assert "Starting" in status_text("ab12", Snapshot(Status.RUNNING, None, None, None))
    progress = Progress(step=30, total=120, scale=1, scales=2, size=(256, 192), losses={}, elapsed=15.0)
    running = status_text("ab12", Snapshot(Status.RUNNING, None, progress, None))
    assert "`█████░░░░░░░░░░░░░░░`" in running and "**25%**" in running and "step 30/120" in running
    assert "pass 1/2 at 256×192" in running and "about 45 s left" in running


def test_durations() -> None:
    assert [duration(s) for s in (0.4, 59, 61, 3725)] == ["0 s", "59 s", "1 min 01 s", "1 h 02 min"]


def test_settings_echo_marks_what_the_user_set() -> None:
    lines = settings_lines(Settings.parse({"steps": 2, "size": 64}), frozenset({"steps"})).splitlines()
    assert len(lines) == len(SPECS)
    assert "• **steps = 2**" in lines and "size = 64" in lines and "steps_per_epoch = 1" in lines


def test_help_lists_every_setting_within_embed_limits() -> None:
    embeds = help_embeds("?", Settings.parse({"size": 256}), Caps(1024, 900, 3, 1024))
    names = [field.name.split(" ")[0] for embed in embeds for field in embed.fields]
    assert names == [spec.name for spec in SPECS]
    assert all(len(embed.fields) <= EMBED_FIELDS and len(embed) <= EMBED_TOTAL for embed in embeds)
    assert "size ≤ 1024 and steps ≤ 900" in embeds[0].description and "`?stylize help`" in embeds[0].description
    size = next(f for f in embeds[0].fields if f.name.startswith("size"))
    assert "default **256**" in size.value and "64–4096" in size.value and "image_size" in size.name


def test_fit_cuts_to_one_message() -> None:
    assert fit("short") == "short" and fit("x" * MESSAGE_LIMIT) == "x" * MESSAGE_LIMIT
    one_line = fit("k" * 5000)
    assert len(one_line) == MESSAGE_LIMIT and one_line.endswith("k…")
    lines = fit("\n".join(["line"] * 1000))
    assert len(lines) <= MESSAGE_LIMIT and lines.endswith("line\n…")


def test_queue_text_fits_one_message() -> None:
    assert "empty" in queue_text([])
    jobs = [Job(user_id=n, channel_id=1, guild_id=1, message_id=1, content=noise((8, 8)), styles=(),
                settings=Settings(), status=Status.RUNNING if n == 0 else Status.QUEUED) for n in range(200)]
    text = queue_text(jobs)
    assert len(text) <= MESSAGE_LIMIT and text.startswith("**Queue** (199 waiting)")
    assert "🎨 running: <@0>" in text and "\n1. <@1>" in text and text.endswith("…")


def test_the_settings_menu_shows_names_and_credits_from_a_picture_inert() -> None:
    """A PNG's embedded settings are anyone's text (issue 22, 3): a name that breaks out of its `code`
    into a link, a credit with two links and mentions — shown, but nothing in them renders or pings."""
    styles = (StyleCredit(NITRO, "[a](https://a.example) then [b](https://b.example) <@123456789012345678> @here"),
              StyleCredit("wave", "The Great Wave — Hokusai"), StyleCredit())
    embed = settings_embed(Stamp(Settings(), styles), "Read from the settings inside the picture.")
    [field] = [f for f in embed.fields if f.name == "Styles"]
    assert "Free Nitro" in field.value and "`wave` — The Great Wave — Hokusai" in field.value
    assert live(field.value) == ["`wave`"]
