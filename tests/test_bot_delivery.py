"""Results that always reach their owner (issue 20): the real bot against the stand-in, where command messages
get deleted, interaction tokens expire, permissions are taken away and DMs are refused — and the smaller
faults of the same review (status edits after a 404, the settings menu's cooldown, the Tweak form's first
response, recovered jobs whose channel is gone, the help's per-message embed limit)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import discord
import pytest

import bot.render
from bot.inputs import images
from bot.jobs import InProcessBackend, Job
from discord_standin import FLAG_LOADING, Event, FakeDiscord, Upload
from engine import Progress
from test_bot_again import first_result, painted
from test_bot_e2e import (Overlap, config, data_dir, eventually, make_bot, photo_and_style,  # noqa: F401
                          picture, replying_to, status_of, with_file)
from test_bot_jobs import FakeRunner
from test_bot_library import Recording, ask, roomy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def for_owner(owner: Any) -> Callable[[Event], bool]:
    """The picture, posted in the channel as a message of the bot's own, naming its owner."""
    return lambda e: with_file(e) and e.via == "channel" and f"<@{owner.id}>" in (e.content or "")


def keeps_delivering(event: Event, owner: Any) -> None:
    """Only the owner is pinged, and a reply (if it is one) cannot fail for a deleted message."""
    assert event.pings["users"] == [owner.id]
    reference = event.payload.get("message_reference")
    assert reference is None or reference.get("fail_if_not_exists") is False


def slow_down(monkeypatch: pytest.MonkeyPatch, owner: Any, method: str, seconds: float) -> None:
    """Make `owner.method` (a coroutine) wait `seconds` first."""
    real = getattr(owner, method)

    async def slow(*args: Any, **options: Any) -> Any:
        await asyncio.sleep(seconds)
        return await real(*args, **options)

    monkeypatch.setattr(owner, method, slow)


async def menu_answer(fake: FakeDiscord, mark: int) -> Event:
    return await fake.wait_for(lambda e: e.via in ("followup", "interaction") and bool(e.content),
                               kind="message", since=mark, timeout=15)


# ------------------------------------------------------------------------------------- the bugs


async def test_a_deleted_command_message_still_gets_its_picture(fake_discord: FakeDiscord, run_bot) -> None:
    """Bug 1: ctx.reply asked Discord to fail for a deleted message; the picture was lost after "✅ done"."""
    runner = FakeRunner()
    alice = fake_discord.alice
    async with run_bot(make_bot(runner=runner)):
        request = await fake_discord.send_message(alice, "!stylize", attachments=photo_and_style())
        status = await status_of(fake_discord, request, 0)
        await fake_discord.delete_message(request["id"])
        mark = fake_discord.mark()
        runner.release_all()
        result = await fake_discord.wait_for(for_owner(alice), kind="message", since=mark, timeout=15)
        done = await fake_discord.wait_for(lambda e: e.message_id == status.message_id and "✅" in (e.content or ""),
                                           kind="edit", since=mark, timeout=15)
    keeps_delivering(result, alice)
    assert fake_discord.events.index(result) < fake_discord.events.index(done)  # "done" once it is delivered


async def test_a_slash_job_that_outlives_its_token_is_still_delivered(fake_discord: FakeDiscord, run_bot) -> None:
    """Bug 2: the result went out as a follow-up, which fails once the token expired (401, 50027)."""
    fake_discord.token_lifetime = 1.0
    runner = FakeRunner()
    photo, style = photo_and_style()
    bob = fake_discord.bob
    async with run_bot(make_bot(runner=runner)):
        await fake_discord.send_interaction(bob, "stylize paint", {"content": photo, "style": style})
        status = await fake_discord.wait_for(lambda e: "Queued" in (e.content or ""), kind="message", timeout=15)
        await asyncio.sleep(1.1)
        mark = fake_discord.mark()
        runner.release_all()
        result = await fake_discord.wait_for(for_owner(bob), kind="message", since=mark, timeout=15)
        await fake_discord.wait_for(lambda e: e.message_id == status.message_id and "✅" in (e.content or ""),
                                    kind="edit", since=mark, timeout=15)
    keeps_delivering(result, bob)


