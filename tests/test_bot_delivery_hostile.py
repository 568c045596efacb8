"""Hostile probes on the delivery paths (issue 22's last paragraph, on what issue 20 changed): held pictures,
the DM fallback, who hears of a job, a read-only store, a flood of undeliverable jobs, a vanished channel —
the real bot against the stand-in."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.storage import DATABASE, MIGRATIONS, Mode
from discord_standin import FakeDiscord
from engine import Progress
from test_bot_delivery import hold_a_picture
from test_bot_e2e import data_dir, make_bot, photo_and_style, status_of, with_file  # noqa: F401
from test_bot_jobs import FakeRunner
from test_bot_library import ask, roomy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def newer_database(data_dir: Path) -> None:
    """A database from a newer version: the store opens it read-only."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(data_dir / DATABASE)) as db:
        for migration in MIGRATIONS:
            db.executescript(migration)
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")


async def hold_a_painting_of(fake: FakeDiscord, poster: Any, painter: Any, runner: FakeRunner) -> None:
    """`poster` posts a photo, `painter` replies to it with `!stylize` and a style; meanwhile the bot loses Send
    Messages there and `painter` closes their DMs: the painting is held for `painter`."""
    photo, style = photo_and_style()
    posted = await fake.send_message(poster, "my cat", attachments=[photo])
    request = await fake.send_message(painter, "!stylize", attachments=[style], reference=posted["id"])
    status = await status_of(fake, request, 0)
    await fake.deny_bot(fake.channel_id, discord.Permissions(send_messages=True))
    fake.refuse_dms(painter)
    runner.release_all()
    await fake.wait_for(lambda e: e.message_id == status.message_id and "last" in (e.content or ""), kind="edit",
                        timeout=15)


async def test_forget_on_a_read_only_store_still_deletes_what_is_held_in_memory(
        fake_discord: FakeDiscord, run_bot, data_dir: Path) -> None:
    """Read-only, a painting nobody would take is held in memory; the owner's `forget` must delete it even though
    the store cannot delete anything (it said "I can't delete anything" and kept the painting)."""
    newer_database(data_dir)
    alice = fake_discord.alice
    elsewhere = fake_discord.add_text_channel("elsewhere")
    runner = FakeRunner()
    async with run_bot(make_bot(roomy(), runner=runner)) as stylize_bot:
        assert stylize_bot.store.mode is Mode.READ_ONLY
        await hold_a_picture(fake_discord, alice, runner)
        mark = fake_discord.mark()
        await fake_discord.send_message(alice, "!stylize forget", channel_id=elsewhere)
        forgot = await fake_discord.wait_for(lambda e: "delete" in (e.content or "").lower(), kind="message",
                                             since=mark, timeout=15)
        last = await ask(fake_discord, alice, "!stylize last", channel_id=elsewhere)
    assert "1 painting waiting for `stylize last`" in forgot.content and "read-only" in forgot.content
    assert "Nothing is waiting for you" in last.content and not last.files


async def test_a_reply_job_reaches_whoever_ran_it_never_the_photos_poster(fake_discord: FakeDiscord,
                                                                          run_bot) -> None:
    """Alice paints Bob's photo (a reply); the channel then refuses the bot and Alice's DMs are closed: the
    picture is held for Alice. Bob — whose DMs are open — gets no DM, no news, and his `last` shows nothing;
    Alice's `last` gets it."""
    alice, bob = fake_discord.alice, fake_discord.bob
    elsewhere = fake_discord.add_text_channel("elsewhere")
    runner = FakeRunner()
    async with run_bot(make_bot(roomy(), runner=runner)):
        await hold_a_painting_of(fake_discord, bob, alice, runner)
        bobs = await ask(fake_discord, bob, "!stylize last", channel_id=elsewhere)
        alices = await ask(fake_discord, alice, "!stylize last", channel_id=elsewhere)
        await fake_discord.wait_quiet(0.3)
    to_bob = [e for e in fake_discord.sent if e.channel_id == fake_discord.dm_channel_id(bob)]
    assert to_bob == [] and "Nothing is waiting for you" in bobs.content and not bobs.files
    assert with_file(alices) and alices.content.startswith(f"<@{alice.id}> here is your painting")


