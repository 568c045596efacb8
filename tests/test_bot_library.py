"""The style library, per-server defaults, kept job inputs and `forget`, end to end: the real bot against the
loopback Discord stand-in, with the store on real files in the test's folder."""

from __future__ import annotations

import io
import logging
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import discord
import pytest
from PIL import Image

from bot.library import BUILTIN_DIR, RESERVED, Library, _builtins, contact_sheet
from bot.storage import DATABASE, MIGRATIONS, Mode, Store
from discord_standin import FakeDiscord, Upload
from test_bot_e2e import (TINY, config, data_dir, decoded, eventually, make_bot,  # noqa: F401
                          photo_and_style, picture, replying_to, status_of, with_file)
from test_bot_jobs import FakeRunner
from test_bot_parsing import live
from bot.parsing import style_names

pytestmark = pytest.mark.usefixtures("one_torch_thread", "vgg_loaded")


def roomy(**table: Any) -> Any:
    """The tests' configuration, with a cooldown that lets one user send a test's worth of commands."""
    return config(cooldown={"commands": 100}, **table)


class Recording(FakeRunner):
    """FakeRunner that keeps the jobs it was given (their style pictures, their settings)."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[Any] = []

    def __call__(self, job: Any, report: Any, cancel: Any) -> Any:
        self.jobs.append(job)
        return super().__call__(job, report, cancel)


async def ask(fake: FakeDiscord, user: Any, text: str, **extra: Any) -> Any:
    """Send a prefix command, return the bot's first message after it."""
    mark = fake.mark()
    request = await fake.send_message(user, text, **extra)
    return await fake.wait_for(replying_to(request), kind="message", since=mark, timeout=15)


async def slash(fake: FakeDiscord, user: Any, command: str, options: Any = None) -> Any:
    mark = fake.mark()
    await fake.send_interaction(user, command, options)
    return await fake.wait_for(kind="message", since=mark, timeout=15)


def kept_jobs(data_dir: Path) -> list[int]:
    """The owners of the jobs kept in the database (read beside the bot, as SQLite's WAL mode allows)."""
    with closing(sqlite3.connect(data_dir / DATABASE)) as db:
        return [row[0] for row in db.execute("SELECT user_id FROM jobs")]


def kept_owners(data_dir: Path) -> list[tuple[int, int]]:
    """Each kept job's (owner: who posted the photo, who ran it)."""
    with closing(sqlite3.connect(data_dir / DATABASE)) as db:
        return db.execute("SELECT user_id, ran_by FROM jobs").fetchall()


def noted(data_dir: Path, message_id: int) -> bool:
    """Whether the store has recorded `message_id` as a kept job's result (the menus find the job by it).
    The bot records it after posting the message: a test that uses a menu on a result at once waits for
    this, as no person is that quick."""
    with closing(sqlite3.connect(data_dir / DATABASE)) as db:
        return db.execute("SELECT 1 FROM jobs WHERE message_id = ?", (message_id,)).fetchone() is not None


def builtin_size(name: str) -> tuple[int, int]:
    with Image.open(BUILTIN_DIR / f"{name}.jpg") as im:
        return im.size


# ------------------------------------------------------------------------------ built-in styles


def test_builtin_styles_are_shipped_small_and_credited() -> None:
    styles = _builtins()
    files = sorted(p.stem for p in BUILTIN_DIR.glob("*.jpg"))
    assert sorted(styles) == files and len(files) == 8
    credits = (BUILTIN_DIR / "CREDITS.md").read_text(encoding="utf-8")
    for name, style in styles.items():
        assert max(builtin_size(name)) <= 1024 and f"| {name}.jpg |" in credits and " — " in style.credit
        assert name not in RESERVED