async def test_use_this_photo_where_the_bot_may_not_post_is_refused_before_painting(fake_discord: FakeDiscord,
                                                                                   run_bot) -> None:
    """Bug 3: the status went out as a follow-up, the job was painted, channel.send got 403 and the picture
    was lost; interactions now check that the bot may post, like prefix commands."""
    muted = fake_discord.add_text_channel("announcements", deny_bot=discord.Permissions(send_messages=True))
    runner = FakeRunner()
    runner.release_all()
    async with run_bot(make_bot(roomy(), runner=runner)):
        photo = await fake_discord.send_message(fake_discord.bob, "my cat", channel_id=muted,
                                                attachments=[photo_and_style()[0]])
        mark = fake_discord.mark()
        await fake_discord.use_message_command(fake_discord.alice, "Stylize: use this photo", photo["id"])
        response = await fake_discord.wait_for(kind="interaction_response", since=mark, timeout=10)
        if response.response_type == 9:  # the old path: a form, and the job painted for nobody
            await fake_discord.submit_modal(fake_discord.alice, {"Style": ["udnie"], "Settings": "steps=2"})
        note = await menu_answer(fake_discord, mark)
        await fake_discord.wait_quiet()
    assert response.response_type != 9 and note.ephemeral and "can't post" in note.content
    assert runner.ran == []


async def test_a_picture_the_channel_refuses_goes_to_the_owner_by_dm(fake_discord: FakeDiscord, run_bot) -> None:
    """Bug 3, later: the bot lost Send Messages while the job ran; the owner gets the picture by DM."""
    runner = FakeRunner()
    alice = fake_discord.alice
    async with run_bot(make_bot(runner=runner)):
        request = await fake_discord.send_message(alice, "!stylize", attachments=photo_and_style())
        await status_of(fake_discord, request, 0)
        await fake_discord.deny_bot(fake_discord.channel_id, discord.Permissions(send_messages=True))
        mark = fake_discord.mark()
        runner.release_all()
        dm = await fake_discord.wait_for(lambda e: with_file(e), kind="message", since=mark, timeout=15)
    assert dm.channel_id == fake_discord.dm_channel_id(alice)
    assert "couldn't post it in <#" in dm.content


