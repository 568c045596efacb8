"""Guard rails at every entry point: the real bot against the loopback Discord stand-in, driven only through
Discord events (messages, slash commands, buttons, forms, context menus), so these hold whichever code
carries the checks out.

For each way in — `!stylize`, `/stylize paint`, the five "again" buttons, the Tweak form, the three message
context menus, the library commands and the defaults commands — the guards that apply there:

* the channel and server allow-list ([access] channels, guilds): refused, nothing queued;
* where the bot may not post (its status and picture would fail): refused, nothing queued — in a thread
  what counts is Send Messages in Threads, not Send Messages;
* moderator-only (styles add/remove: moderators; defaults: Manage Server);
* caps: settings over the member's cap are refused, a role that raises the cap lets them through;
* role defaults: a role's `animate` default reaches the job;
* the cooldown: a second request within the period is refused;
* owner rules: only the owner (or a moderator) cancels a job, a kept photo stays its owner's to `forget`.

Every way to paint goes through one painting service (bot/painting/service.py), and these tests see to it
that each way keeps each guard. Jobs go to a recording runner that finishes at once (no painting);
pictures are at most 80 px.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import discord
import pytest

from discord_standin import Event, FakeDiscord, Upload, User
from test_bot_e2e import (config, data_dir, eventually, make_bot, mask_png, photo_and_style,  # noqa: F401
                          picture, replying_to, with_file)
from test_bot_library import Recording

BUTTONS = ("Variation", "More style", "Less style", "Keep colours", "Bigger")
FORMS = ("Tweak", "Stylize: paint again")  # the Tweak form, from the button or from the menu
USE_PHOTO = "Stylize: use this photo"
SETTINGS = "Stylize: settings"
AGAIN = (*BUTTONS, *FORMS)  # paint a kept job again
PAINT = ("!stylize", "/stylize paint", *AGAIN, USE_PHOTO)  # every way a job is asked for
FROM_RESULT = (*AGAIN, USE_PHOTO, SETTINGS)  # the ways that start from a result message

CAP = "over this server's cap"
SLOW = "going a bit fast"
DISABLED = "not enabled in this channel"


def tiny(**table: Any) -> Any:
    """The tests' configuration: small jobs by default, room for a test's worth of commands."""
    table.setdefault("cooldown", {"commands": 100, "buttons": 100})
    return config(defaults={"size": 64, "steps": 2}, **table)


def started() -> Recording:
    runner = Recording()
    runner.release_all()
    return runner


def jobs_of(runner: Recording, user: User) -> list[Any]:
    return [job for job in runner.jobs if job.user_id == user.id]


# ------------------------------------------------------------------------------------------- driving


async def answer_to(fake: FakeDiscord, used: dict[str, Any], since: int) -> Event:
    """The bot's first answer to the interaction `used`: a message (note, status, refusal) or a form."""
    iid = int(used["id"])
    return await fake.wait_for(lambda e: e.interaction_id == iid and (e.kind == "message" or e.response_type == 9),
                               since=since, timeout=15)


def filled(form: dict[str, Any], text: str) -> dict[str, Any]:
    """Values for a form: a library style in the style field (a select or text), `text` in the settings
    (the last text field)."""
    fields = [c for row in form["components"] for c in (row.get("component"), *row.get("components", ())) if c]
    texts = [c for c in fields if c["type"] == 4]
    values: dict[str, Any] = {c["custom_id"]: ["udnie"] for c in fields if c["type"] == 3}
    values.update({c["custom_id"]: "udnie" for c in texts[:-1]})
    values[texts[-1]["custom_id"]] = text
    return values


async def attempt(fake: FakeDiscord, way: str, user: User, text: str = "", target: int | None = None,
                  channel_id: int | None = None) -> Event:
    """`user` asks for a job (or, for the settings menu, a job's settings) through `way`, with `text` for its
    settings where that way takes any; `target`: the message (a result) a button or menu is used on, `channel_id`:
    where a command is sent (default: the text channel). Returns the bot's last answer to them: a refusal, or what
    it said once the request was taken."""
    mark = fake.mark()
    if way == "!stylize":
        request = await fake.send_message(user, f"!stylize {text}", attachments=photo_and_style(),
                                          channel_id=channel_id)
        return await fake.wait_for(replying_to(request), kind="message", since=mark, timeout=15)
    if way == "/stylize paint":
        photo, style = photo_and_style()
        used = await fake.send_interaction(user, "stylize paint", {"content": photo, "style": style,
                                                                   **({"settings": text} if text else {})},
                                           channel_id=channel_id)
        return await answer_to(fake, used, mark)
    assert target is not None
    if way in BUTTONS or way == "Tweak":
        used = await fake.click_button(user, target, label=way)
    else:
        used = await fake.use_message_command(user, way, target)
    first = await answer_to(fake, used, mark)
    if first.response_type != 9:  # no form: refused, or answered at once
        return first
    mark = fake.mark()
    form = fake.interactions[int(used["id"])].modal
    submitted = await fake.submit_modal(user, filled(form, text), interaction=used)
    return await answer_to(fake, submitted, mark)


