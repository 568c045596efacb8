"""The context menus and the timelapse, end to end: the real bot (real engine, tiny settings) against the stand-in."""

from __future__ import annotations

import io
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

from bot.library import _builtins
from bot.storage import DATABASE, Store
from discord_standin import Event, FakeDiscord, Upload
from engine import stamp
from test_bot_e2e import (TINY, data_dir, eventually, make_bot, photo_and_style, picture,  # noqa: F401
                          replying_to, with_file)
from test_bot_library import ask, kept_jobs, kept_owners, roomy

pytestmark = pytest.mark.usefixtures("one_torch_thread", "vgg_loaded")


async def painted(fake: FakeDiscord, user: Any, text: str, attachments: list[Upload]) -> Event:
    """Send a prefix command; the bot's reply with the picture."""
    request = await fake.send_message(user, text, attachments=attachments)
    return await fake.wait_for(lambda e: with_file(e) and replying_to(request)(e), kind="message", timeout=30)


async def menu(fake: FakeDiscord, user: Any, name: str, message_id: int) -> Event:
    """Use a message context menu; the bot's first message for that interaction."""
    return await fake.response_to(await fake.use_message_command(user, name, message_id), kind="message", timeout=15)


def kept_messages(data_dir: Path) -> list[int]:
    """The result messages of the jobs kept in the database (read beside the bot, as WAL mode allows)."""
    with closing(sqlite3.connect(data_dir / DATABASE)) as db:
        return [row[0] for row in db.execute("SELECT message_id FROM jobs")]


def fields(event: Event) -> dict[str, str]:
    return {f["name"]: f["value"] for f in event.embeds[0]["fields"]}


def frames(data: bytes) -> tuple[str, list[Image.Image]]:
    movie = Image.open(io.BytesIO(data))
    out = []
    for index in range(movie.n_frames):
        movie.seek(index)
        out.append(movie.convert("RGB"))
    return movie.format, out


# ------------------------------------------------------------------------------------ settings


async def test_settings_menu_reads_the_record_then_the_picture(fake_discord: FakeDiscord, run_bot,
                                                              data_dir: Path) -> None:
    async with run_bot(make_bot(roomy())):
        result = await painted(fake_discord, fake_discord.alice, f"!stylize {TINY} seed=11 wave",
                               [photo_and_style()[0]])
        await eventually(lambda: kept_messages(data_dir) == [result.message_id])  # kept once the reply is posted
        recorded = await menu(fake_discord, fake_discord.bob, "Stylize: settings", result.message_id)
        await fake_discord.send_message(fake_discord.alice, "!stylize forget")  # the record goes; the file stays
        await eventually(lambda: kept_messages(data_dir) == [])
        embedded = await menu(fake_discord, fake_discord.bob, "Stylize: settings", result.message_id)
        plain = await fake_discord.send_message(fake_discord.bob, "look", attachments=[photo_and_style()[0]])
        nothing = await menu(fake_discord, fake_discord.bob, "Stylize: settings", plain["id"])
    inside = stamp.read(result.files[0].data)
    assert inside is not None and inside.settings.seed == 11 and inside.styles[0].name == "wave"
    for answer, source in ((recorded, "From my record"), (embedded, "inside the picture")):
        assert answer.ephemeral and source in answer.embeds[0]["footer"]["text"]
        description = answer.embeds[0]["description"]
        assert "seed = 11" in description and "steps = 2" in description and "size = 64" in description
        assert "Katsushika Hokusai" in fields(answer)["Styles"]
        assert "seed=11" in fields(answer)["To paint with these"]
    assert nothing.ephemeral and "I found no settings for that picture" in nothing.content


# ------------------------------------------------------------------------------ use this photo