def test_contact_sheet_is_a_grid_with_every_name() -> None:
    sheet = Image.open(io.BytesIO(contact_sheet(["a", "b", "c", "d", "e"], [Image.new("RGB", (30, 20), "red")] * 5)))
    assert sheet.format == "JPEG" and sheet.size == (4 * 160, 2 * (160 + 22))
    many = Image.open(io.BytesIO(contact_sheet(["x"] * 30, [Image.new("RGB", (30, 20), "red")] * 30)))
    assert many.size == (6 * 160, 5 * (160 + 22))  # wider as the library grows
    assert Image.open(io.BytesIO(contact_sheet(["x"], [Image.new("RGB", (30, 20))]))).size == (160, 182)


async def test_a_preset_by_name_and_blended_with_an_attachment(fake_discord: FakeDiscord, run_bot) -> None:
    runner = Recording()
    runner.release_all()
    async with run_bot(make_bot(roomy(), runner=runner)):
        photo, style = photo_and_style()
        request = await fake_discord.send_message(fake_discord.alice, "!stylize starry_night", attachments=[photo])
        reply = await fake_discord.wait_for(lambda e: with_file(e) and replying_to(request)(e), kind="message",
                                            timeout=15)
        mark = fake_discord.mark()
        request = await fake_discord.send_message(fake_discord.alice, "!stylize style=wave,udnie style_blend=3,2,1",
                                                  attachments=[photo, style])
        blended = await fake_discord.wait_for(lambda e: with_file(e) and replying_to(request)(e), kind="message",
                                              since=mark, timeout=15)
        unknown = await ask(fake_discord, fake_discord.alice, "!stylize starry_nite", attachments=[photo])
        too_few = await ask(fake_discord, fake_discord.alice, "!stylize style=wave,udnie style_blend=1,1",
                            attachments=[photo, style])
    first, second = runner.jobs
    assert [s.size for s in first.styles] == [builtin_size("starry_night")]
    assert [s.size for s in second.styles] == [builtin_size("wave"), builtin_size("udnie"), (40, 40)]
    styles = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}["Styles"]
    assert styles == r"`starry_night` — The Starry Night — Vincent van Gogh\, 1889"  # credits shown inert
    assert {f["name"]: f["value"] for f in blended.embeds[0]["fields"]}["Styles"].splitlines() == [
        r"`wave` — The Great Wave off Kanagawa — Katsushika Hokusai\, c\. 1831",
        r"`udnie` — Udnie — Francis Picabia\, 1913", "your picture"]
    assert "I don't know a style called `starry_nite` — did you mean `starry_night`?" in unknown.content
    assert "style_blend has 2 weights but you gave 3 style images" in too_few.content


async def test_the_engine_paints_with_a_builtin_style(fake_discord: FakeDiscord, run_bot) -> None:
    async with run_bot(make_bot(roomy())):
        request = await fake_discord.send_message(fake_discord.alice, f"!stylize {TINY} vallotton",
                                                  attachments=[photo_and_style()[0]])
        reply = await fake_discord.wait_for(lambda e: with_file(e) and replying_to(request)(e), kind="message",
                                            timeout=30)
    assert decoded(reply).size == (64, 48) and "Félix Vallotton" in reply.embeds[0]["fields"][0]["value"]


async def test_preset_autocomplete_and_the_slash_preset(fake_discord: FakeDiscord, run_bot) -> None:
    runner = Recording()
    runner.release_all()
    async with run_bot(make_bot(roomy(), runner=runner)):
        mark = fake_discord.mark()
        await fake_discord.send_interaction(fake_discord.bob, "stylize paint", [
            {"name": "preset", "type": 3, "value": "wave,st", "focused": True}], autocomplete=True)
        answer = await fake_discord.wait_for(kind="interaction_response", since=mark, timeout=3)
        mark = fake_discord.mark()
        await fake_discord.send_interaction(fake_discord.bob, "stylize paint", [
            {"name": "preset", "type": 3, "value": "wave,", "focused": True}], autocomplete=True)
        everything = await fake_discord.wait_for(kind="interaction_response", since=mark, timeout=3)
        photo, _ = photo_and_style()
        await fake_discord.send_interaction(fake_discord.bob, "stylize paint", {"content": photo, "preset": "the_scream"})
        await fake_discord.wait_for(with_file, kind="message", timeout=15)
    assert answer.response_type == 8
    choices = answer.payload["data"]["choices"]
    assert [c["value"] for c in choices] == ["wave,starry_night", "wave,van_doesburg"]  # name first, then credit (Studio)
    assert choices[0]["name"] == "wave,starry_night — The Starry Night — Vincent van Gogh, 1889"
    assert len(everything.payload["data"]["choices"]) == 7  # every other style: wave is chosen already
    assert [s.size for s in runner.jobs[0].styles] == [builtin_size("the_scream")]


