"""Paint it again, end to end: the buttons under a result and the "Stylize: paint again" menu — the real bot
against the loopback Discord stand-in, the store on real files in the test's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import bot.jobs.base
from bot.cogs.again import STYLE_STEP
from bot.painting.buttons import OPS
from discord_standin import Event, FakeDiscord
from engine import Settings, stylize
from test_bot_e2e import (data_dir, decoded, eventually, make_bot, photo_and_style,  # noqa: F401
                          replying_to, with_file)
from test_bot_library import Recording, kept_jobs, noted, roomy

pytestmark = pytest.mark.usefixtures("one_torch_thread", "vgg_loaded")

FIRST = "!stylize steps=6 size=64 style_weight=100 seed=7"


async def painted(fake: FakeDiscord, request: dict[str, Any] | Event, mark: int = 0) -> Event:
    """The bot's picture in reply to `request` (a command, or an earlier result)."""
    target = request if isinstance(request, dict) else {"id": str(request.message_id)}
    return await fake.wait_for(lambda e: with_file(e) and replying_to(target)(e), kind="message", since=mark,
                               timeout=20)


async def first_result(fake: FakeDiscord, user: Any = None, text: str = FIRST) -> Event:
    request = await fake.send_message(user or fake.alice, text, attachments=photo_and_style())
    return await painted(fake, request)


async def click(fake: FakeDiscord, user: Any, result: Event, label: str) -> tuple[Event, Event]:
    """Click a button under `result`: (the clicker's own note, the new picture replying to `result`)."""
    mark = fake.mark()
    pressed = await fake.click_button(user, result.message_id, label=label)
    note = await fake.response_to(pressed, lambda e: e.via == "followup" and e.ephemeral, kind="message", timeout=20)
    return note, await painted(fake, result, mark) if "Queued" in note.content else note


async def answer(fake: FakeDiscord, interaction: dict[str, Any]) -> Event:
    """The bot's (ephemeral) answer to `interaction` — to this one, not the next answer to anyone."""
    return await fake.response_to(interaction, lambda e: e.ephemeral, kind="message", timeout=15)


# --------------------------------------------------------------------------------------- buttons


async def test_each_button_queues_the_right_settings_in_reply_to_the_result(fake_discord: FakeDiscord,
                                                                           run_bot) -> None:
    runner = Recording()
    runner.release_all()
    alice = fake_discord.alice
    async with run_bot(make_bot(roomy(), runner=runner)):
        result = await first_result(fake_discord)
        rows = fake_discord.get_message(result.message_id)["components"]
        outcomes = {}
        for op in ("Variation", "More style", "Less style", "Keep colours", "Bigger"):
            outcomes[op] = await click(fake_discord, alice, result, op)
        status = [e for e in fake_discord.sent if (e.content or "").startswith("⏳ Queued")]
    assert [[b["label"] for b in row["components"]] for row in rows] == \
        [["Variation", "More style", "Less style"], ["Keep colours", "Bigger", "Tweak"]]
    first, *again = runner.jobs
    assert first.settings.seed == 7 and first.settings.style_weight == 100
    variation, more, less, colours, bigger = (job.settings for job in again)
    assert variation.seed is None and variation.style_weight == 100  # a new seed: the engine picks one
    assert more.style_weight == 100 * STYLE_STEP and less.style_weight == 100 / STYLE_STEP and more.seed == 7
    assert colours.preserve_color == "luminance" and colours.style_weight == 100
    assert (bigger.size, bigger.steps, bigger.scales) == (128, 2, 1)
    for op, (note, picture) in outcomes.items():
        assert note.content.startswith(f"{OPS[next(k for k, v in OPS.items() if v.label == op)].emoji} Queued as job")
        assert replying_to({"id": str(result.message_id)})(picture) and picture.content.startswith(f"<@{alice.id}>")
    assert len(status) == 6 and all(replying_to({"id": str(result.message_id)})(e) for e in status[1:])  # a history
    # Bigger starts from the result itself, and paints from the photo as it was taken in (80 px, not the 64 px job)
    start = again[-1].init
    assert start is not None and np.array_equal(np.asarray(start), np.asarray(decoded(result)))
    assert first.init is None and again[-1].content.size == (80, 60) and first.content.size == (64, 48)
    assert [j.user_id for j in runner.jobs] == [alice.id] * 6
    assert "• **style_weight = 200**" in outcomes["More style"][1].embeds[0]["description"]


async def test_keep_colours_toggles_back(fake_discord: FakeDiscord, run_bot) -> None:
    runner = Recording()
    runner.release_all()
    async with run_bot(make_bot(roomy(), runner=runner)):
        result = await first_result(fake_discord, text=FIRST + " preserve_color=luminance")
        _, picture = await click(fake_discord, fake_discord.alice, result, "Keep colours")
    assert [j.settings.preserve_color for j in runner.jobs] == ["luminance", "none"]
    assert picture.components  # a painted-again result gets the buttons too