async def test_use_this_photo_paints_with_a_chosen_style_for_the_one_who_asked(fake_discord: FakeDiscord,
                                                                              run_bot) -> None:
    async with run_bot(make_bot(roomy())):
        photo = await fake_discord.send_message(fake_discord.bob, "my cat", attachments=[photo_and_style()[0]])
        used = await fake_discord.use_message_command(fake_discord.alice, "Stylize: use this photo", photo["id"])
        await fake_discord.response_to(used, lambda e: e.response_type == 9, timeout=10)
        modal = fake_discord.interactions[int(used["id"])].modal
        [style, settings] = [row["component"] for row in modal["components"]]
        sent = await fake_discord.submit_modal(fake_discord.alice, {"Style": ["udnie"], "Settings": "steps=99999"},
                                               interaction=used)
        refused = await fake_discord.response_to(sent, lambda e: "steps" in (e.content or ""), kind="message",
                                                 timeout=10)
        used = await fake_discord.use_message_command(fake_discord.alice, "Stylize: use this photo", photo["id"])
        await fake_discord.response_to(used, lambda e: e.response_type == 9, timeout=10)
        await fake_discord.submit_modal(fake_discord.alice, {"Style": ["udnie"], "Settings": f"{TINY} seed=4"},
                                        interaction=used)
        result = await fake_discord.wait_for(lambda e: with_file(e) and replying_to(photo)(e), kind="message",
                                             timeout=30)
    assert style["type"] == 3 and [o["value"] for o in style["options"]] == list(_builtins())
    assert settings["type"] == 4 and not settings.get("required", True)
    assert refused.ephemeral and "⚠️" in refused.content
    assert f"<@{fake_discord.alice.id}>" in result.content
    made = stamp.read(result.files[0].data)
    assert made.settings.seed == 4 and [s.name for s in made.styles] == ["udnie"]
    assert Image.open(io.BytesIO(result.files[0].data)).size == (64, 48)


async def test_a_large_library_asks_for_the_style_by_name(fake_discord: FakeDiscord, run_bot, data_dir: Path) -> None:
    store = await Store(data_dir).open()
    for n in range(20):  # 8 built-ins + 20: more than a select holds
        await store.add_style(fake_discord.guild_id, f"mine{n}", picture(40, 40), f"Mine {n}", 1)
    await store.close()
    async with run_bot(make_bot(roomy())):
        photo = await fake_discord.send_message(fake_discord.bob, "my cat", attachments=[photo_and_style()[0]])
        used = await fake_discord.use_message_command(fake_discord.alice, "Stylize: use this photo", photo["id"])
        await fake_discord.response_to(used, lambda e: e.response_type == 9, timeout=10)
        style = fake_discord.interactions[int(used["id"])].modal["components"][0]["component"]
        sent = await fake_discord.submit_modal(fake_discord.alice, {"Style": "starry_nite", "Settings": TINY},
                                               interaction=used)
        unknown = await fake_discord.response_to(sent, lambda e: "starry_nite" in (e.content or ""), kind="message",
                                                 timeout=10)
    assert style["type"] == 4
    assert unknown.ephemeral and "did you mean `starry_night`?" in unknown.content


async def used_photo(fake: FakeDiscord, user: Any, poster: Any) -> Event:
    """`poster` posts a photo, `user` paints it with "use this photo" (wave, tiny); the result."""
    photo = await fake.send_message(poster, "my cat", attachments=[photo_and_style()[0]])
    used = await fake.use_message_command(user, "Stylize: use this photo", photo["id"])
    await fake.response_to(used, lambda e: e.response_type == 9, timeout=10)
    await fake.submit_modal(user, {"Style": ["wave"], "Settings": f"{TINY} seed=5"}, interaction=used)
    return await fake.wait_for(lambda e: with_file(e) and replying_to(photo)(e), kind="message", timeout=30)