async def result_of(fake: FakeDiscord, user: User, text: str = "", channel_id: int | None = None) -> int:
    """`user`'s painted result (with the "again" buttons; in `channel_id`, default the text channel), kept and
    findable by its message: its id."""
    request = await fake.send_message(user, f"!stylize {text}", attachments=photo_and_style(), channel_id=channel_id)
    result = await fake.wait_for(lambda e: with_file(e) and replying_to(request)(e), kind="message", timeout=15)
    await fake.wait_quiet(0.3)  # the result's message is recorded with the kept job once it is posted
    return result.message_id


async def command(fake: FakeDiscord, user: User, text: str, channel_id: int | None = None,
                  attachments: Iterable[Upload] = ()) -> Event:
    """Send `!…` as a message or `/…` as a slash command (options: key:value words); the bot's first answer."""
    mark = fake.mark()
    if text.startswith("!"):
        request = await fake.send_message(user, text, attachments=list(attachments), channel_id=channel_id)
        return await fake.wait_for(replying_to(request), kind="message", since=mark, timeout=15)
    name, _, rest = text[1:].partition(" ")
    words = rest.split()
    while words and ":" not in words[0]:  # subcommand names
        name, words = f"{name} {words[0]}", words[1:]
    options: dict[str, Any] = dict(word.split(":", 1) for word in words)
    options.update(zip(["content", "style"] if name == "stylize paint" else ["picture"], attachments))
    used = await fake.send_interaction(user, name, options or None, channel_id=channel_id)
    return await answer_to(fake, used, mark)


# ------------------------------------------------------------------------------------- allow-list

COMMANDS = {  # a command, who sends it, what it needs attached
    "!stylize": ("alice", 2), "/stylize paint": ("alice", 2), "!stylize help": ("alice", 0),
    "!stylize queue": ("alice", 0), "/stylize queue": ("alice", 0), "!stylize cancel": ("alice", 0),
    "/stylize cancel": ("alice", 0), "!stylize styles": ("alice", 0), "/stylize styles": ("alice", 0),
    "!stylize styles add lilies": ("moderator", 1), "/stylize styles action:add name:lilies": ("moderator", 1),
    "!stylize styles remove lilies": ("moderator", 0), "!stylize forget": ("alice", 0),
    "/stylize forget": ("alice", 0), "!stylize defaults": ("alice", 0), "!stylize defaults steps=7": ("owner", 0),
    "!stylize-defaults steps=7": ("owner", 0), "/stylize-defaults settings:steps=7": ("owner", 0),
}


def attachments_for(n: int) -> list[Upload]:
    return photo_and_style() if n == 2 else [Upload("lilies.png", picture(60, 40))] * n


@pytest.mark.parametrize("text", COMMANDS)
@pytest.mark.parametrize("listed", ["channels", "guilds"])
async def test_commands_only_where_enabled(fake_discord: FakeDiscord, run_bot, text: str, listed: str) -> None:
    """Outside the allow-list a command does nothing: a prefix command stays quiet (or says it is not enabled
    there), a slash command says so; no job is queued, no style or default changes."""
    allowed = fake_discord.add_text_channel("painting")
    access = {"channels": [allowed]} if listed == "channels" else {"guilds": [fake_discord.guild_id + 1]}
    runner = started()
    user, uploads = COMMANDS[text]
    async with run_bot(make_bot(tiny(access=access), runner=runner)):
        mark = fake_discord.mark()
        if text.startswith("!"):
            await fake_discord.send_message(getattr(fake_discord, user), text, attachments=attachments_for(uploads))
        else:
            answer = await command(fake_discord, getattr(fake_discord, user), text, attachments=attachments_for(uploads))
            assert answer.ephemeral and DISABLED in answer.content
        if listed == "channels":  # where the bot is enabled, it answers (so it has read the first one by now)
            await command(fake_discord, fake_discord.alice, "!stylize help", channel_id=allowed)
        await fake_discord.wait_quiet(0.3)
        said = [e.content for e in fake_discord.find(kind="message", since=mark)
                if e.channel_id == fake_discord.channel_id]
    assert all(DISABLED in (content or "") for content in said), said
    assert runner.jobs == []


