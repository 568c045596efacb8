"""Proves the Discord stand-in drives the real discord.py client end to end."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from discord_standin import FakeDiscord, StandinTimeout, Upload, run_bot

PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5b2a9"
    "e30000000049454e44ae426082"
)


class SettingsModal(discord.ui.Modal, title="Settings"):
    steps = discord.ui.TextInput(label="Steps")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"steps={self.steps.value}", ephemeral=True)
        await interaction.edit_original_response(content=f"saved steps={self.steps.value}")


class Counter(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.clicks = 0

    @discord.ui.button(label="Count", custom_id="counter:inc", style=discord.ButtonStyle.primary)
    async def inc(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.clicks += 1
        await interaction.response.edit_message(content=f"clicked {self.clicks}", view=self)


def make_bot(*, members: bool = False) -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = members  # without it discord.py caches only the bot's own member
    bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.05, help_command=None)

    @bot.command()
    async def echo(ctx: commands.Context, *, text: str = "") -> None:
        files = []
        if ctx.message.attachments:
            att = ctx.message.attachments[0]
            data = await att.read()
            files.append(discord.File(io.BytesIO(data), filename=att.filename))
        await ctx.reply(text or "(no text)", files=files)

    @bot.hybrid_command(description="Replies with pong and a file")
    async def ping(ctx: commands.Context) -> None:
        await ctx.defer()
        await ctx.send("pong", file=discord.File(io.BytesIO(b"pong-bytes"), filename="pong.txt"))

    @bot.hybrid_command(description="Describe an uploaded image")
    async def inspect(ctx: commands.Context, image: discord.Attachment) -> None:
        data = await image.read()
        await ctx.send(f"{image.filename} {image.size} {image.width}x{image.height} {len(data)}")

    @bot.tree.command(description="Open the settings form")
    async def settings(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(SettingsModal())

    @bot.command()
    async def counter(ctx: commands.Context) -> None:
        message = await ctx.send("clicked 0", view=Counter())
        bot.dispatch("counter_sent", message)  # discord.py has stored the view: clicks on the message reach it

    return bot


async def test_ready_guild_channel_members(fake_discord: FakeDiscord) -> None:
    bot = make_bot(members=True)
    async with run_bot(bot):
        assert bot.user is not None and bot.user.id == fake_discord.bot_user.id
        assert bot.application_id == fake_discord.application_id
        guild = bot.get_guild(fake_discord.guild_id)
        assert guild is not None and guild.name == fake_discord.guild_name
        channel = guild.get_channel(fake_discord.channel_id)
        assert isinstance(channel, discord.TextChannel)
        assert channel.permissions_for(guild.me).attach_files
        assert {m.id for m in guild.members} >= {fake_discord.alice.id, fake_discord.moderator.id, bot.user.id}
        mod = guild.get_member(fake_discord.moderator.id)
        assert mod is not None and mod.guild_permissions.manage_messages
        alice = guild.get_member(fake_discord.alice.id)
        assert alice is not None and not alice.guild_permissions.manage_messages
        assert guild.owner_id == fake_discord.owner.id
        assert await bot.is_owner(guild.get_member(fake_discord.owner.id))
    identify = fake_discord.find(kind="gateway")[0]
    assert identify.via == "identify" and identify.payload["intents"] & (1 << 15)
    assert "GET /api/v10/users/@me" in fake_discord.request_paths
    assert not fake_discord.unhandled


async def test_prefix_command_round_trips_attachment(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    async with run_bot(bot):
        mark = fake_discord.mark()
        sent = await fake_discord.send_message(
            fake_discord.alice, "!echo hello there", attachments=[("photo.png", PNG_1x1, "image/png")]
        )
        event = await fake_discord.wait_for(kind="message", since=mark)
    assert event.via == "channel"
    assert event.content == "hello there"
    assert event.reference is not None and event.reference["message_id"] == sent["id"]
    assert event.message["referenced_message"]["id"] == sent["id"]
    upload = event.file("photo.png")
    assert upload.data == PNG_1x1
    att = event.attachments[0]
    assert att["content_type"] == "image/png" and (att["width"], att["height"]) == (1, 1)
    assert fake_discord.attachment_bytes(att) == PNG_1x1
    assert fake_discord.hits_for(sent["attachments"][0]["url"]) == 1  # the bot read it via the CDN


async def test_hybrid_command_via_prefix_and_slash(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    async with run_bot(bot):
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.bob, "!ping")
        prefix_reply = await fake_discord.wait_for(kind="message", since=mark)
        assert prefix_reply.via == "channel" and prefix_reply.file("pong.txt").data == b"pong-bytes"

        mark = fake_discord.mark()
        interaction = await fake_discord.send_interaction(fake_discord.bob, "ping")
        deferred = await fake_discord.wait_for(kind="interaction_response", since=mark)
        followup = await fake_discord.wait_for(kind="message", since=mark)
    assert deferred.response_type == 5 and deferred.interaction_id == int(interaction["id"])
    assert followup.via == "followup" and followup.content == "pong"
    assert followup.file().data == b"pong-bytes"
    # the first follow-up after a "thinking" defer fills in the placeholder message
    assert followup.message_id == deferred.message_id
    original = fake_discord.original_response(interaction)
    assert original is not None and original["content"] == "pong" and not original["flags"] & 128


async def test_slash_attachment_option(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    async with run_bot(bot):
        mark = fake_discord.mark()
        await fake_discord.send_interaction(
            fake_discord.alice, "inspect", {"image": Upload("cat.png", PNG_1x1, "image/png")}
        )
        reply = await fake_discord.wait_for(kind="message", since=mark)
    assert reply.via == "interaction" and reply.content == f"cat.png {len(PNG_1x1)} 1x1 {len(PNG_1x1)}"


async def test_tree_sync_puts_commands(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    async with run_bot(bot):
        synced = await bot.tree.sync()
        assert sorted(c.name for c in synced) == ["inspect", "ping", "settings"]
        assert all(c.id for c in synced)
        guild = discord.Object(fake_discord.guild_id)
        bot.tree.copy_global_to(guild=guild)
        guild_synced = await bot.tree.sync(guild=guild)
        assert [c.guild_id for c in guild_synced] == [fake_discord.guild_id] * 3
    event = fake_discord.find(kind="commands_sync")[0]
    assert event.via == "global" and event.method == "PUT"
    assert f"PUT /api/v10/applications/{fake_discord.application_id}/commands" in fake_discord.request_paths
    assert sorted(c["name"] for c in fake_discord.global_commands) == ["inspect", "ping", "settings"]


async def test_button_click_edits_message(fake_discord: FakeDiscord) -> None:
    """A view bound to a message is stored when the bot has the answer to its send, which may be after the
    stand-in recorded the message: a click before then reaches no view (no edit, the interaction times
    out) — so the test clicks once the bot says it sent the message, as a person could only then."""
    bot = make_bot()
    async with run_bot(bot):
        sent = asyncio.ensure_future(bot.wait_for("counter_sent", timeout=5))
        await fake_discord.send_message(fake_discord.alice, "!counter")
        posted = await fake_discord.wait_for(kind="message")
        assert posted.content == "clicked 0" and (await sent).id == posted.message_id
        click = await fake_discord.click_button(fake_discord.bob, posted.message_id, label="Count")
        edit = await fake_discord.response_to(click, kind="edit")
        callback = await fake_discord.response_to(click)
        click = await fake_discord.click_button(fake_discord.bob, posted.message_id, "counter:inc")
        second = await fake_discord.response_to(click, kind="edit")
    assert callback.response_type == 7
    assert edit.via == "interaction" and edit.message_id == posted.message_id
    assert edit.content == "clicked 1" and second.content == "clicked 2"
    assert fake_discord.get_message(posted.message_id)["content"] == "clicked 2"


class LongModal(discord.ui.Modal, title="Long"):
    steps = discord.ui.Label(text="x" * 46, component=discord.ui.TextInput())  # Discord allows 45


async def long_form(interaction: discord.Interaction, message: discord.Message) -> None:
    await interaction.response.send_modal(LongModal())


async def test_modal_labels_are_capped(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    bot.tree.add_command(app_commands.ContextMenu(name="Long form", callback=long_form))
    async with run_bot(bot):
        sent = await fake_discord.send_message(fake_discord.alice, "hello")
        mark = fake_discord.mark()
        await fake_discord.use_message_command(fake_discord.bob, "Long form", sent["id"])
        with pytest.raises(StandinTimeout):
            await fake_discord.wait_for(kind="interaction_response", since=mark, timeout=1)
    assert not any(r.modal for r in fake_discord.interactions.values())  # refused with 400, never opened


@pytest.mark.parametrize("tier, limit", [(0, 10 * 1024 * 1024), (2, 50 * 1024 * 1024)])
async def test_filesize_limits(tier: int, limit: int) -> None:
    async with FakeDiscord(premium_tier=tier) as fake:
        bot = make_bot()
        seen = []

        async def on_interaction(interaction: discord.Interaction) -> None:
            seen.append(interaction.filesize_limit)

        bot.add_listener(on_interaction)
        async with run_bot(bot):
            assert bot.get_guild(fake.guild_id).filesize_limit == limit
            mark = fake.mark()
            await fake.send_interaction(fake.alice, "ping")
            await fake.wait_for(kind="message", since=mark)
    assert seen == [limit]
    assert not fake.internal_errors


async def test_discord_rules_are_enforced(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    async with run_bot(bot):
        channel = bot.get_channel(fake_discord.channel_id)
        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        assert too_long.value.code == 50035
        with pytest.raises(discord.HTTPException) as too_big:
            await channel.send(file=discord.File(io.BytesIO(b"\0" * (10 * 1024 * 1024 + 1)), filename="big.bin"))
        assert too_big.value.status == 413 and too_big.value.code == 40005
        fake_discord.fail_next("POST", r"/channels/\d+/messages$", status=403, code=50013, message="Missing Permissions")
        with pytest.raises(discord.Forbidden):
            await channel.send("nope")
        # interactions must be acknowledged in time
        fake_discord.interaction_timeout = 0.0
        errors = []

        async def on_command_error(ctx: commands.Context, error: Exception) -> None:
            errors.append(error)

        bot.add_listener(on_command_error)
        mark = fake_discord.mark()
        await fake_discord.send_interaction(fake_discord.alice, "ping")
        with pytest.raises(StandinTimeout):
            await fake_discord.wait_for(kind="interaction_response", since=mark, timeout=0.3)
        assert isinstance(errors[0].original.original, discord.NotFound)
        assert errors[0].original.original.code == 10062  # Unknown interaction
    assert not fake_discord.sent


async def test_message_content_intent_is_required(fake_discord: FakeDiscord) -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
    got = []
    both = asyncio.Event()

    async def on_message(message: discord.Message) -> None:
        got.append(message)
        if len(got) == 2:
            both.set()

    bot.add_listener(on_message)
    async with run_bot(bot):
        await fake_discord.send_message(fake_discord.alice, "!ping", attachments=[("a.txt", b"a")])
        await fake_discord.send_message(fake_discord.alice, f"{fake_discord.bot_user.mention} hi")
        await asyncio.wait_for(both.wait(), 5)  # both reached the bot (no request shows it: a quiet wire did not)
        await fake_discord.wait_quiet(0.1)
    assert [m.content for m in got] == ["", f"<@{fake_discord.bot_user.id}> hi"]
    assert got[0].attachments == []


async def test_gateway_resume(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    async with run_bot(bot):
        await fake_discord.request_reconnect()
        resumed = await fake_discord.wait_for(lambda e: e.via == "resume", kind="gateway")
        assert resumed.payload["session_id"]
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.alice, "!echo still here")
        assert (await fake_discord.wait_for(kind="message", since=mark)).content == "still here"


async def test_modal_ephemeral_reply_and_edit_original(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    async with run_bot(bot):
        mark = fake_discord.mark()
        await fake_discord.send_interaction(fake_discord.alice, "settings")
        opened = await fake_discord.wait_for(kind="interaction_response", since=mark)
        assert opened.response_type == 9 and opened.payload["data"]["title"] == "Settings"
        mark = fake_discord.mark()
        submit = await fake_discord.submit_modal(fake_discord.alice, {"Steps": "300"})
        reply = await fake_discord.wait_for(kind="message", since=mark)
        edit = await fake_discord.wait_for(kind="edit", since=mark)
    assert reply.via == "interaction" and reply.ephemeral and reply.content == "steps=300"
    assert edit.via == "webhook" and edit.message_id == reply.message_id and edit.content == "saved steps=300"
    assert fake_discord.original_response(submit)["content"] == "saved steps=300"


async def test_message_context_menu_gets_the_message_resolved(fake_discord: FakeDiscord) -> None:
    bot = make_bot()

    @bot.tree.context_menu(name="Show attachments")
    async def show(interaction: discord.Interaction, message: discord.Message) -> None:
        names = ", ".join(f"{a.filename} {a.size}" for a in message.attachments)
        await interaction.response.send_message(f"{message.author.id}: {message.content} [{names}]", ephemeral=True)

    async with run_bot(bot):
        posted = await fake_discord.send_message(fake_discord.bob, "my cat", attachments=[Upload("cat.png", PNG_1x1)])
        mark = fake_discord.mark()
        used = await fake_discord.use_message_command(fake_discord.alice, "Show attachments", posted["id"])
        answer = await fake_discord.wait_for(kind="message", since=mark)
        with pytest.raises(LookupError):
            await fake_discord.use_message_command(fake_discord.alice, "Show attachments", 12345)
    data = used["data"]
    assert (data["type"], data["name"], data["target_id"]) == (3, "Show attachments", posted["id"])
    assert used["member"]["user"]["id"] == str(fake_discord.alice.id)
    assert answer.ephemeral and answer.content == f"{fake_discord.bob.id}: my cat [cat.png {len(PNG_1x1)}]"


async def test_pings_follow_allowed_mentions(fake_discord: FakeDiscord) -> None:
    alice, bob = fake_discord.alice, fake_discord.bob
    role = fake_discord.moderator_role_id
    text = f"{alice.mention} {bob.mention} <@&{role}> @everyone"
    bot = make_bot()
    async with run_bot(bot):
        channel = bot.get_channel(fake_discord.channel_id)
        asked = await fake_discord.send_message(bob, "hello")
        await channel.send(text)  # no allowed_mentions: everything pings
        await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
        await channel.send(text, allowed_mentions=discord.AllowedMentions(users=[discord.Object(alice.id)]))
        replied = channel.get_partial_message(int(asked["id"]))
        await replied.reply(f"escaped: <@\u200b{alice.id}> @\u200beveryone",
                            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=False))
        await replied.reply("quiet", mention_author=False)
        with pytest.raises(discord.HTTPException) as conflict:
            await bot.http.request(discord.http.Route("POST", "/channels/{channel_id}/messages",
                                                      channel_id=channel.id),
                                   json={"content": text, "allowed_mentions": {"parse": ["users"], "users": [alice.id]}})
    assert conflict.value.code == 50035
    assert [e.pings for e in fake_discord.sent] == [
        {"users": [alice.id, bob.id], "roles": [role], "everyone": True},
        {"users": [], "roles": [], "everyone": False},
        {"users": [alice.id], "roles": [role], "everyone": True},
        {"users": [bob.id], "roles": [], "everyone": False},  # the reply pings its author, escaped text nobody
        {"users": [], "roles": [], "everyone": False},
    ]


async def test_connection_reset(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    async with run_bot(bot):
        channel = bot.get_channel(fake_discord.channel_id)
        fake_discord.fail_next("POST", r"/channels/\d+/messages$", reset=True)
        with pytest.raises(aiohttp.ClientOSError) as reset:
            await channel.send("lost")
        assert reset.value.errno == 104 and not isinstance(reset.value, discord.HTTPException)
        await channel.send("the next request gets through")
    assert [e.content for e in fake_discord.sent] == ["the next request gets through"]


async def test_channel_overwrites_deny_the_bot(fake_discord: FakeDiscord) -> None:
    muted = fake_discord.add_text_channel("announcements", deny_bot=discord.Permissions(send_messages=True))
    bot = make_bot()
    async with run_bot(bot):
        guild = bot.get_guild(fake_discord.guild_id)
        channel, general = guild.get_channel(muted), guild.get_channel(fake_discord.channel_id)
        assert not channel.permissions_for(guild.me).send_messages and channel.permissions_for(guild.me).view_channel
        assert general.permissions_for(guild.me).send_messages
        with pytest.raises(discord.Forbidden) as refused:
            await channel.send("hello")
        assert refused.value.code == 50013
        await general.send("hello")
        await (await bot.fetch_user(fake_discord.alice.id)).send("a DM has no overwrites")
    assert [e.content for e in fake_discord.sent] == ["hello", "a DM has no overwrites"]
    assert fake_discord.channel_permissions(fake_discord.alice, muted) & discord.Permissions(send_messages=True).value


async def test_interaction_tokens_expire(fake_discord: FakeDiscord) -> None:
    fake_discord.token_lifetime = 0.3
    bot = make_bot()
    async with run_bot(bot):
        await fake_discord.send_interaction(fake_discord.alice, "ping")
        await fake_discord.wait_for(kind="message")
        rec = next(iter(fake_discord.interactions.values()))
        webhook = discord.Webhook.partial(fake_discord.application_id, rec.token, client=bot)
        await webhook.send("in time")
        await asyncio.sleep(0.35)
        with pytest.raises(discord.HTTPException) as expired:
            await webhook.send("too late")
    assert expired.value.status == 401 and expired.value.code == 50027
    assert [e.content for e in fake_discord.sent if e.via == "followup"] == ["pong", "in time"]


async def test_deleted_messages_refuse_replies_and_edits(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    async with run_bot(bot):
        asked = await fake_discord.send_message(fake_discord.alice, "hello")
        channel = bot.get_channel(fake_discord.channel_id)
        mine = await channel.send("mine")
        await fake_discord.delete_message(asked["id"])
        gone = channel.get_partial_message(int(asked["id"]))
        with pytest.raises(discord.HTTPException) as refused:
            await gone.reply("to a deleted message")
        await channel.send("still answered", reference=discord.MessageReference(
            message_id=int(asked["id"]), channel_id=channel.id, fail_if_not_exists=False))
        await mine.delete()
        with pytest.raises(discord.NotFound) as unknown:
            await mine.edit(content="edited")
    assert refused.value.status == 400 and "Unknown message" in refused.value.text
    assert unknown.value.code == 10008
    assert [e.content for e in fake_discord.sent] == ["mine", "still answered"]


async def test_permissions_and_dms_can_be_taken_away_while_the_bot_runs(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    async with run_bot(bot):
        channel = bot.get_channel(fake_discord.channel_id)
        await fake_discord.deny_bot(fake_discord.channel_id, discord.Permissions(send_messages=True))
        for _ in range(100):  # CHANNEL_UPDATE reaches the cache
            if not channel.permissions_for(channel.guild.me).send_messages:
                break
            await asyncio.sleep(0.01)
        assert not channel.permissions_for(channel.guild.me).send_messages
        with pytest.raises(discord.Forbidden) as muted:
            await channel.send("hello")
        fake_discord.refuse_dms(fake_discord.alice)
        with pytest.raises(discord.Forbidden) as closed:
            await (await bot.fetch_user(fake_discord.alice.id)).send("a DM")
        await (await bot.fetch_user(fake_discord.bob.id)).send("Bob takes DMs")
        other = fake_discord.add_text_channel("gone")
        await fake_discord.delete_channel(other)
        with pytest.raises(discord.NotFound) as unknown:
            await bot.fetch_channel(other)
    assert muted.value.code == 50013 and closed.value.code == 50007 and unknown.value.code == 10003
    assert [e.content for e in fake_discord.sent] == ["Bob takes DMs"]


async def test_threads_take_their_parents_permissions(fake_discord: FakeDiscord) -> None:
    """A thread reaches the client in GUILD_CREATE or with THREAD_CREATE; messages and interactions there carry
    the thread; posting there takes Send Messages in Threads from the parent channel's overwrites, not Send
    Messages."""
    early = await fake_discord.add_thread("early")
    bot = make_bot()
    created: asyncio.Future[discord.Thread] = asyncio.get_running_loop().create_future()
    seen: list[discord.Interaction] = []

    async def on_thread_create(thread: discord.Thread) -> None:
        created.set_result(thread)

    async def on_interaction(interaction: discord.Interaction) -> None:
        seen.append(interaction)

    bot.add_listener(on_thread_create)
    bot.add_listener(on_interaction)
    async with run_bot(bot):
        guild = bot.get_guild(fake_discord.guild_id)
        general = guild.get_channel(fake_discord.channel_id)
        late = await fake_discord.add_thread("late")
        assert (await asyncio.wait_for(created, 5)).id == late
        threads = [guild.get_thread(early), guild.get_thread(late)]
        assert all(isinstance(t, discord.Thread) and t.parent == general for t in threads)
        request = await fake_discord.send_message(fake_discord.alice, "!echo in a thread", channel_id=early)
        answer = await fake_discord.wait_for(lambda e: e.channel_id == early, kind="message")
        await fake_discord.deny_bot(fake_discord.channel_id, discord.Permissions(send_messages_in_threads=True))
        await fake_discord.response_to(await fake_discord.send_interaction(fake_discord.alice, "ping",
                                                                          channel_id=early), kind="message")
        with pytest.raises(discord.Forbidden) as refused:
            await threads[0].send("no longer")
        await general.send("the parent still takes messages")
        await fake_discord.deny_bot(fake_discord.channel_id, discord.Permissions(send_messages=True))
        await threads[1].send("a thread takes them without Send Messages")
    (interaction,) = seen
    assert isinstance(interaction.channel, discord.Thread) and interaction.channel.id == early
    assert interaction.app_permissions.send_messages and not interaction.app_permissions.send_messages_in_threads
    assert answer.content == "in a thread" and answer.reference["message_id"] == request["id"]
    assert refused.value.code == 50013
    assert [e.content for e in fake_discord.sent][-2:] == ["the parent still takes messages",
                                                          "a thread takes them without Send Messages"]
    assert fake_discord.channels[early]["message_count"] == 3  # alice's, the answer, the ping's pong