async def test_a_photo_used_from_the_menu_is_painted_again_with_its_style_credited(fake_discord: FakeDiscord, run_bot,
                                                                                   data_dir: Path) -> None:
    """One path for every job: a "use this photo" result gets the again buttons, and what they paint carries
    the library style's name and credit (kept with the job) in its stamp and in the settings menu."""
    alice, bob = fake_discord.alice, fake_discord.bob
    async with run_bot(make_bot(roomy())):
        first = await used_photo(fake_discord, alice, bob)
        mark = fake_discord.mark()
        await fake_discord.click_button(bob, first.message_id, label="More style")
        again = await fake_discord.wait_for(lambda e: with_file(e) and replying_to({"id": str(first.message_id)})(e),
                                            kind="message", since=mark, timeout=30)
        await eventually(lambda: again.message_id in kept_messages(data_dir))
        shown = await menu(fake_discord, alice, "Stylize: settings", again.message_id)
    assert [b["label"] for row in first.components for b in row["components"]][:2] == ["Variation", "More style"]
    inside = stamp.read(again.files[0].data)
    assert inside is not None and inside.settings.seed == 5 and inside.styles[0].name == "wave"
    assert "Katsushika Hokusai" in (inside.styles[0].credit or "") and again.content.startswith(f"<@{bob.id}>")
    assert "From my record" in shown.embeds[0]["footer"]["text"] and "Katsushika Hokusai" in fields(shown)["Styles"]


async def test_a_photo_painted_from_the_menu_is_kept_as_its_posters_for_their_forget(fake_discord: FakeDiscord,
                                                                                   run_bot, data_dir: Path) -> None:
    """Alice paints Bob's photo with "use this photo": the kept job records Bob as its owner, and Bob's `forget`
    deletes it (and says so) — it used to be kept under Alice, Bob being told "I keep nothing of yours"."""
    alice, bob = fake_discord.alice, fake_discord.bob
    async with run_bot(make_bot(roomy())):
        result = await used_photo(fake_discord, alice, bob)
        await eventually(lambda: kept_messages(data_dir) == [result.message_id])
        owners = kept_owners(data_dir)
        forgot = await ask(fake_discord, bob, "!stylize forget")
        left = kept_jobs(data_dir)
    assert owners == [(bob.id, alice.id)] and left == []  # bob posted it, alice ran it
    assert forgot.content == "🗑️ Deleted the pictures and settings of your 1 kept job."
    assert list((data_dir / "pictures").iterdir()) == []


# ------------------------------------------------------------------------------------ timelapse


async def test_timelapse_beside_the_result_within_the_upload_budget(fake_discord: FakeDiscord, run_bot) -> None:
    ask = {"content": photo_and_style()[0], "preset": "wave",
           "settings": "steps=4 size=64 scales=1 num_epoch=2 timelapse=true seed=2"}
    async with run_bot(make_bot(roomy())):
        mark = fake_discord.mark()
        await fake_discord.send_interaction(fake_discord.alice, "stylize paint", ask)
        both = await fake_discord.wait_for(with_file, kind="message", since=mark, timeout=30)
        picture_size, movie_size = (len(f.data) for f in both.files)
        fake_discord.attachment_size_limit = picture_size + movie_size - 1  # room for the picture only
        mark = fake_discord.mark()
        await fake_discord.send_interaction(fake_discord.alice, "stylize paint", ask)
        alone = await fake_discord.wait_for(with_file, kind="message", since=mark, timeout=30)
    assert both.filenames[0] == "stylized.png" and both.filenames[1] in ("timelapse.webp", "timelapse.gif")
    kind, shown = frames(both.files[1].data)
    assert kind in ("WEBP", "GIF") and len(shown) == 3  # the photo, step 2, the result
    assert all(f.size == (64, 48) for f in shown)
    assert all(ImageChops.difference(a, b).getbbox() for a, b in zip(shown, shown[1:]))
    assert alone.filenames == ["stylized.png"] and len(alone.files[0].data) == picture_size
    assert "timelapse was too large to upload beside it" in alone.content
    assert sum(len(f.data) for f in alone.files) <= fake_discord.attachment_size_limit