async def test_a_click_by_another_user_runs_under_their_caps(fake_discord: FakeDiscord, run_bot) -> None:
    painters = fake_discord.add_role("Painters")
    painter = fake_discord.make_user("painter", roles=[painters])
    cfg = roomy(limits={"max_size": 128, "per_user": 1, "roles": [{"id": painters, "max_size": 512}]},
                defaults={"size": 64})
    runner = Recording()

    async def finish(n: int) -> None:  # let the n-th job finish once it runs
        await eventually(lambda: len(runner.jobs) > n)
        runner.release(runner.jobs[n])

    async with run_bot(make_bot(cfg, runner=runner)):
        request = await fake_discord.send_message(fake_discord.alice, FIRST.replace("size=64", "size=128"),
                                                  attachments=photo_and_style())
        await finish(0)
        result = await painted(fake_discord, request)
        refused, _ = await click(fake_discord, fake_discord.bob, result, "Bigger")
        await fake_discord.click_button(painter, result.message_id, label="Bigger")
        await finish(1)
        bigger = await painted(fake_discord, result)
        more = await fake_discord.click_button(fake_discord.bob, result.message_id, label="More style")
        await answer(fake_discord, more)  # queued, and held running: bob's per-user limit of 1 is reached
        limited, _ = await click(fake_discord, fake_discord.bob, result, "Less style")
        await finish(2)
    assert refused.content == "⚠️ This picture is 128 px already, the largest you may ask for here."
    assert runner.jobs[1].user_id == painter.id and runner.jobs[1].settings.size == 256
    assert bigger.content.startswith(f"<@{painter.id}> here is your painting!")
    assert runner.jobs[2].user_id == fake_discord.bob.id
    assert limited.content == "⚠️ You already have 1 job in the queue — wait for one to finish, or cancel one."


async def test_buttons_work_after_a_restart(fake_discord: FakeDiscord, run_bot) -> None:
    first, second = Recording(), Recording()
    first.release_all()
    second.release_all()
    async with run_bot(make_bot(roomy(), runner=first)):
        result = await first_result(fake_discord)
    async with run_bot(make_bot(roomy(), runner=second)):  # a new bot, the same data_dir
        note, picture = await click(fake_discord, fake_discord.bob, result, "More style")
    assert "Queued as job" in note.content and picture.content.startswith(f"<@{fake_discord.bob.id}> here is")
    (job,) = second.jobs
    assert job.settings.style_weight == 200 and job.settings.steps == 6 and job.content.size == (64, 48)
    assert np.array_equal(np.asarray(job.styles[0]), np.asarray(first.jobs[0].styles[0]))


async def test_expired_or_unkept_inputs_say_how_to_start_again(fake_discord: FakeDiscord, run_bot,
                                                                 data_dir: Path) -> None:
    runner = Recording()
    runner.release_all()
    alice = fake_discord.alice
    async with run_bot(make_bot(roomy(), runner=runner)):
        result = await first_result(fake_discord)
        await fake_discord.send_message(alice, "!stylize forget")
        await fake_discord.wait_for(lambda e: "Deleted" in (e.content or ""), kind="message", timeout=15)
        variation = await fake_discord.click_button(alice, result.message_id, label="Variation")
        gone = await answer(fake_discord, variation)
    async with run_bot(make_bot(roomy(storage={"data_dir": str(data_dir), "keep_days": 0}),
                                runner=runner)):
        variation = await fake_discord.click_button(alice, result.message_id, label="Variation")
        unkept = await answer(fake_discord, variation)
        unbuttoned = await first_result(fake_discord)
    job = runner.jobs[0].short
    assert gone.content == (f"I no longer have the photo and style of job `{job}`: I keep them 7 days, and "
                            "`forget` deletes them at once. To paint it again, send the photo and the style again "
                            "with `!stylize` (or `/stylize paint`).")
    assert unkept.content == ("This bot keeps no photos or settings of finished jobs — to paint it again, send "
                              "the photo and the style again with `!stylize` (or `/stylize paint`).")
    assert len(runner.jobs) == 2 and unbuttoned.components == []  # nothing kept: no buttons


# ------------------------------------------------------------------------------- Tweak, the menu