# ---------------------------------------------------------------------------- server styles


async def test_moderators_add_and_remove_server_styles_everyone_lists_them(fake_discord: FakeDiscord, run_bot,
                                                                         data_dir: Path) -> None:
    painting = Upload("lilies.png", picture(300, 200))
    mod, alice = fake_discord.moderator, fake_discord.alice
    runner = Recording()
    runner.release_all()
    keep_nothing = roomy(storage={"data_dir": str(data_dir), "keep_days": 0})  # only styles in the folder
    async with run_bot(make_bot(keep_nothing, runner=runner)) as bot:
        refused = await ask(fake_discord, alice, "!stylize styles add lilies", attachments=[painting])
        names = [await ask(fake_discord, mod, f"!stylize styles add {name}", attachments=[painting])
                 for name in ("steps", "help", "colour", "Bad!", "starry_night")]
        added = await ask(fake_discord, mod, "!stylize styles add lilies Water Lilies — @everyone Monet",
                          attachments=[painting])
        again = await ask(fake_discord, mod, "!stylize styles add lilies", attachments=[painting])
        listed = await ask(fake_discord, alice, "!stylize styles")
        sheet = bot.library._sheets[fake_discord.guild_id]
        await ask(fake_discord, bob := fake_discord.bob, "!stylize styles")
        assert bot.library._sheets[fake_discord.guild_id] is sheet  # cached until the library changes
        request = await fake_discord.send_message(bob, "!stylize lilies", attachments=[photo_and_style()[0]])
        await fake_discord.wait_for(lambda e: with_file(e) and replying_to(request)(e), kind="message", timeout=15)
    assert refused.content == "⚠️ Only moderators can add or remove this server's styles."
    assert [n.content for n in names] == ["⚠️ `steps` can't be a style name: it is a setting or a command."] * 1 + [
        "⚠️ `help` can't be a style name: it is a setting or a command.",
        "⚠️ `colour` can't be a style name: it is a setting or a command.",
        "⚠️ Style names are 1–32 characters of a-z, 0-9, _ and - (e.g. `water_lilies`).",
        "⚠️ There is already a style called `starry_night` — remove it first, or pick another name."]
    assert added.content.startswith("✅ Added the style `lilies`")
    assert "already a style called `lilies`" in again.content
    assert listed.filenames == ["styles.jpg"] and decoded(listed).size == (4 * 160, 3 * (160 + 22))
    assert "`lilies` — Water Lilies — \\@\u200beveryone Monet *(this server)*" in listed.content
    assert "`starry_night` — The Starry Night" in listed.content
    assert listed.payload["allowed_mentions"]["parse"] == []
    assert max(runner.jobs[0].styles[0].size) == 300  # kept at its size (under 1024 px)

    async with run_bot(make_bot(keep_nothing, runner=FakeRunner())) as bot:  # a restart keeps the library
        assert [s.name for s in await bot.library.styles(fake_discord.guild_id)][-1] == "lilies"
        builtin = await ask(fake_discord, mod, "!stylize styles remove wave")
        removed = await ask(fake_discord, mod, "!stylize styles remove lilies")
        gone = await ask(fake_discord, mod, "!stylize styles remove lilies")
        assert fake_discord.guild_id not in bot.library._sheets
        assert [s.name for s in await bot.library.styles(fake_discord.guild_id)] == list(bot.library.builtins)
    assert "`wave` is a built-in style" in builtin.content
    assert removed.content == "🗑️ Removed the style `lilies`." and "no style called `lilies`" in gone.content
    assert list((data_dir / "pictures").iterdir()) == []