async def test_menu_errors_are_shown_only_to_the_asker_and_nothing_stays_thinking(
        fake_discord: FakeDiscord, run_bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug 5: an error after the menu's public defer was shown to everyone; any other error left the message
    stuck on "thinking…"."""
    runner = FakeRunner()
    alice = fake_discord.alice
    async with run_bot(make_bot(roomy(), runner=runner)) as stylize_bot:
        broken = await fake_discord.send_message(fake_discord.bob, "not really",
                                                 attachments=[Upload("cat.png", b"not a picture")])
        fine = await fake_discord.send_message(fake_discord.bob, "my cat", attachments=[photo_and_style()[0]])
        notes = []
        for message in (broken, fine):
            if message is fine:
                async def boom(job: Job) -> int:
                    raise RuntimeError("the queue broke")
                monkeypatch.setattr(stylize_bot.backend, "submit", boom)
            mark = fake_discord.mark()
            await fake_discord.use_message_command(alice, "Stylize: use this photo", message["id"])
            await fake_discord.wait_for(lambda e: e.response_type == 9, kind="interaction_response", since=mark,
                                        timeout=10)
            await fake_discord.submit_modal(alice, {"Style": ["udnie"], "Settings": "steps=2 size=64"})
            notes.append(await fake_discord.wait_for(lambda e: e.content and "⚠️" in e.content, kind="message",
                                                     since=mark, timeout=15))
        await fake_discord.wait_quiet()
    assert [n.ephemeral for n in notes] == [True, True]
    assert "The photo" in notes[0].content and "went wrong on my side" in notes[1].content
    assert not [m for m in fake_discord.messages.values() if int(m.get("flags") or 0) & FLAG_LOADING]


# ----------------------------------------------------------------------------------- smaller ones


class Ticking(FakeRunner):
    """FakeRunner that reports a new step every 20 ms until released: the status text keeps changing."""

    def __call__(self, job: Any, report: Any, cancel: threading.Event) -> Any:
        def ticking(progress: Progress) -> None:
            for step in range(1, 10_000):
                report(Progress(step, 10_000, 1, 1, (8, 8), {"total": 1.0}, 0.01))
                if self._all.wait(0.02) or cancel.is_set():
                    return

        return super().__call__(job, ticking, cancel)


async def test_status_updates_stop_after_the_status_message_is_deleted(fake_discord: FakeDiscord,
                                                                       run_bot) -> None:
    runner = Ticking()
    alice = fake_discord.alice
    async with run_bot(make_bot(runner=runner)):
        request = await fake_discord.send_message(alice, "!stylize", attachments=photo_and_style())
        status = await status_of(fake_discord, request, 0)
        await fake_discord.wait_for(lambda e: e.message_id == status.message_id, kind="edit", timeout=10)
        await fake_discord.delete_message(status.message_id)
        deleted = len(fake_discord.requests)
        await asyncio.sleep(1.0)  # five progress intervals
        mark = fake_discord.mark()
        runner.release_all()
        await fake_discord.wait_for(for_owner(alice), kind="message", since=mark, timeout=15)
        await fake_discord.wait_quiet()
    edits = [r for r in fake_discord.requests[deleted:] if r.method == "PATCH"]
    assert len(edits) <= 1, [str(r) for r in edits]


async def test_the_settings_menu_has_a_cooldown(fake_discord: FakeDiscord, run_bot) -> None:
    """Each use downloads every attachment of the message (up to 25 MB each)."""
    cfg = config(cooldown={"commands": 1, "buttons": 1, "seconds": 60})
    async with run_bot(make_bot(cfg)):
        message = await fake_discord.send_message(fake_discord.bob, "pictures",
                                                  attachments=[Upload(f"{n}.png", picture(16, 16)) for n in range(3)])
        answers = []
        for _ in range(3):
            mark = fake_discord.mark()
            await fake_discord.use_message_command(fake_discord.alice, "Stylize: settings", message["id"])
            answers.append(await menu_answer(fake_discord, mark))
    assert "found no settings" in answers[0].content
    assert all(re.search(r"going a bit fast", a.content) and a.ephemeral for a in answers[1:])


async def test_the_tweak_form_opens_before_the_database_answers(fake_discord: FakeDiscord, run_bot,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A form must be the interaction's first response, within 3 s: a slow database must not stop it."""
    runner = FakeRunner()
    runner.release_all()
    async with run_bot(make_bot(roomy(), runner=runner)) as stylize_bot:
        result = await first_result(fake_discord)
        fake_discord.interaction_timeout = 0.3
        slow_down(monkeypatch, stylize_bot.store, "kept_job", 0.5)
        mark = fake_discord.mark()
        await fake_discord.click_button(fake_discord.bob, result.message_id, label="Tweak")
        opened = await fake_discord.wait_for(kind="interaction_response", since=mark, timeout=5)
        field = opened.payload["data"]["components"][0]["component"]
        mark = fake_discord.mark()
        await fake_discord.submit_modal(fake_discord.bob, {field["custom_id"]: "steps=4"})
        queued = await menu_answer(fake_discord, mark)
    assert opened.response_type == 9 and field["value"] == "size=64\nsteps=6\nstyle_weight=100\nseed=7"
    assert "Queued" in queued.content


class Recovering(InProcessBackend):
    """An in-process backend that hands `left` to the bot as jobs of a previous run."""

    def __init__(self, left: list[Job], **options: Any) -> None:
        super().__init__(FakeRunner(), **options)
        self.left = left
        self.recovered = 0

    async def recover(self) -> list[Job]:
        self.recovered += 1
        return list(self.left)


async def test_help_keeps_each_message_within_discords_embed_total(fake_discord: FakeDiscord, run_bot,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Discord's 6,000 characters hold for all the embeds of one message together, not for each."""
    monkeypatch.setattr(bot.render, "SPECS", bot.render.SPECS * 3)  # a help three times as long
    async with run_bot(make_bot()):
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.alice, "!stylize help")
        await fake_discord.wait_quiet(0.5)
    sent = fake_discord.find(kind="message", since=mark)
    assert len(sent) >= 2 and all(sum(_embed_length(e) for e in m.embeds) <= 6000 for m in sent)
    assert sum(len(e.embeds) for e in sent) >= 3


def _embed_length(embed: dict[str, Any]) -> int:
    return discord.Embed.from_dict(embed).__len__()


async def test_kept_pictures_decode_within_the_two_decoders(fake_discord: FakeDiscord, run_bot,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The again buttons decoded kept pictures on the default executor, outside the 2-decoder limit."""
    runner = FakeRunner()
    runner.release_all()
    slow_decode = Overlap(images.decode_image, seconds=0.2)
    users = [fake_discord.alice, fake_discord.bob, fake_discord.make_user("carol")]
    monkeypatch.setattr(images, "decode_image", slow_decode)  # before the cogs load, so they import this one
    async with run_bot(make_bot(roomy(), runner=runner)):
        result = await first_result(fake_discord)
        mark = fake_discord.mark()
        for user in users:
            await fake_discord.click_button(user, result.message_id, label="Variation")
        await eventually(lambda: len(fake_discord.find(lambda e: "Queued" in (e.content or ""), kind="message",
                                                       since=mark)) == 2 * len(users))  # notes and statuses
    assert slow_decode.peak == 2


async def test_the_tweak_form_gets_the_role_defaults_too(fake_discord: FakeDiscord, run_bot) -> None:
    """Every request goes through the same prepare: a role that animates by default animates a Tweak as well."""
    movers = fake_discord.add_role("movers")
    mover = fake_discord.make_user("mover", roles=[movers])
    runner = Recording()
    runner.release_all()
    async with run_bot(make_bot(roomy(limits={"roles": [{"id": movers, "animate": True}]}), runner=runner)):
        result = await first_result(fake_discord)
        mark = fake_discord.mark()
        await fake_discord.click_button(mover, result.message_id, label="Tweak")
        opened = await fake_discord.wait_for(kind="interaction_response", since=mark, timeout=15)
        field = opened.payload["data"]["components"][0]["component"]
        mark = fake_discord.mark()
        await fake_discord.submit_modal(mover, {field["custom_id"]: "steps=4"})
        await menu_answer(fake_discord, mark)
        await eventually(lambda: len(runner.jobs) == 2)
    first, tweaked = runner.jobs
    assert not first.settings.animate and tweaked.settings.animate and tweaked.user_id == mover.id


async def hold_a_picture(fake: FakeDiscord, owner: Any, runner: FakeRunner) -> Event:
    """`owner` paints in the test's channel; meanwhile the bot loses Send Messages there and the owner closes
    their DMs: the status message's edit that says the picture waits for `stylize last`."""
    request = await fake.send_message(owner, "!stylize", attachments=photo_and_style())
    status = await status_of(fake, request, 0)
    await fake.deny_bot(fake.channel_id, discord.Permissions(send_messages=True))
    fake.refuse_dms(owner)
    runner.release_all()
    return await fake.wait_for(lambda e: e.message_id == status.message_id and "last" in (e.content or ""),
                               kind="edit", timeout=15)


@pytest.mark.parametrize("keep_days", [7, 0], ids=["stored", "in-memory"])
async def test_two_lasts_at_once_post_a_held_picture_once(fake_discord: FakeDiscord, run_bot, data_dir: Path,
                                                          keep_days: int) -> None:
    """A member who types `last` twice in a row (or a fast machine that answers the first while the second
    arrives) gets the painting once: the second waits for the first, then finds nothing waiting."""
    runner = FakeRunner()
    alice = fake_discord.alice
    elsewhere = fake_discord.add_text_channel("elsewhere")
    cfg = roomy(storage={"data_dir": str(data_dir), "keep_days": keep_days})
    async with run_bot(make_bot(cfg, runner=runner)):
        await hold_a_picture(fake_discord, alice, runner)
        first, second = [await fake_discord.send_message(alice, "!stylize last", channel_id=elsewhere)
                         for _ in range(2)]
        answers = [await fake_discord.wait_for(replying_to(request), kind="message", timeout=15)
                   for request in (first, second)]
        await fake_discord.wait_quiet(0.5)
    pictures = [e for e in fake_discord.events if e.kind == "message" and "here is your painting" in (e.content or "")
                and e.channel_id == elsewhere]
    assert len(pictures) == 1 and "Nothing is waiting for you" in answers[1].content


@pytest.mark.parametrize("keep_days", [7, 0], ids=["stored", "in-memory"])
async def test_a_picture_nobody_would_take_waits_for_stylize_last(fake_discord: FakeDiscord, run_bot,
                                                                  data_dir: Path, keep_days: int) -> None:
    """Neither the channel nor the owner's DMs take it: the owner hears of it with their next command. With
    storage (keep_days > 0) it is held on disk; without, in memory, which `last` says."""
    runner = FakeRunner()
    alice = fake_discord.alice
    elsewhere = fake_discord.add_text_channel("elsewhere")
    cfg = roomy(storage={"data_dir": str(data_dir), "keep_days": keep_days})
    async with run_bot(make_bot(cfg, runner=runner)):
        held = await hold_a_picture(fake_discord, alice, runner)
        mark = fake_discord.mark()
        await fake_discord.send_message(alice, "!stylize queue", channel_id=elsewhere)
        news = await fake_discord.wait_for(lambda e: "📬" in (e.content or ""), kind="message", since=mark)
        picture = await ask(fake_discord, alice, "!stylize last", channel_id=elsewhere)
        nothing = await ask(fake_discord, alice, "!stylize last", channel_id=elsewhere)
    assert "`!stylize last`" in held.content and "`!stylize last`" in news.content
    assert not news.ephemeral and "DM" not in news.content  # seen by the channel: not why it was not delivered
    assert picture.channel_id == elsewhere and picture.content.startswith(f"<@{alice.id}> here is your painting")
    assert picture.embeds and picture.embeds[0]["image"]["url"] == f"attachment://{picture.filenames[0]}"
    assert "Nothing is waiting for you" in nothing.content
    assert ("restart" in nothing.content) is (keep_days == 0)


async def test_a_held_picture_survives_a_restart_and_reaches_its_owner_only(fake_discord: FakeDiscord,
                                                                            run_bot) -> None:
    """Held on disk: after a restart the owner is told of it, `/stylize last` delivers it (here in a DM; then it is
    gone, across the next restart too); another member's `last` shows nothing of it, and they are told nothing."""
    alice, bob = fake_discord.alice, fake_discord.bob
    elsewhere = fake_discord.add_text_channel("elsewhere")
    runner = FakeRunner()
    async with run_bot(make_bot(roomy(), runner=runner)):
        await hold_a_picture(fake_discord, alice, runner)
    async with run_bot(make_bot(roomy(), runner=FakeRunner())):
        mark = fake_discord.mark()
        await fake_discord.send_interaction(bob, "stylize last", channel_id=elsewhere)
        await fake_discord.wait_for(kind="message", since=mark)
        await fake_discord.wait_quiet(0.5)
        bob_saw = fake_discord.find(kind="message", since=mark)
        mark = fake_discord.mark()
        await fake_discord.send_message(alice, "!stylize queue", channel_id=elsewhere)
        news = await fake_discord.wait_for(lambda e: "📬" in (e.content or ""), kind="message", since=mark)
        mark = fake_discord.mark()
        await fake_discord.send_interaction(alice, "stylize last", dm=True)
        picture = await fake_discord.wait_for(with_file, kind="message", since=mark)
    async with run_bot(make_bot(roomy(), runner=FakeRunner())):
        nothing = await ask(fake_discord, alice, "!stylize last", channel_id=elsewhere)
    assert [e.content for e in bob_saw if e.files or "📬" in (e.content or "") or "painting!" in (e.content or "")] == []
    assert len(bob_saw) == 1 and "Nothing is waiting for you" in bob_saw[0].content
    assert "`!stylize last`" in news.content and news.channel_id == elsewhere
    assert picture.channel_id == fake_discord.dm_channel_id(alice) and picture.ephemeral
    assert picture.content.startswith(f"<@{alice.id}> here is your painting")
    assert "Nothing is waiting for you" in nothing.content


async def test_the_news_never_takes_the_place_of_a_slash_commands_public_answer(
        fake_discord: FakeDiscord, run_bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """`/stylize paint` defers publicly and fills that answer with the job's status once the pictures are in
    (slow here): the news of a held picture comes after it, privately, and the status stays public."""
    alice = fake_discord.alice
    elsewhere = fake_discord.add_text_channel("elsewhere")
    runner = FakeRunner()
    photo, style = photo_and_style()
    async with run_bot(make_bot(roomy(), runner=runner)) as stylize_bot:
        await hold_a_picture(fake_discord, alice, runner)
        slow_down(monkeypatch, stylize_bot.painter.intake, "gather", 0.5)
        mark = fake_discord.mark()
        await fake_discord.send_interaction(alice, "stylize paint", {"content": photo, "style": style},
                                            channel_id=elsewhere)
        news = await fake_discord.wait_for(lambda e: "📬" in (e.content or ""), kind="message", since=mark,
                                           timeout=15)
        await fake_discord.wait_quiet(0.5)
    [status] = [e for e in fake_discord.find(kind="message", since=mark) if "Queued" in (e.content or "")]
    assert news.ephemeral and not status.ephemeral and status.message_id != news.message_id
    assert "your DMs are closed to me" in news.content


async def test_a_held_picture_too_large_for_where_last_is_used_stays_held(fake_discord: FakeDiscord,
                                                                         run_bot) -> None:
    """The painting was encoded for its own server's upload limit; where `last` is used may allow less (a DM,
    an unboosted server): the owner is told so, and it stays held."""
    alice = fake_discord.alice
    runner = FakeRunner()
    async with run_bot(make_bot(roomy(), runner=runner)):
        await hold_a_picture(fake_discord, alice, runner)
        fake_discord.attachment_size_limit = 100  # bytes, where the slash command is used
        mark = fake_discord.mark()
        await fake_discord.send_interaction(alice, "stylize last", dm=True)
        refused = await menu_answer(fake_discord, mark)
        fake_discord.attachment_size_limit = None
        mark = fake_discord.mark()
        await fake_discord.send_interaction(alice, "stylize last", dm=True)
        picture = await fake_discord.wait_for(with_file, kind="message", since=mark, timeout=15)
    assert refused.ephemeral and "too large to upload here" in refused.content and "I keep it" in refused.content
    assert picture.content.startswith(f"<@{alice.id}> here is your painting")


@pytest.mark.parametrize("keep_days", [7, 0], ids=["stored", "in-memory"])
async def test_forget_deletes_a_held_picture(fake_discord: FakeDiscord, run_bot, data_dir: Path,
                                            keep_days: int) -> None:
    alice = fake_discord.alice
    elsewhere = fake_discord.add_text_channel("elsewhere")
    runner = FakeRunner()
    cfg = roomy(storage={"data_dir": str(data_dir), "keep_days": keep_days})
    async with run_bot(make_bot(cfg, runner=runner)):
        await hold_a_picture(fake_discord, alice, runner)
        forgot = await ask(fake_discord, alice, "!stylize forget", channel_id=elsewhere)
        nothing = await ask(fake_discord, alice, "!stylize last", channel_id=elsewhere)
    async with run_bot(make_bot(cfg, runner=FakeRunner())):
        still_nothing = await ask(fake_discord, alice, "!stylize last", channel_id=elsewhere)
    assert "1 painting waiting for `stylize last`" in forgot.content
    assert ("1 kept job" in forgot.content) is (keep_days > 0)
    assert "Nothing is waiting for you" in nothing.content and "Nothing is waiting for you" in still_nothing.content
    assert list((data_dir / "pictures").iterdir()) == []  # the painting, and the job's kept inputs


@pytest.mark.parametrize("entry", ["button", "menu"])
async def test_the_news_of_a_held_picture_comes_with_a_button_or_a_menu_once(fake_discord: FakeDiscord, run_bot,
                                                                             entry: str) -> None:
    """Whatever way the owner comes back — here an again button or the settings menu, on Bob's painting — they
    are told privately, once, that a picture waits for them."""
    alice, bob = fake_discord.alice, fake_discord.bob
    elsewhere = fake_discord.add_text_channel("elsewhere")
    runner = FakeRunner()
    async with run_bot(make_bot(roomy(), runner=runner)):
        await hold_a_picture(fake_discord, alice, runner)
        request = await fake_discord.send_message(bob, "!stylize", attachments=photo_and_style(), channel_id=elsewhere)
        result = await painted(fake_discord, request)
        seen = []
        for _ in range(2):
            mark = fake_discord.mark()
            if entry == "button":
                await fake_discord.click_button(alice, result.message_id, label="Variation")
            else:
                await fake_discord.use_message_command(alice, "Stylize: settings", result.message_id)
            await fake_discord.wait_for(lambda e: e.ephemeral and ("Queued" in (e.content or "") or bool(e.embeds)),
                                        kind="message", since=mark, timeout=15)
            await fake_discord.wait_quiet(0.5)
            seen.append([e for e in fake_discord.find(kind="message", since=mark) if "📬" in (e.content or "")])
    [news], again = seen
    assert news.ephemeral and "`!stylize last`" in news.content and again == []
    assert "your DMs are closed to me" in news.content  # seen by the owner only: the reason too


async def test_slash_paint_where_the_bot_may_not_post_is_refused_before_painting(fake_discord: FakeDiscord,
                                                                                 run_bot) -> None:
    muted = fake_discord.add_text_channel("announcements", deny_bot=discord.Permissions(send_messages=True))
    runner = FakeRunner()
    photo, style = photo_and_style()
    async with run_bot(make_bot(runner=runner)):
        mark = fake_discord.mark()
        await fake_discord.send_interaction(fake_discord.alice, "stylize paint", {"content": photo, "style": style},
                                            channel_id=muted)
        note = await menu_answer(fake_discord, mark)
        await fake_discord.wait_quiet()
    assert note.ephemeral and "can't post in this channel" in note.content and runner.ran == []