async def test_moderator_cannot_fetch_or_delete_anothers_held_picture(fake_discord: FakeDiscord, run_bot) -> None:
    """A moderator's `last` and `forget` act on the moderator's own held pictures only, in the server and in DMs."""
    alice, moderator = fake_discord.alice, fake_discord.moderator
    elsewhere = fake_discord.add_text_channel("elsewhere")
    runner = FakeRunner()
    async with run_bot(make_bot(roomy(), runner=runner)):
        await hold_a_picture(fake_discord, alice, runner)
        in_server = await ask(fake_discord, moderator, "!stylize last", channel_id=elsewhere)
        forgot = await ask(fake_discord, moderator, "!stylize forget", channel_id=elsewhere)
        mark = fake_discord.mark()
        await fake_discord.send_interaction(moderator, "stylize last", dm=True)
        in_dm = await fake_discord.wait_for(kind="message", since=mark, timeout=15)
        alices = await ask(fake_discord, alice, "!stylize last", channel_id=elsewhere)
    assert "Nothing is waiting for you" in in_server.content and not in_server.files
    assert "painting" not in forgot.content
    assert "Nothing is waiting for you" in in_dm.content and not in_dm.files
    assert with_file(alices)


async def test_a_flood_of_undeliverable_jobs_is_bounded_in_memory_across_owners(
        fake_discord: FakeDiscord, run_bot, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """Held in memory (keep_days 0, read-only, or the disk cap reached), paintings are bounded per owner — and
    in all: many members with closed DMs in a channel the bot lost cannot grow the bot's memory without end."""
    import bot.painting.delivery as delivery_module
    monkeypatch.setattr(delivery_module, "HOLD_IN_MEMORY", 1, raising=False)  # bytes: only the newest stays
    runner = FakeRunner()
    users = [fake_discord.make_user(f"member{i}") for i in range(4)]
    async with run_bot(make_bot(roomy(storage={"data_dir": str(data_dir), "keep_days": 0}), runner=runner)) as stylize_bot:
        statuses = []
        for user in users:
            request = await fake_discord.send_message(user, "!stylize", attachments=photo_and_style())
            statuses.append(await status_of(fake_discord, request, 0))
            fake_discord.refuse_dms(user)
        await fake_discord.deny_bot(fake_discord.channel_id, discord.Permissions(send_messages=True))
        runner.release_all()
        for status in statuses:
            await fake_discord.wait_for(lambda e, s=status: e.message_id == s.message_id and "❌" not in (e.content or "")
                                        and ("last" in (e.content or "") or "could not deliver" in (e.content or "")),
                                        kind="edit", timeout=15)
        held = [h for user in users for h in await stylize_bot.painter.delivery.held(user.id)]
    assert len(held) == 1  # of four


async def test_a_channel_deleted_mid_job_sends_the_picture_to_its_owner_only(fake_discord: FakeDiscord, run_bot,
                                                                             caplog: pytest.LogCaptureFixture
                                                                             ) -> None:
    """The job's channel is deleted while it paints: the status edits stop at the first 404, the picture goes to
    the one who ran the job by DM (Bob, whose photo it is, hears nothing), and nothing is logged as our fault."""
    alice, bob = fake_discord.alice, fake_discord.bob
    doomed = fake_discord.add_text_channel("doomed")
    runner = FakeRunner()
    photo, style = photo_and_style()
    async with run_bot(make_bot(roomy(), runner=runner)):
        posted = await fake_discord.send_message(bob, "my cat", channel_id=doomed, attachments=[photo])
        request = await fake_discord.send_message(alice, "!stylize", channel_id=doomed, attachments=[style],
                                                  reference=posted["id"])
        await status_of(fake_discord, request, 0)
        await fake_discord.delete_channel(doomed)
        mark = fake_discord.mark()
        runner.release_all()
        dm = await fake_discord.wait_for(with_file, kind="message", since=mark, timeout=15)
        await fake_discord.wait_quiet(0.5)
    assert dm.channel_id == fake_discord.dm_channel_id(alice) and dm.content.startswith(f"<@{alice.id}> here is")
    assert [e for e in fake_discord.sent if e.channel_id == fake_discord.dm_channel_id(bob)] == []
    edits = [e for e in fake_discord.find(kind="edit", since=mark)]
    assert len(edits) <= 1 and "delivering job" not in caplog.text and "Traceback" not in caplog.text


async def test_a_forged_cancel_button_cannot_reach_another_servers_job(fake_discord: FakeDiscord, run_bot) -> None:
    """A moderator here presses a Cancel button whose custom id names a job of another server (or a DM job):
    refused, and the job runs on."""
    from PIL import Image

    from bot.jobs import Job
    runner = FakeRunner()
    mod = fake_discord.moderator
    async with run_bot(make_bot(roomy(), runner=runner)) as stylize_bot:
        here = await fake_discord.send_message(fake_discord.alice, "!stylize", attachments=photo_and_style())
        status = await status_of(fake_discord, here, 0)
        elsewhere = Job(user_id=4242, channel_id=1, guild_id=fake_discord.guild_id + 1, message_id=None,
                        content=Image.new("RGB", (8, 8)), styles=(Image.new("RGB", (8, 8)),),
                        settings=stylize_bot.config.defaults)
        in_dm = Job(user_id=4243, channel_id=2, guild_id=None, message_id=None, content=Image.new("RGB", (8, 8)),
                    styles=(Image.new("RGB", (8, 8)),), settings=stylize_bot.config.defaults)
        for job in (elsewhere, in_dm):
            await stylize_bot.backend.submit(job)
        notes = []
        [row] = fake_discord.messages[int(status.message_id)]["components"]
        for job in (elsewhere, in_dm):  # the status message made to carry the forged id (discord.py ignores others)
            row["components"][0]["custom_id"] = f"stylize:cancel:{job.id}"
            mark = fake_discord.mark()
            await fake_discord.click_button(mod, status.message_id, f"stylize:cancel:{job.id}")
            notes.append(await fake_discord.wait_for(lambda e: bool(e.content), kind="message", since=mark,
                                                     timeout=15))
        alive = {j.id for j in await stylize_bot.backend.jobs()}
        runner.release_all()
    assert all(n.ephemeral and "can cancel this job" in n.content for n in notes)
    assert {elsewhere.id, in_dm.id} <= alive


@pytest.mark.parametrize("keep_days", [7, 0], ids=["stored", "in-memory"])
async def test_the_posters_forget_deletes_a_held_painting_of_their_photo(fake_discord: FakeDiscord, run_bot,
                                                                        data_dir: Path, keep_days: int) -> None:
    """Alice paints Bob's photo; nobody would take the painting, so it is held for Alice. Bob's `forget` deletes
    what others painted from his photo (docs/privacy.md): the held painting too — it was still there for Alice's
    `last`, on disk for keep_days."""
    alice, bob = fake_discord.alice, fake_discord.bob
    elsewhere = fake_discord.add_text_channel("elsewhere")
    runner = FakeRunner()
    cfg = roomy(storage={"data_dir": str(data_dir), "keep_days": keep_days})
    async with run_bot(make_bot(cfg, runner=runner)):
        await hold_a_painting_of(fake_discord, bob, alice, runner)
        forgot = await ask(fake_discord, bob, "!stylize forget", channel_id=elsewhere)
        alices = await ask(fake_discord, alice, "!stylize last", channel_id=elsewhere)
    assert "1 painting waiting for `stylize last`" in forgot.content
    assert "Nothing is waiting for you" in alices.content and not alices.files
    if keep_days:
        assert list((data_dir / "pictures").iterdir()) == []



class Stepping(FakeRunner):
    """FakeRunner that reports a new step every 20 ms until released, like a real painting."""

    def __call__(self, job: Any, report: Any, cancel: threading.Event) -> Any:
        def steps() -> None:
            for step in range(2, job.settings.steps):
                if self._all.wait(0.02) or cancel.is_set():
                    return
                report(Progress(step, job.settings.steps, 1, 1, (8, 8), {"total": 1.0}, 0.01))
        ticker = threading.Thread(target=steps, daemon=True)
        ticker.start()
        try:
            return super().__call__(job, report, cancel)
        finally:
            ticker.join()


async def test_status_updates_stop_once_the_bot_may_no_longer_see_the_channel(fake_discord: FakeDiscord, run_bot
                                                                              ) -> None:
    """The bot loses View Channel while a job paints: every status edit gets 403 (Missing Access); the first
    ends them — else one failing request per progress_interval per job, which count towards Discord's limit on
    invalid requests (10,000 in 10 minutes bans the bot's address for an hour)."""
    runner = Stepping()
    alice = fake_discord.alice
    async with run_bot(make_bot(roomy(), runner=runner)):
        request = await fake_discord.send_message(alice, "!stylize", attachments=photo_and_style())
        status = await status_of(fake_discord, request, 0)
        await asyncio.sleep(0.5)
        shown = sum(1 for r in fake_discord.request_paths if r.startswith("PATCH") and str(status.message_id) in r)
        await fake_discord.deny_bot(fake_discord.channel_id, discord.Permissions(view_channel=True))
        before = len(fake_discord.requests)
        await asyncio.sleep(1.5)  # progress_interval is 0.2 s in the tests
        refused = [r for r in fake_discord.request_paths[before:] if r.startswith("PATCH")
                   and str(status.message_id) in r]
        runner.release_all()
    assert shown >= 2  # the progress did move the status before
    assert len(refused) <= 1


async def test_the_menus_dm_fallback_goes_to_whoever_used_the_menu(fake_discord: FakeDiscord, run_bot) -> None:
    """Alice uses "use this photo" on Bob's photo (the kept job is Bob's); the channel then refuses the bot: the
    picture goes to Alice's DMs — never to Bob's, who asked for nothing."""
    alice, bob = fake_discord.alice, fake_discord.bob
    runner = FakeRunner()
    async with run_bot(make_bot(roomy(), runner=runner)):
        photo = await fake_discord.send_message(bob, "my cat", attachments=[photo_and_style()[0]])
        await fake_discord.use_message_command(alice, "Stylize: use this photo", photo["id"])
        await fake_discord.wait_for(lambda e: e.response_type == 9, kind="interaction_response", timeout=10)
        mark = fake_discord.mark()
        await fake_discord.submit_modal(alice, {"Style": ["wave"], "Settings": "steps=2"})
        await fake_discord.wait_for(lambda e: "Queued" in (e.content or ""), kind="message", since=mark, timeout=15)
        await fake_discord.deny_bot(fake_discord.channel_id, discord.Permissions(send_messages=True))
        mark = fake_discord.mark()
        runner.release_all()
        dm = await fake_discord.wait_for(with_file, kind="message", since=mark, timeout=15)
        await fake_discord.wait_quiet(0.3)
    assert dm.channel_id == fake_discord.dm_channel_id(alice) and dm.content.startswith(f"<@{alice.id}> here is")
    assert dm.pings["users"] == [alice.id]
    assert [e for e in fake_discord.sent if e.channel_id == fake_discord.dm_channel_id(bob)] == []


async def test_a_recovered_job_whose_channel_is_gone_reaches_its_owner_by_dm(fake_discord: FakeDiscord, run_bot
                                                                             ) -> None:
    """A restart while the job's channel was deleted: the job is followed once more and its picture goes to the
    one who ran it by DM, as it does without the restart — it was cancelled and its painting thrown away, the
    owner told nothing. Its status message is gone with the channel: no edit is tried twice."""
    from PIL import Image

    from bot.app import StylizeBot
    from bot.jobs import Job
    from engine import Settings
    from test_bot_delivery import Recovering
    from test_bot_e2e import config

    class Painted(Recovering):
        async def recover(self) -> list[Job]:  # the job is still in the backend, and paints
            for job in self.left:
                await self.submit(job)
            return await super().recover()

    alice = fake_discord.alice
    gone = fake_discord._snowflake()  # a channel that no longer exists
    job = Job(user_id=alice.id, channel_id=gone, guild_id=fake_discord.guild_id, message_id=fake_discord._snowflake(),
              content=Image.new("RGB", (8, 8)), styles=(Image.new("RGB", (8, 8)),), settings=Settings(steps=2))
    job.status_message_id = fake_discord._snowflake()
    cfg = config()
    backend = Painted([job], workers=1, queue_size=cfg.limits.queue_size, per_user=cfg.limits.per_user, timeout=None)
    backend._runner.release_all()  # type: ignore[attr-defined]
    async with run_bot(StylizeBot(cfg, backend=backend, guild_ready_timeout=0.05)):
        dm = await fake_discord.wait_for(with_file, kind="message", timeout=15)
        await fake_discord.wait_quiet(0.3)
    assert dm.channel_id == fake_discord.dm_channel_id(alice) and dm.content.startswith(f"<@{alice.id}> here is")
    assert backend.recovered == 1 and await backend.jobs() == []