async def test_moderator_replies_show_what_they_typed_inert(fake_discord: FakeDiscord, run_bot, data_dir: Path) -> None:
    """Issue 22, 3 and 9: a style's name, a credit (two links, a mention) and defaults typed by moderators and
    managers come back in the bot's voice — as text that links, formats and pings nothing."""
    managers = fake_discord.add_role("Managers", discord.Permissions(manage_guild=True))
    manager = fake_discord.make_user("manager", roles=[managers])
    mod, bob = fake_discord.moderator, fake_discord.bob
    hostile = ["x`[Free_Nitro](https://evil.example)`", f"<@{bob.id}>", "[a](https://a.example)"]
    async with run_bot(make_bot(roomy(storage={"data_dir": str(data_dir), "keep_days": 0}), runner=FakeRunner())):
        replies = [await ask(fake_discord, mod, f"!stylize styles remove {text}") for text in hostile]
        replies.append(await ask(fake_discord, mod, f"!stylize styles add lilies [a](https://a.example) and "
                                                    f"[b](https://b.example) by <@{bob.id}> @here",
                                 attachments=[Upload("lilies.png", picture(64, 48))]))
        replies.append(await ask(fake_discord, bob, "!stylize styles"))
        for text in hostile:
            replies += [await ask(fake_discord, manager, f"!stylize defaults steps={text}"),
                        await ask(fake_discord, manager, f"!stylize defaults {text}=1")]
    assert "free" in replies[0].content.lower() and "https" in replies[-1].content
    assert "and \\[b\\]" in replies[4].content  # the credit, listed
    for reply in replies:
        assert not [m for m in live(reply.content) if not m.startswith("`")], reply.content  # `code` of ours is fine
        assert f"<@{bob.id}>" not in reply.content and "@here" not in reply.content, reply.content


async def test_slash_styles_lists_the_contact_sheet(fake_discord: FakeDiscord, run_bot) -> None:
    async with run_bot(make_bot(roomy(), runner=FakeRunner())):
        listed = await slash(fake_discord, fake_discord.alice, "stylize styles")
    assert listed.filenames == ["styles.jpg"] and decoded(listed).size == (4 * 160, 2 * (160 + 22))


# ------------------------------------------------------------------------- storage failures