@pytest.mark.parametrize("text", COMMANDS)
async def test_commands_answer_where_enabled(fake_discord: FakeDiscord, run_bot, text: str) -> None:
    """In a listed channel of a listed server, every command is answered."""
    allowed = fake_discord.add_text_channel("painting")
    user, uploads = COMMANDS[text]
    access = {"guilds": [fake_discord.guild_id], "channels": [allowed]}
    async with run_bot(make_bot(tiny(access=access), runner=started())):
        answer = await command(fake_discord, getattr(fake_discord, user), text, channel_id=allowed,
                               attachments=attachments_for(uploads))
    assert DISABLED not in (answer.content or ""), answer.content


@pytest.mark.parametrize("way", FROM_RESULT)
async def test_results_only_where_enabled(fake_discord: FakeDiscord, run_bot, way: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """A result in a channel the bot is no longer enabled in (the allow-list changed since): its buttons, the
    Tweak form and the menus refuse, saying so to the presser only, and go no further (no error logged);
    with the result's server and channel listed, they answer."""
    allowed = fake_discord.add_text_channel("painting")
    runner = started()
    async with run_bot(make_bot(tiny(), runner=runner)):
        result = await result_of(fake_discord, fake_discord.alice)
    async with run_bot(make_bot(tiny(access={"channels": [allowed]}), runner=runner)):
        answer = await attempt(fake_discord, way, fake_discord.bob, "steps=3", result)
        await fake_discord.wait_quiet(0.3)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    queued = jobs_of(runner, fake_discord.bob)
    listed = {"guilds": [fake_discord.guild_id], "channels": [fake_discord.channel_id]}
    async with run_bot(make_bot(tiny(access=listed), runner=runner)):
        answered = await attempt(fake_discord, way, fake_discord.bob, "steps=3", result)
    assert answer.ephemeral and DISABLED in answer.content
    assert queued == [] and errors == []
    assert DISABLED not in (answered.content or ""), answered.content


MUTED = "I may not send messages there"  # the log line of a channel whose commands the bot ignores
PLACES = ("channel", "thread")
# What takes posting from the bot, set on a channel: there, Send Messages; in its threads, Send Messages in
# Threads (Send Messages does not count in a thread, so it is left).
MUTE = {"channel": discord.Permissions(send_messages=True),
        "thread": discord.Permissions(send_messages_in_threads=True)}
LACKING = {"channel": "can't post in this channel (I lack the Send Messages permission here)",
           "thread": "can't post in this thread (I lack the Send Messages in Threads permission here)"}


async def place(fake: FakeDiscord, where: str, parent: int | None = None) -> int:
    """The text channel `parent` (default: the guild's), or for "thread" a public thread opened in it."""
    return await fake.add_thread("ideas", parent_id=parent) if where == "thread" else parent or fake.channel_id


@pytest.mark.parametrize("where", PLACES)
@pytest.mark.parametrize("way", [way for way in (*PAINT, SETTINGS) if way != "!stylize"])
async def test_interactions_where_the_bot_may_not_post(fake_discord: FakeDiscord, run_bot, way: str, where: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Where the bot may not send messages, a way to paint by interaction refuses at once, to the asker only,
    naming the permission it lacks, and queues nothing (its status and picture could not be posted); the
    settings menu, whose answer is private, still answers. In a thread, where the channel takes Send Messages
    in Threads from the bot and leaves it Send Messages, the same."""
    runner = started()
    async with run_bot(make_bot(tiny(), runner=runner)):
        here = await place(fake_discord, where)
        result = await result_of(fake_discord, fake_discord.alice, channel_id=here)
        await fake_discord.deny_bot(fake_discord.channel_id, MUTE[where])
        since = len(fake_discord.requests)
        answer = await attempt(fake_discord, way, fake_discord.bob, "steps=3", result, channel_id=here)
        await fake_discord.wait_quiet(0.5)
    channel = f"POST /api/v10/channels/{here}/messages"
    posts = [r for r in fake_discord.request_paths[since:] if r == channel]
    assert answer.ephemeral, answer.content
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert posts == [] and errors == []  # it goes no further (a status message that would be refused)
    if way == SETTINGS:
        assert answer.embeds and "can't post" not in (answer.content or "")
    else:
        assert LACKING[where] in (answer.content or ""), answer.content
        assert jobs_of(runner, fake_discord.bob) == []


@pytest.mark.parametrize("where", PLACES)
async def test_commands_are_ignored_where_the_bot_may_not_post(fake_discord: FakeDiscord, run_bot, where: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """Where the bot may not send messages, prefix commands are ignored (each answer would fail with 403, and
    Discord bans an IP after 10,000 of those in 10 minutes), said once in the log; nothing is queued. In a
    thread of a channel that takes Send Messages in Threads from the bot, the same — while the channel itself,
    where it keeps Send Messages, is answered."""
    parent = fake_discord.add_text_channel("ideas", deny_bot=MUTE[where])
    muted = await place(fake_discord, where, parent)
    allowed = fake_discord.channel_id if where == "channel" else parent
    runner = started()
    async with run_bot(make_bot(tiny(), runner=runner)):
        since = len(fake_discord.requests)
        for text in ("!stylize", "!stylize help"):
            await fake_discord.send_message(fake_discord.bob, text, attachments=photo_and_style(), channel_id=muted)
        answered = await command(fake_discord, fake_discord.bob, "!stylize help", channel_id=allowed)
        await fake_discord.wait_quiet(0.3)
    assert [r for r in fake_discord.request_paths[since:] if f"/channels/{muted}/" in r] == []
    assert jobs_of(runner, fake_discord.bob) == [] and caplog.text.count(MUTED) == 1
    assert answered.channel_id == allowed and answered.embeds  # the help


@pytest.mark.parametrize("way", ["!stylize", "/stylize paint", "Variation", USE_PHOTO])
async def test_jobs_in_a_thread_where_only_threads_take_messages(fake_discord: FakeDiscord, run_bot, way: str) -> None:
    """A channel that takes Send Messages from the bot but leaves it Send Messages in Threads: a job asked for
    in one of its threads is painted and delivered there."""
    thread = await place(fake_discord, "thread", fake_discord.add_text_channel("ideas", deny_bot=MUTE["channel"]))
    runner = started()
    async with run_bot(make_bot(tiny(), runner=runner)):
        result = await result_of(fake_discord, fake_discord.alice, channel_id=thread)
        mark = fake_discord.mark()
        answer = await attempt(fake_discord, way, fake_discord.bob, "steps=3", result, channel_id=thread)
        await fake_discord.wait_for(lambda e: with_file(e) and e.channel_id == thread, kind="message", since=mark,
                                    timeout=15)  # the picture, delivered in the thread
    assert "can't post" not in (answer.content or ""), answer.content
    assert len(jobs_of(runner, fake_discord.bob)) == 1


async def test_a_slash_job_in_direct_messages_may_post(fake_discord: FakeDiscord, run_bot) -> None:
    """In a DM the bot may always post (no channel permissions there): `/stylize paint` is taken."""
    runner = started()
    async with run_bot(make_bot(tiny(), runner=runner)):
        mark = fake_discord.mark()
        photo, style = photo_and_style()
        used = await fake_discord.send_interaction(fake_discord.bob, "stylize paint",
                                                   {"content": photo, "style": style}, dm=True)
        answer = await answer_to(fake_discord, used, mark)
        await eventually(lambda: len(jobs_of(runner, fake_discord.bob)) == 1)
    assert "can't post" not in (answer.content or ""), answer.content


@pytest.mark.parametrize("way", ["!stylize", "/stylize paint"])
async def test_server_defaults_reach_a_new_job(fake_discord: FakeDiscord, run_bot, way: str) -> None:
    """The server's defaults (`!stylize defaults`) are what a new job starts from, under the member's own words."""
    runner = started()
    async with run_bot(make_bot(tiny(), runner=runner)):
        await command(fake_discord, fake_discord.owner, "!stylize defaults steps=3")
        await attempt(fake_discord, way, fake_discord.bob)
        await eventually(lambda: len(jobs_of(runner, fake_discord.bob)) == 1)
    assert jobs_of(runner, fake_discord.bob)[0].settings.steps == 3


@pytest.mark.parametrize("way", ["!stylize", "/stylize paint"])
async def test_style_blend_needs_one_weight_per_style(fake_discord: FakeDiscord, run_bot, way: str) -> None:
    """The blend is judged before queueing: one weight for the one style is taken, two are refused."""
    runner = started()
    async with run_bot(make_bot(tiny(), runner=runner)):
        taken = await attempt(fake_discord, way, fake_discord.bob, "style_blend=1")
        await eventually(lambda: len(jobs_of(runner, fake_discord.bob)) == 1)
        refused = await attempt(fake_discord, way, fake_discord.alice, "style_blend=1,1")
        await fake_discord.wait_quiet(0.3)
    assert "weight" not in (taken.content or "") and "2 weights" in (refused.content or ""), refused.content
    assert jobs_of(runner, fake_discord.alice) == []


async def test_a_masks_regions_are_judged_before_queueing(fake_discord: FakeDiscord, run_bot) -> None:
    """With a mask, the regions must send each colour to a style that exists: judged with the mask counted
    (sending white to a third style of two is refused before anything is queued); without the mask counted
    the regions would be ignored and the job queued."""
    runner = started()
    photo, style = photo_and_style()
    mask = Upload("m.png", mask_png(80, 60))
    async with run_bot(make_bot(tiny(), runner=runner)):
        request = await fake_discord.send_message(fake_discord.alice, "!stylize mask=last regions=white:3",
                                                  attachments=[photo, style, style, mask])
        refused = await fake_discord.wait_for(replying_to(request), kind="message", timeout=15)
        await fake_discord.wait_quiet(0.3)
    assert "white to style 3" in (refused.content or ""), refused.content
    assert jobs_of(runner, fake_discord.alice) == []


# ----------------------------------------------------------------------------------------- caps


@pytest.mark.parametrize("way", PAINT)
async def test_caps_refuse_what_is_over_the_members_cap(fake_discord: FakeDiscord, run_bot, way: str) -> None:
    """steps over the member's cap are refused before anything is queued — at every way in; a member whose
    role raises the cap gets the same request through. (The buttons keep the result's steps=90, ⤴ Bigger
    a third of them: over bob's 20, under the painter's 100.)"""
    painters = fake_discord.add_role("Painters")
    painter = fake_discord.make_user("painter", roles=[painters])
    runner = started()
    cfg = tiny(limits={"max_steps": 20, "roles": [{"id": painters, "max_steps": 100}]})
    async with run_bot(make_bot(cfg, runner=runner)):
        result = await result_of(fake_discord, painter, "steps=90")
        refused = await attempt(fake_discord, way, fake_discord.bob, "steps=30", result)
        allowed = await attempt(fake_discord, way, painter, "steps=30", result)
        await eventually(lambda: len(jobs_of(runner, painter)) == 2)
        await fake_discord.wait_quiet(0.3)
    assert CAP in refused.content and "cap of 20" in refused.content, refused.content
    assert CAP not in (allowed.content or "")
    assert jobs_of(runner, fake_discord.bob) == []


# ------------------------------------------------------------------------------------ role defaults

ROLE_DEFAULTS = ("!stylize", "/stylize paint", "Tweak", "Stylize: paint again", USE_PHOTO)


@pytest.mark.parametrize("way", ROLE_DEFAULTS)
async def test_a_roles_default_reaches_the_job(fake_discord: FakeDiscord, run_bot, way: str) -> None:
    """A role that animates by default: a job its member asks for has animate on (the member said nothing of
    it), unless they say `animate=false`; nobody else's does. (The buttons change a kept job's settings, role
    defaults included: not here.)"""
    movers = fake_discord.add_role("Movers")
    mover = fake_discord.make_user("mover", roles=[movers])
    runner = started()
    async with run_bot(make_bot(tiny(limits={"roles": [{"id": movers, "animate": True}]}), runner=runner)):
        result = await result_of(fake_discord, fake_discord.alice)
        await attempt(fake_discord, way, mover, "steps=3", result)
        await eventually(lambda: len(jobs_of(runner, mover)) == 1)
        await attempt(fake_discord, way, mover, "steps=3 animate=false", result)
        await eventually(lambda: len(jobs_of(runner, mover)) == 2)
    (alices,) = jobs_of(runner, fake_discord.alice)
    defaulted, declined = jobs_of(runner, mover)
    assert not alices.settings.animate
    assert defaulted.settings.animate and defaulted.settings.steps == 3
    assert not declined.settings.animate  # the member's own word wins over the role's default


# ----------------------------------------------------------------------------------------- cooldown


@pytest.mark.parametrize("way", PAINT)
async def test_cooldown_at_every_way_to_paint(fake_discord: FakeDiscord, run_bot, way: str) -> None:
    """One request per member per period ([cooldown] commands=1, buttons=1): bob's second is refused with
    the time to wait, and only his first is queued; carol, who asked for nothing yet, is not slowed down."""
    carol = fake_discord.make_user("carol")
    runner = started()
    async with run_bot(make_bot(tiny(cooldown={"commands": 1, "buttons": 1, "seconds": 60}), runner=runner)):
        result = await result_of(fake_discord, fake_discord.alice)
        first = await attempt(fake_discord, way, fake_discord.bob, "steps=3", result)
        await eventually(lambda: len(jobs_of(runner, fake_discord.bob)) == 1)
        second = await attempt(fake_discord, way, fake_discord.bob, "steps=3", result)
        others = await attempt(fake_discord, way, carol, "steps=3", result)  # a bucket per member
        await eventually(lambda: len(jobs_of(runner, carol)) == 1)
        await fake_discord.wait_quiet(0.3)
    assert SLOW not in (first.content or "") and SLOW not in (others.content or "")
    assert SLOW in (second.content or "") and (second.ephemeral or way == "!stylize"), second.content
    assert len(jobs_of(runner, fake_discord.bob)) == 1


@pytest.mark.parametrize("way", [SETTINGS])
async def test_cooldown_on_the_settings_menu(fake_discord: FakeDiscord, run_bot, way: str) -> None:
    """Each use of "Stylize: settings" may download every attachment of the message: it counts too."""
    runner = started()
    async with run_bot(make_bot(tiny(cooldown={"commands": 1, "buttons": 1, "seconds": 60}), runner=runner)):
        result = await result_of(fake_discord, fake_discord.alice)
        first = await attempt(fake_discord, way, fake_discord.bob, target=result)
        second = await attempt(fake_discord, way, fake_discord.bob, target=result)
    assert first.embeds and second.ephemeral and SLOW in (second.content or "")


LIBRARY = ("!stylize styles", "/stylize styles", "!stylize forget", "/stylize forget", "!stylize defaults",
           "/stylize-defaults", "!stylize-defaults")


@pytest.mark.parametrize("text", LIBRARY)
async def test_cooldown_on_the_library_and_defaults_commands(fake_discord: FakeDiscord, run_bot, text: str) -> None:
    async with run_bot(make_bot(tiny(cooldown={"commands": 1, "seconds": 60}))):
        first = await command(fake_discord, fake_discord.alice, text)
        second = await command(fake_discord, fake_discord.alice, text)
    assert SLOW not in (first.content or "") and SLOW in (second.content or ""), second.content


async def test_one_slow_down_note_per_member_for_prefix_commands(fake_discord: FakeDiscord, run_bot) -> None:
    """Over the rate, a prefix command is told "slow down" once per period and then ignored (more notes would be
    the flood the cooldown stops), each member their own note; a slash command is told each time (ephemeral)."""
    carol = fake_discord.make_user("carol")
    async with run_bot(make_bot(tiny(cooldown={"commands": 1, "seconds": 60}))):
        notes = []
        for user in (fake_discord.alice, carol):
            await command(fake_discord, user, "!stylize styles")
            notes.append(await command(fake_discord, user, "!stylize styles"))
        mark = fake_discord.mark()
        unanswered = await fake_discord.send_message(fake_discord.alice, "!stylize styles")
        for _ in range(2):
            await command(fake_discord, fake_discord.bob, "/stylize styles")
        slash = [await command(fake_discord, fake_discord.bob, "/stylize styles") for _ in range(2)]
        await fake_discord.wait_quiet(0.3)
    assert all(SLOW in (note.content or "") for note in notes), [note.content for note in notes]
    assert not fake_discord.find(replying_to(unanswered), kind="message", since=mark)
    assert all(SLOW in (note.content or "") and note.ephemeral for note in slash), [note.content for note in slash]


# ------------------------------------------------------------------------------- who may do what

STYLES = {  # how to add or remove the style `lilies`, by prefix and by slash
    "!stylize styles add lilies": 1, "/stylize styles action:add name:lilies": 1,
    "!stylize styles remove lilies": 0, "/stylize styles action:remove name:lilies": 0,
}


async def listed(fake: FakeDiscord) -> bool:
    """Whether the library lists the style `lilies`."""
    return "`lilies`" in (await command(fake, fake.bob, "!stylize styles")).content


@pytest.mark.parametrize("text", STYLES)
async def test_only_moderators_change_the_library(fake_discord: FakeDiscord, run_bot, text: str) -> None:
    """Adding or removing a server style: refused to a member, done for a moderator (Manage Messages) and for a
    member of a role listed under [access] moderator_roles."""
    keepers = fake_discord.add_role("Keepers")
    keeper = fake_discord.make_user("keeper", roles=[keepers])
    adding = STYLES[text] == 1
    async with run_bot(make_bot(tiny(access={"moderator_roles": [keepers]}))):
        if not adding:
            await command(fake_discord, fake_discord.moderator, "!stylize styles add lilies", attachments=attachments_for(1))
        refused = await command(fake_discord, fake_discord.alice, text, attachments=attachments_for(STYLES[text]))
        unchanged = await listed(fake_discord)
        done = []
        for mod in (fake_discord.moderator, keeper):
            await command(fake_discord, mod, text, attachments=attachments_for(STYLES[text]))
            done.append(await listed(fake_discord))
            if adding:
                await command(fake_discord, fake_discord.moderator, "!stylize styles remove lilies")
            else:
                await command(fake_discord, fake_discord.moderator, "!stylize styles add lilies",
                              attachments=attachments_for(1))
    assert refused.content.startswith("⚠️") and "moderator" in refused.content.lower()
    assert unchanged is not adding  # alice changed nothing
    assert done == [adding, adding]


DEFAULTS = ("!stylize defaults steps=7", "!stylize-defaults steps=7", "/stylize-defaults settings:steps=7")


@pytest.mark.parametrize("text", DEFAULTS)
async def test_only_managers_change_the_defaults(fake_discord: FakeDiscord, run_bot, text: str) -> None:
    """Changing this server's defaults takes Manage Server: a moderator (Manage Messages) is refused."""
    managers = fake_discord.add_role("Managers", discord.Permissions(manage_guild=True))
    manager = fake_discord.make_user("manager", roles=[managers])
    async with run_bot(make_bot(tiny())):
        refused = await command(fake_discord, fake_discord.moderator, text)
        before = await command(fake_discord, fake_discord.alice, "!stylize defaults")
        await command(fake_discord, manager, text)
        after = await command(fake_discord, fake_discord.alice, "!stylize defaults")
    assert refused.content.startswith("⚠️") and "Manage Server" in refused.content
    assert "\nsteps = 2\n" in before.content and "• **steps = 7**" in after.content


CANCEL = ("!stylize cancel", "/stylize cancel", "Cancel")


async def cancel(fake: FakeDiscord, way: str, user: User, status: Event) -> Event:
    """`user` cancels the job of `status` by its id, or by its Cancel button: the bot's answer."""
    mark = fake.mark()
    if way == "Cancel":
        used = await fake.click_button(user, status.message_id, label="Cancel")
        return await fake.wait_for(lambda e: e.interaction_id == int(used["id"]) and e.kind in ("message", "edit"),
                                   since=mark, timeout=15)
    job = status.content.split("`")[-2]
    return await command(fake, user, f"{way} {job}" if way.startswith("!") else f"{way} job:{job}")


@pytest.mark.parametrize("way", CANCEL)
async def test_only_the_owner_or_a_moderator_cancels(fake_discord: FakeDiscord, run_bot, way: str) -> None:
    runner = Recording()  # jobs run until cancelled
    async with run_bot(make_bot(tiny(limits={"per_user": 5}), runner=runner)) as bot:
        answers = []
        for user in (fake_discord.bob, fake_discord.moderator, fake_discord.alice):
            mark = fake_discord.mark()
            request = await fake_discord.send_message(fake_discord.alice, "!stylize", attachments=photo_and_style())
            status = await fake_discord.wait_for(lambda e: "Queued" in (e.content or "") and replying_to(request)(e),
                                                 kind="message", since=mark, timeout=15)
            answers.append(await cancel(fake_discord, way, user, status))
            if user is fake_discord.bob:
                await fake_discord.wait_quiet(0.3)
                still = [j.user_id for j in await bot.backend.jobs()]
        await fake_discord.wait_quiet(0.3)
        left = await bot.backend.jobs()  # the first job, still running; the others were cancelled waiting
        runner.release_all()
    refused, by_moderator, by_owner = answers
    assert "moderator" in refused.content and (refused.ephemeral or way.startswith("!")), refused.content
    assert still == [fake_discord.alice.id]  # bob's try left the job alone
    assert [j.user_id for j in left] == [fake_discord.alice.id]  # the moderator's and alice's went
    for answer in (by_moderator, by_owner):
        assert "⚠️" not in (answer.content or "") and "moderator can cancel" not in (answer.content or "")


@pytest.mark.parametrize("way", CANCEL[:2])
async def test_a_moderator_cancels_only_this_servers_jobs(fake_discord: FakeDiscord, run_bot, way: str) -> None:
    """Bob's job from a direct message is no job of this server's: its moderator cannot cancel it."""
    runner = Recording()
    async with run_bot(make_bot(tiny(), runner=runner)) as bot:
        request = await fake_discord.send_message(fake_discord.bob, "!stylize", attachments=photo_and_style(),
                                                  dm=True)
        status = await fake_discord.wait_for(lambda e: "Queued" in (e.content or "") and replying_to(request)(e),
                                             kind="message", timeout=15)
        refused = await cancel(fake_discord, way, fake_discord.moderator, status)
        await fake_discord.wait_quiet(0.3)
        left = [j.user_id for j in await bot.backend.jobs()]
        runner.release_all()
    assert refused.content.startswith("⚠️") and left == [fake_discord.bob.id], refused.content


async def test_cooldown_on_the_cancel_button(fake_discord: FakeDiscord, run_bot) -> None:
    """Presses of Cancel count against the presser's [cooldown] buttons, refused presses too; the job's owner
    has a bucket of her own."""
    runner = Recording()
    async with run_bot(make_bot(tiny(cooldown={"buttons": 1, "seconds": 60}), runner=runner)):
        request = await fake_discord.send_message(fake_discord.alice, "!stylize", attachments=photo_and_style())
        status = await fake_discord.wait_for(lambda e: "Queued" in (e.content or "") and replying_to(request)(e),
                                             kind="message", timeout=15)
        first = await cancel(fake_discord, "Cancel", fake_discord.bob, status)
        second = await cancel(fake_discord, "Cancel", fake_discord.bob, status)
        own = await cancel(fake_discord, "Cancel", fake_discord.alice, status)
        runner.release_all()
    assert SLOW not in (first.content or "") and SLOW in (second.content or ""), second.content
    assert own.kind == "edit" and "Cancelling" in (own.content or ""), own.content


@pytest.mark.parametrize("way", AGAIN)
async def test_painting_again_keeps_the_photo_its_owners(fake_discord: FakeDiscord, run_bot, way: str) -> None:
    """Bob paints alice's result again: the job is his (he can paint his result again), the photo stays hers —
    her `forget` deletes it with every job that kept it, his too."""
    runner = started()
    alice, bob = fake_discord.alice, fake_discord.bob
    async with run_bot(make_bot(tiny(), runner=runner)):
        result = await result_of(fake_discord, alice)
        await attempt(fake_discord, way, bob, "steps=3", result)
        again = await fake_discord.wait_for(lambda e: with_file(e) and replying_to({"id": str(result)})(e),
                                            kind="message", timeout=15)
        await fake_discord.wait_quiet(0.3)
        await attempt(fake_discord, "Variation", bob, target=again.message_id)
        await eventually(lambda: len(jobs_of(runner, bob)) == 2)
        await command(fake_discord, alice, "!stylize forget")
        gone = await attempt(fake_discord, "Variation", bob, target=again.message_id)
        await fake_discord.wait_quiet(0.3)
    assert len(jobs_of(runner, bob)) == 2 and "no longer have" in gone.content


@pytest.mark.parametrize("way", [USE_PHOTO])
async def test_a_photo_painted_from_the_menu_stays_its_posters(fake_discord: FakeDiscord, run_bot, way: str) -> None:
    """Alice paints bob's photo with "use this photo": bob's `forget` deletes what was kept of it."""
    runner = started()
    alice, bob = fake_discord.alice, fake_discord.bob
    async with run_bot(make_bot(tiny(), runner=runner)):
        photo = await fake_discord.send_message(bob, "my cat", attachments=[photo_and_style()[0]])
        await attempt(fake_discord, way, alice, "steps=3", int(photo["id"]))
        result = await fake_discord.wait_for(lambda e: with_file(e) and replying_to(photo)(e), kind="message",
                                             timeout=15)
        await fake_discord.wait_quiet(0.3)
        await command(fake_discord, bob, "!stylize forget")
        gone = await attempt(fake_discord, "Variation", alice, target=result.message_id)
    assert "no longer have" in (gone.content or "")