async def test_tweak_and_the_paint_again_menu(fake_discord: FakeDiscord, run_bot, data_dir: Path) -> None:
    runner = Recording()
    runner.release_all()
    alice, bob = fake_discord.alice, fake_discord.bob
    async with run_bot(make_bot(roomy(), runner=runner)):
        result = await first_result(fake_discord)
        pressed = await fake_discord.click_button(bob, result.message_id, label="Tweak")
        opened = await fake_discord.response_to(pressed, timeout=15)
        mark = fake_discord.mark()
        await fake_discord.submit_modal(bob, {opened.payload["data"]["components"][0]["component"]["custom_id"]:
                                              "steps=4 seed=3 preserve_color=luminance"}, interaction=pressed)
        tweaked = await painted(fake_discord, result, mark)
        await eventually(lambda: noted(data_dir, tweaked.message_id))
        use = await fake_discord.use_message_command(alice, "Stylize: paint again", tweaked.message_id)
        menu = await fake_discord.response_to(use, timeout=15)
        mark = fake_discord.mark()
        field = menu.payload["data"]["components"][0]["component"]
        await fake_discord.submit_modal(alice, {field["custom_id"]: field["value"] + "\nsize=96"}, interaction=use)
        again = await painted(fake_discord, tweaked, mark)
        use = await fake_discord.use_message_command(alice, "Stylize: paint again", tweaked.message_id)
        await fake_discord.response_to(use, timeout=15)
        refused = await answer(fake_discord, await fake_discord.submit_modal(
            alice, {field["custom_id"]: "stile_weight=3 starry_night"}, interaction=use))
        request = await fake_discord.send_message(alice, "just a message")
        unknown = await answer(fake_discord, await fake_discord.use_message_command(
            alice, "Stylize: paint again", request["id"]))
        owners = kept_jobs(data_dir)
    assert opened.response_type == 9 and menu.response_type == 9
    assert opened.payload["data"]["components"][0]["component"]["value"] == \
        "size=64\nsteps=6\nstyle_weight=100\nseed=7"  # what alice set, and the seed
    first, from_button, from_menu = runner.jobs
    tweak = from_button.settings  # style_weight, left out of the form, takes the default again
    assert (tweak.steps, tweak.seed, tweak.style_weight) == (4, 3, Settings().style_weight)
    assert from_button.user_id == bob.id and from_button.settings.preserve_color == "luminance"
    assert from_button.given == {"steps", "seed", "preserve_color"}
    assert field["value"] == "steps=4\npreserve_color=luminance\nseed=3"  # the tweaked job's own settings
    assert (from_menu.settings.size, from_menu.settings.steps, from_menu.user_id) == (96, 4, alice.id)
    assert again.content.startswith(f"<@{alice.id}> here is") and tweaked.content.startswith(f"<@{bob.id}> here is")
    assert owners == [alice.id] * 3  # bob painted alice's photo: it stays hers, for her `forget`
    assert refused.content.startswith("⚠️ Only settings change here (key=value) — `starry_night` isn't one.")
    assert unknown.content.startswith("I no longer have a photo and settings for that message (is it one of my "
                                      "paintings?)")


async def test_a_tweak_form_sent_after_forget_paints_and_keeps_nothing(fake_discord: FakeDiscord, run_bot,
                                                                       data_dir: Path) -> None:
    """Bob opens the Tweak form under Alice's result, Alice runs `forget`, Bob sends the form: the form's copy
    of the job is stale, so it is looked up again — gone, Bob is told so and nothing is painted. (Bob painted the
    same photo himself, so its files outlive Alice's forget: the stale copy used to repaint it and keep it under
    Alice's id again, undoing her forget.)"""
    runner = Recording()
    runner.release_all()
    alice, bob = fake_discord.alice, fake_discord.bob
    uploads = photo_and_style()
    async with run_bot(make_bot(roomy(), runner=runner)):
        result = await painted(fake_discord, await fake_discord.send_message(alice, FIRST, attachments=uploads))
        await painted(fake_discord, await fake_discord.send_message(bob, FIRST, attachments=uploads))
        pressed = await fake_discord.click_button(bob, result.message_id, label="Tweak")
        opened = await fake_discord.response_to(pressed, timeout=15)
        forget = await fake_discord.send_message(alice, "!stylize forget")
        await fake_discord.wait_for(replying_to(forget), kind="message", timeout=15)
        sent = await fake_discord.submit_modal(bob, {opened.payload["data"]["components"][0]["component"]["custom_id"]:
                                                     "steps=4"}, interaction=pressed)
        gone = await answer(fake_discord, sent)
        await fake_discord.wait_quiet(0.5)
        owners = kept_jobs(data_dir)
    assert gone.content.startswith("I no longer have the photo and style of job") and "`forget`" in gone.content
    assert len(runner.jobs) == 2 and owners == [bob.id]  # nothing painted, nothing kept again under alice


# ------------------------------------------------------------------------ Bigger, the real engine


async def test_bigger_hands_the_result_to_the_engine(fake_discord: FakeDiscord, run_bot,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Image.Image | None] = []

    def spy(*args: Any, **options: Any) -> Any:
        started.append(options.get("init_image"))
        return stylize(*args, **options)

    monkeypatch.setattr(bot.jobs.base, "stylize", spy)
    async with run_bot(make_bot(roomy())):
        result = await first_result(fake_discord, text="!stylize steps=2 size=64 scales=1")
        _, bigger = await click(fake_discord, fake_discord.alice, result, "Bigger")
    assert started[0] is None and started[1] is not None
    assert np.array_equal(np.asarray(started[1]), np.asarray(decoded(result)))
    assert decoded(bigger).size == (128, 96)