async def test_an_unwritable_data_dir_leaves_the_builtins(fake_discord: FakeDiscord, run_bot, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    runner = Recording()
    runner.release_all()
    async with run_bot(make_bot(roomy(storage={"data_dir": str(blocker / "data")}), runner=runner)) as bot:
        assert bot.store.mode is Mode.UNAVAILABLE
        listed = await ask(fake_discord, fake_discord.alice, "!stylize styles")
        add = await ask(fake_discord, fake_discord.moderator, "!stylize styles add lilies",
                        attachments=[Upload("l.png", picture(40, 40))])
        forget = await ask(fake_discord, fake_discord.alice, "!stylize forget")
        request = await fake_discord.send_message(fake_discord.alice, "!stylize wave",
                                                  attachments=[photo_and_style()[0]])
        await fake_discord.wait_for(lambda e: with_file(e) and replying_to(request)(e), kind="message", timeout=15)
    assert listed.filenames == ["styles.jpg"] and "`wave`" in listed.content
    assert "Server styles can't be changed here: the bot's storage is unavailable" in add.content
    assert forget.content == "I keep nothing of yours here."
    assert "storage" in caplog.text and "unavailable (cannot write there" in caplog.text


async def test_a_corrupt_database_is_set_aside_and_the_bot_carries_on(fake_discord: FakeDiscord, run_bot,
                                                                      data_dir: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    data_dir.mkdir()
    (data_dir / DATABASE).write_bytes(b"\0garbage" * 500)
    with caplog.at_level(logging.WARNING):
        async with run_bot(make_bot(roomy(), runner=FakeRunner())):
            added = await ask(fake_discord, fake_discord.moderator, "!stylize styles add lilies",
                              attachments=[Upload("l.png", picture(40, 40))])
    assert added.content.startswith("✅ Added the style `lilies`")
    assert len(list(data_dir.glob(f"{DATABASE}.corrupt-*"))) == 1 and "moved it to" in caplog.text


async def test_a_failed_migration_keeps_the_server_styles_and_the_bot_paints_read_only(
        fake_discord: FakeDiscord, run_bot, data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A schema-1 database that schema 2 cannot apply to (its jobs table has a `given` column already) is not
    set aside: the server's style stays in use, painting works (without the again buttons: nothing is kept),
    changes and `forget` say plainly that the storage is read-only, the log says why, and nothing is deleted."""
    (data_dir / "pictures").mkdir(parents=True)
    (data_dir / "pictures" / "lilies.png").write_bytes(picture(40, 40))
    with closing(sqlite3.connect(data_dir / DATABASE)) as db:
        db.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
        db.execute("ALTER TABLE jobs ADD COLUMN given TEXT")
        db.execute("INSERT INTO styles VALUES (?, 'lilies', 'lilies.png', 'Water Lilies', 1, 0)",
                   (fake_discord.guild_id,))
        db.commit()
    before = (data_dir / DATABASE).read_bytes()
    runner = Recording()
    runner.release_all()
    with caplog.at_level(logging.WARNING):
        async with run_bot(make_bot(roomy(), runner=runner)) as bot:
            assert bot.store.mode is Mode.READ_ONLY
            request = await fake_discord.send_message(fake_discord.alice, "!stylize lilies",
                                                      attachments=[photo_and_style()[0]])
            result = await fake_discord.wait_for(lambda e: with_file(e) and replying_to(request)(e),
                                                 kind="message", timeout=15)
            add = await ask(fake_discord, fake_discord.moderator, "!stylize styles add roses",
                            attachments=[Upload("r.png", picture(40, 40))])
            forget = await ask(fake_discord, fake_discord.alice, "!stylize forget")
    assert len(runner.jobs) == 1 and result.components == []
    assert "Server styles can't be changed here: the bot's storage is read-only" in add.content
    assert forget.content.startswith("⚠️ I can't delete anything right now") and "read-only" in forget.content
    assert "schema 2" in caplog.text and "left as it was" in caplog.text
    assert (data_dir / DATABASE).read_bytes() == before and list(data_dir.glob(f"{DATABASE}.corrupt-*")) == []
    assert [p.name for p in (data_dir / "pictures").iterdir()] == ["lilies.png"]


# ------------------------------------------------------------------------ kept inputs, forget


async def test_finished_jobs_are_kept_until_forget(fake_discord: FakeDiscord, run_bot, data_dir: Path) -> None:
    runner = FakeRunner()
    runner.release_all()
    async with run_bot(make_bot(roomy(), runner=runner)):
        for user in (fake_discord.alice, fake_discord.alice, fake_discord.bob):
            request = await fake_discord.send_message(user, "!stylize steps=3", attachments=photo_and_style())
            await fake_discord.wait_for(lambda e, r=request: with_file(e) and replying_to(r)(e), kind="message",
                                        timeout=15)
        await fake_discord.wait_quiet(0.3)
        kept = kept_jobs(data_dir)
        forgot = await slash(fake_discord, fake_discord.alice, "stylize forget")
        nothing = await ask(fake_discord, fake_discord.alice, "!stylize forget")
        left = kept_jobs(data_dir)
    assert sorted(kept) == sorted([fake_discord.alice.id] * 2 + [fake_discord.bob.id])
    assert forgot.ephemeral and forgot.content == "🗑️ Deleted the pictures and settings of your 2 kept jobs."
    assert nothing.content == "I keep nothing of yours — nothing to delete."
    assert left == [fake_discord.bob.id] and len(list((data_dir / "pictures").iterdir())) == 2


async def test_a_photo_painted_in_reply_is_kept_as_its_posters(fake_discord: FakeDiscord, run_bot,
                                                               data_dir: Path) -> None:
    """Alice replies `!stylize` to Bob's photo: the kept job records Bob as its owner (Alice ran it), so Bob's
    `forget` deletes his photo — it used to be kept under Alice alone."""
    runner = FakeRunner()
    runner.release_all()
    alice, bob = fake_discord.alice, fake_discord.bob
    async with run_bot(make_bot(roomy(), runner=runner)):
        posted = await fake_discord.send_message(bob, "my cat", attachments=[photo_and_style()[0]])
        request = await fake_discord.send_message(alice, "!stylize steps=3", reference=posted,
                                                  attachments=[photo_and_style()[1]])
        await fake_discord.wait_for(lambda e: with_file(e) and replying_to(request)(e), kind="message", timeout=15)
        await fake_discord.wait_quiet(0.3)
        kept = kept_owners(data_dir)
        forgot = await ask(fake_discord, bob, "!stylize forget")
        left = kept_jobs(data_dir)
    assert kept == [(bob.id, alice.id)] and left == []
    assert forgot.content == "🗑️ Deleted the pictures and settings of your 1 kept job."


async def test_forget_while_a_job_paints_keeps_nothing_of_it(fake_discord: FakeDiscord, run_bot,
                                                             data_dir: Path) -> None:
    """`forget` sent while a job of Alice's is painting: the picture is delivered, but nothing of the job is
    kept afterwards (no again buttons) — it used to be kept under her id once it finished, undoing the forget."""
    runner = Recording()
    alice = fake_discord.alice
    async with run_bot(make_bot(roomy(), runner=runner)):
        request = await fake_discord.send_message(alice, "!stylize steps=3", attachments=photo_and_style())
        await eventually(lambda: len(runner.jobs) == 1)
        forgot = await ask(fake_discord, alice, "!stylize forget")
        runner.release(runner.jobs[0])
        result = await fake_discord.wait_for(lambda e: with_file(e) and replying_to(request)(e), kind="message",
                                             timeout=15)
        await fake_discord.wait_quiet(0.3)
        kept = kept_jobs(data_dir)
    assert forgot.content == "I keep nothing of yours — nothing to delete."
    assert kept == [] and result.components == [] and list((data_dir / "pictures").iterdir()) == []


async def test_keep_days_zero_keeps_nothing(fake_discord: FakeDiscord, run_bot, data_dir: Path) -> None:
    runner = FakeRunner()
    runner.release_all()
    async with run_bot(make_bot(roomy(storage={"data_dir": str(data_dir), "keep_days": 0}), runner=runner)):
        request = await fake_discord.send_message(fake_discord.alice, "!stylize", attachments=photo_and_style())
        await fake_discord.wait_for(lambda e: with_file(e) and replying_to(request)(e), kind="message", timeout=15)
        await fake_discord.wait_quiet(0.3)
    assert list((data_dir / "pictures").iterdir()) == []


# ---------------------------------------------------------------------------- server defaults


async def test_defaults_changed_by_a_manager_and_refused_for_others(fake_discord: FakeDiscord, run_bot) -> None:
    managers = fake_discord.add_role("Managers", discord.Permissions(manage_guild=True))
    manager = fake_discord.make_user("manager", roles=[managers])
    runner = Recording()
    runner.release_all()
    async with run_bot(make_bot(roomy(), runner=runner)) as bot:
        refused = await ask(fake_discord, fake_discord.moderator, "!stylize defaults steps=7")
        shown = await ask(fake_discord, fake_discord.alice, "!stylize defaults")
        changed = await ask(fake_discord, manager, "!stylize defaults steps=7 colour=luminance")
        capped = await slash(fake_discord, manager, "stylize-defaults", {"settings": "size=2048"})
        typo = await slash(fake_discord, manager, "stylize-defaults", {"settings": "stpes=5"})
        help_ = await ask(fake_discord, fake_discord.alice, "!stylize help")
        request = await fake_discord.send_message(fake_discord.alice, "!stylize wave", attachments=[photo_and_style()[0]])
        await fake_discord.wait_for(lambda e: with_file(e) and replying_to(request)(e), kind="message", timeout=15)
        undone = await slash(fake_discord, manager, "stylize-defaults", {"settings": "steps=default"})
        assert await bot.store.guild_defaults(fake_discord.guild_id) == {"preserve_color": "luminance"}
    assert refused.content == "⚠️ Only members with the Manage Server permission can change this server's defaults."
    assert "\nsteps = 300\n" in shown.content
    assert "• **steps = 7**" in changed.content and "• **preserve_color = luminance**" in changed.content
    assert capped.ephemeral and "size=2048 is over this server's cap of 1024" in capped.content
    assert "unknown setting 'stpes' — did you mean steps?" in typo.content
    steps = next(f for e in help_.embeds for f in e["fields"] if f["name"].startswith("steps"))
    assert "default **7**" in steps["value"]
    assert runner.jobs[0].settings.steps == 7 and runner.jobs[0].settings.preserve_color == "luminance"
    assert "\nsteps = 300\n" in undone.content


async def test_autocomplete_answers_from_memory_with_at_most_25_choices(tmp_path: Path) -> None:
    """Discord waits 3 s for choices: after the first look, a server's names come from memory, not the disk."""
    store = await Store(tmp_path).open()
    for n in range(60):
        await store.add_style(5, f"style{n:02d}", b"not read here", f"credit {n}", 1)
    library = Library(store)
    choices = await library.complete(5, "style1")
    await store.close()  # from here on, any use of the store would fail
    everything = await library.complete(5, "")
    assert [value for _, value in choices] == [f"style{n}" for n in range(10, 20)]
    assert len(everything) == 25 and everything[0][1] == "composition_vii"


async def test_autocomplete_values_fit_discord_and_name_styles_the_command_finds(tmp_path: Path) -> None:
    """Issue 22, 6: values of 104–1,013 characters (only the label was cut), which Discord refuses. Every
    value is at most 100 characters, and names styles that `preset` resolves."""
    store = await Store(tmp_path).open()
    long_names = [f"{letter * 31}{n}" for n, letter in enumerate("abcd")]  # 32 characters: the longest a name is
    for name in long_names:
        await store.add_style(5, name, b"not read here", "credit " + "x" * 90, 1)
    library = Library(store)
    typed = ["x" * 1000 + ",st", "wave," * 200 + "ud", ",".join(long_names[:3]) + ",", "<@1>,[a](https://a.example),"]
    answers = [await library.complete(5, text) for text in typed]
    await store.close()
    assert all(answers[:2]) and answers[2] == [] and answers[3]  # three 32-character names: no fourth fits
    for choices in answers:
        for label, value in choices:
            assert len(label) <= 100 and len(value) <= 100
            assert [s.name for s in await library.find(5, style_names(value))] == value.split(",")
    assert answers[1][0][1] == "wave,udnie"  # the repeated name, once


async def test_server_defaults_text(tmp_path: Path) -> None:
    from bot.config import Limits
    from bot.library import ServerDefaults
    from bot.parsing import UsageError
    from engine import ParamError, Settings

    store = await Store(tmp_path).open()
    try:
        defaults = ServerDefaults(store, Settings.parse({"steps": 100}), Limits(max_size=512, max_steps=200).caps_for(()))
        assert await defaults.change(1, "iterations=150 colour=histogram") == {"steps": "150",
                                                                                 "preserve_color": "histogram"}
        assert await defaults.change(1, "steps=default") == {"preserve_color": "histogram"}
        assert (await defaults.settings(1)).steps == 100 and (await defaults.settings(2)).preserve_color == "none"
        for text, error in [("steps=300", "steps=300 is over this server's cap of 200"), ("wave", "don't understand"),
                            ("https://x.example/a.png", "only key=value settings")]:
            with pytest.raises((UsageError, ParamError), match=error):
                await defaults.change(1, text)
        assert await defaults.change(1, "reset") == {} and await store.guild_defaults(1) == {}
        await store.set_guild_defaults(3, {"size": "1024"})  # stored under a bigger cap than today's
        assert (await defaults.settings(3)).size == 512
    finally:
        await store.close()
