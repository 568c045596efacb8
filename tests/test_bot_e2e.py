"""The real bot against the loopback Discord stand-in: prefix and slash paths, links, replies, cancel,
queue, help, caps, sync and shutdown.

Painting tests use the real engine (tiny settings); tests about the queue's behaviour use
FakeRunner from test_bot_jobs so a job stays running exactly as long as the test needs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import io
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import discord
import pytest
from PIL import Image

import discord_standin
from bot import check
from bot.__main__ import main, serve
from bot.app import StylizeBot
from bot.config import Config, parse_config
from bot.inputs import images
from bot.inputs.fetch import make_session
from bot.health import HealthReporter, diagnose
from bot.jobs import InProcessBackend, Job, Runner, engine_runner
from discord_standin import Event, FakeDiscord, Upload
from engine import SPECS, OutOfMemory, Settings
from engine.memory import predict_peak_bytes
from test_bot_jobs import FakeRunner

TINY = "steps=2 size=64 scales=1"


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Any) -> Iterator[Any]:
    """Every bot of a test keeps its store in the test's own folder."""
    global DATA_DIR
    DATA_DIR = tmp_path / "data"
    yield DATA_DIR
    DATA_DIR = None


DATA_DIR: Any = None


pytestmark = pytest.mark.usefixtures("one_torch_thread", "vgg_loaded")


def config(**table: Any) -> Config:
    """A configuration for the tests, with status edits faster than a file may ask for (2 s or more)."""
    loaded = parse_config({"token": "fake-token", "device": "cpu", "storage": {"data_dir": str(DATA_DIR)}, **table})
    return dataclasses.replace(loaded, progress_interval=0.2)


def make_bot(cfg: Config | None = None, runner: Runner | None = None,
             session_factory: Callable[[], Any] | None = None, **extra: Any) -> StylizeBot:
    cfg = cfg or config()
    limits = cfg.limits
    backend = InProcessBackend(runner or engine_runner(cfg.device), workers=cfg.workers,
                               queue_size=limits.queue_size, per_user=limits.per_user, timeout=limits.job_timeout)
    return StylizeBot(cfg, backend=backend, session_factory=session_factory, guild_ready_timeout=0.05, **extra)


def permissive_session() -> Any:
    """Test-only fetch policy: let links reach the stand-in's file host on 127.0.0.1."""
    return make_session(allow=lambda ip: True)


def picture(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((width, height), 70).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def photo_and_style() -> list[Upload]:
    return [Upload("photo.png", picture(80, 60)), Upload("style.png", picture(40, 40))]


class Gate:
    """Wraps a runner: holds each job after its first step until opened, so a test can watch the
    progress edit happen instead of racing the engine."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.opened = threading.Event()

    def __call__(self, job: Any, report: Callable[[Any], None], cancel: threading.Event) -> Any:
        def hold(progress: Any) -> None:
            report(progress)
            if progress.step == 1:
                self.opened.wait(10)

        return self.runner(job, hold, cancel)


async def eventually(condition: Callable[[], bool], timeout: float = 15) -> None:
    """Wait until `condition()` holds (for outcomes that show in logs, not in Discord's events)."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def replying_to(message: dict[str, Any]) -> Callable[[Event], bool]:
    return lambda e: (e.reference or {}).get("message_id") == message["id"]


def with_file(e: Event) -> bool:
    return bool(e.files)


def decoded(event: Event) -> Image.Image:
    return Image.open(io.BytesIO(event.files[0].data))


async def status_of(fake: FakeDiscord, request: dict[str, Any], mark: int) -> Event:
    """The status message the bot posted in reply to `request`."""
    return await fake.wait_for(lambda e: "Queued" in (e.content or "") and replying_to(request)(e),
                               kind="message", since=mark, timeout=15)


async def edit_of(fake: FakeDiscord, status: Event, text: str, mark: int = 0, timeout: float = 15) -> Event:
    return await fake.wait_for(lambda e: e.message_id == status.message_id and text in (e.content or ""),
                               kind="edit", since=mark, timeout=timeout)


# ------------------------------------------------------------------------------------ painting


async def test_two_attachments_get_status_progress_and_the_picture(fake_discord: FakeDiscord, run_bot) -> None:
    gate = Gate(engine_runner("cpu"))
    async with run_bot(make_bot(runner=gate)):
        request = await fake_discord.send_message(fake_discord.alice, f"!stylize {TINY} style_weight=1e5",
                                                  attachments=photo_and_style())
        status = await status_of(fake_discord, request, 0)
        assert fake_discord.find_component(status.message_id, label="Cancel")["style"] == 4
        progress = await edit_of(fake_discord, status, "50%")
        assert "step 1/2" in progress.content
        gate.opened.set()
        reply = await fake_discord.wait_for(with_file, kind="message", timeout=20)
        done = await edit_of(fake_discord, status, "done in")
    assert replying_to(request)(reply) and reply.content.startswith(f"<@{fake_discord.alice.id}> here is")
    assert reply.filenames == ["stylized.png"] and decoded(reply).size == (64, 48)
    embed = reply.embeds[0]
    for spec in SPECS:
        assert f"{spec.name} = " in embed["description"]
    assert "• **steps = 2**" in embed["description"] and "• **style_weight = 1e+05**" in embed["description"]
    assert "\ncontent_weight = 1\n" in embed["description"]  # defaults shown, not marked
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Device"] == "cpu" and "style" in fields["Final losses"]
    assert embed["image"]["url"] == "attachment://stylized.png"
    assert done.components == []  # the Cancel button is gone


async def test_slash_command_defers_then_follows_up_with_preview(fake_discord: FakeDiscord, run_bot) -> None:
    gate = Gate(engine_runner("cpu"))
    photo, style = photo_and_style()
    async with run_bot(make_bot(runner=gate)):
        interaction = await fake_discord.send_interaction(
            fake_discord.bob, "stylize paint",
            {"content": photo, "style": style, "steps": 2, "size": 64, "settings": "scales=1 preview=true"})
        deferred = await fake_discord.wait_for(kind="interaction_response")
        status = await fake_discord.wait_for(lambda e: "Queued" in (e.content or ""), kind="message")
        preview = await fake_discord.wait_for(lambda e: e.filenames == ["preview.png"], kind="edit", timeout=15)
        gate.opened.set()
        reply = await fake_discord.wait_for(with_file, kind="message", timeout=20)
    assert deferred.response_type == 5 and deferred.interaction_id == int(interaction["id"])
    assert status.via == "followup" and status.message_id == deferred.message_id  # fills the "thinking" message
    assert preview.message_id == status.message_id and "50%" in preview.content
    # the picture is a channel message of the bot's own: it does not need the token, which expires in 15 minutes
    assert reply.via == "channel" and reply.filenames == ["stylized.png"] and decoded(reply).size == (64, 48)
    assert "• **preview = true**" in reply.embeds[0]["description"]
    assert reply.pings["users"] == [fake_discord.bob.id]  # no reply to anything: the owner is pinged by name


async def test_link_to_a_local_address_is_refused_unfetched(fake_discord: FakeDiscord, run_bot) -> None:
    photo = fake_discord.host_file("photo.png", picture(80, 60), "image/png")
    style = fake_discord.host_file("style.png", picture(40, 40), "image/png")
    async with run_bot(make_bot()):
        await fake_discord.send_message(fake_discord.alice, f"!stylize {photo} {style} {TINY}")
        reply = await fake_discord.wait_for(kind="message")
    assert reply.content.startswith("⚠️ The photo: I can't fetch links to private or local addresses")
    assert fake_discord.hits_for(photo) == 0 and fake_discord.hits_for(style) == 0
    assert len(fake_discord.sent) == 1  # no job was queued


async def test_attachment_plus_link(fake_discord: FakeDiscord, run_bot) -> None:
    style = fake_discord.host_file("style.png", picture(40, 40), "image/png")
    async with run_bot(make_bot(session_factory=permissive_session)):
        request = await fake_discord.send_message(fake_discord.alice, f"!stylize <{style}> {TINY}",
                                                  attachments=[Upload("photo.png", picture(80, 60))])
        reply = await fake_discord.wait_for(with_file, kind="message", timeout=20)
    assert replying_to(request)(reply) and decoded(reply).size == (64, 48)
    assert fake_discord.hits_for(style) == 1


def mask_png(width: int, height: int) -> bytes:
    """White left half, black right half, saved as a JPEG (no flat colours, as phones send them)."""
    image = Image.new("RGB", (width, height))
    image.paste((255, 255, 255), (0, 0, width // 2, height))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


async def test_a_mask_as_the_last_attachment_or_a_link(fake_discord: FakeDiscord, run_bot) -> None:
    hosted = fake_discord.host_file("mask.jpg", mask_png(160, 120), "image/jpeg")
    async with run_bot(make_bot(session_factory=permissive_session)):
        for words, uploads in ((f"mask=last {TINY}", [*photo_and_style(), Upload("image0.jpg", mask_png(80, 60))]),
                               (f"mask=<{hosted}> {TINY}", photo_and_style())):
            mark = fake_discord.mark()
            request = await fake_discord.send_message(fake_discord.alice, f"!stylize {words}", attachments=uploads)
            reply = await fake_discord.wait_for(with_file, kind="message", since=mark, timeout=30)
            assert replying_to(request)(reply) and decoded(reply).size == (64, 48)
            fields = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}
            assert fields["Mask"] == "white → style 1, black → photo"
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.alice, f"!stylize mask=last {TINY}",
                                        attachments=[*photo_and_style(), Upload("m.jpg", mask_png(80, 80))])
        refused = await fake_discord.wait_for(kind="message", since=mark)
        assert refused.content.startswith("⚠️ ") and "their shapes differ by 25%" in refused.content
    assert fake_discord.hits_for(hosted) == 1


async def test_a_mask_as_a_slash_option(fake_discord: FakeDiscord, run_bot) -> None:
    photo, style = photo_and_style()
    async with run_bot(make_bot()):
        await fake_discord.send_interaction(
            fake_discord.alice, "stylize paint",
            {"content": photo, "style": style, "mask": Upload("image0.jpg", mask_png(80, 60)), "steps": 2, "size": 64,
             "settings": "scales=1"})
        reply = await fake_discord.wait_for(with_file, kind="message", timeout=30)
    assert decoded(reply).size == (64, 48)
    assert {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}["Mask"] == "white → style 1, black → photo"


async def test_reply_to_a_picture_makes_it_the_photo(fake_discord: FakeDiscord, run_bot) -> None:
    async with run_bot(make_bot()):
        posted = await fake_discord.send_message(fake_discord.alice, "my cat",
                                                  attachments=[Upload("cat.png", picture(60, 80))])
        request = await fake_discord.send_message(fake_discord.bob, f"!stylize {TINY}", reference=posted,
                                                  attachments=[Upload("style.png", picture(80, 60))])
        reply = await fake_discord.wait_for(with_file, kind="message", timeout=20)
    assert replying_to(request)(reply)
    assert decoded(reply).size == (48, 64)  # portrait: the replied-to picture is the content


async def test_two_users_at_once(fake_discord: FakeDiscord, run_bot) -> None:
    gate = Gate(engine_runner("cpu"))
    async with run_bot(make_bot(runner=gate)):
        first = await fake_discord.send_message(fake_discord.alice, f"!stylize {TINY}", attachments=photo_and_style())
        first_status = await status_of(fake_discord, first, 0)
        await edit_of(fake_discord, first_status, "50%")
        mark = fake_discord.mark()
        second = await fake_discord.send_message(fake_discord.bob, f"!stylize {TINY}", attachments=photo_and_style())
        second_status = await status_of(fake_discord, second, mark)
        gate.opened.set()
        replies = [await fake_discord.wait_for(lambda e, r=r: with_file(e) and replying_to(r)(e), kind="message",
                                               timeout=20) for r in (first, second)]
    assert "number **1** in line (next up)" in second_status.content
    assert [r.content.split()[0] for r in replies] == [f"<@{fake_discord.alice.id}>", f"<@{fake_discord.bob.id}>"]


async def test_upload_limit_decides_png_or_jpeg(fake_discord: FakeDiscord, run_bot) -> None:
    photo, style = photo_and_style()
    png_size = len(photo.data)  # FakeRunner returns the photo itself
    fake_discord.attachment_size_limit = png_size - 1  # what interactions report as filesize_limit
    runner = FakeRunner()
    async with run_bot(make_bot(runner=runner)):
        await fake_discord.send_interaction(fake_discord.alice, "stylize paint", {"content": photo, "style": style})
        await fake_discord.wait_for(lambda e: "Queued" in (e.content or ""), kind="message")
        runner.release_all()
        reply = await fake_discord.wait_for(with_file, kind="message", timeout=10)
    assert reply.filenames == ["stylized.jpg"] and len(reply.files[0].data) < png_size
    assert reply.embeds[0]["image"]["url"] == "attachment://stylized.jpg"


async def test_a_refused_upload_is_still_answered(fake_discord: FakeDiscord, run_bot) -> None:
    runner = FakeRunner()
    async with run_bot(make_bot(runner=runner)):
        request = await fake_discord.send_message(fake_discord.alice, "!stylize", attachments=photo_and_style())
        await status_of(fake_discord, request, 0)
        fake_discord.fail_next("POST", r"/channels/\d+/messages$", status=413, code=40005,
                               message="Request entity too large")
        runner.release_all()
        reply = await fake_discord.wait_for(replying_to(request), kind="message", since=fake_discord.mark(),
                                            timeout=10)
    assert "your painting is ready, but Discord refused the upload (Request entity too large)" in reply.content


async def test_no_status_message_no_job(fake_discord: FakeDiscord, run_bot, caplog: pytest.LogCaptureFixture) -> None:
    runner = FakeRunner()
    async with run_bot(make_bot(runner=runner)) as bot:
        fake_discord.fail_next("POST", r"/channels/\d+/messages$", status=403, code=50013,
                               message="Missing Permissions", times=2)  # the status, then the error reply
        await fake_discord.send_message(fake_discord.alice, "!stylize", attachments=photo_and_style())
        await eventually(lambda: "could not answer" in caplog.text)  # the error reply failed too: the end
        assert await bot.backend.jobs() == []
    assert "Missing Permissions" in caplog.text  # logged as our problem, not the user's


async def test_a_network_error_posting_the_status_drops_the_job(fake_discord: FakeDiscord, run_bot,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A connection reset (aiohttp's ClientOSError, not an HTTPException) must not orphan the job."""
    runner = FakeRunner()
    async with run_bot(make_bot(runner=runner)) as bot:
        fake_discord.fail_next("POST", r"/channels/\d+/messages$", reset=True)  # the status message
        request = await fake_discord.send_message(fake_discord.alice, "!stylize", attachments=photo_and_style())
        sorry = await fake_discord.wait_for(replying_to(request), kind="message")
        assert await bot.backend.jobs() == []
        for job_id in runner.ran:  # cancelled, and collected: nothing is kept
            assert await bot.backend.snapshot(job_id) is None
    assert "Something went wrong on my side" in sorry.content and "Connection reset by peer" in caplog.text


# ------------------------------------------------------------------------------------ refusals


async def test_start_up_sets_its_heap_aside_from_the_garbage_collector(fake_discord: FakeDiscord, run_bot) -> None:
    """Issue 22, 7: a full collection walked the whole start-up heap and held the event loop 220–280 ms;
    frozen, it walks only what came after (bench/gc_pause.py). Given back at close (tests run many bots)."""
    async with run_bot(make_bot()):
        assert gc.get_freeze_count() > 100_000
    assert gc.get_freeze_count() == 0


async def test_bad_settings_get_a_friendly_answer(fake_discord: FakeDiscord, run_bot) -> None:
    async with run_bot(make_bot(config(cooldown={"commands": 10}))):
        for text, expected in [("steps=abc", "steps must be a number, got 'abc'"),
                               ("stile_weight=1", "unknown setting 'stile_weight' — did you mean style_weight?"),
                               ("style_blend=2,1", "style_blend has 2 weights but you gave 1 style image"),
                               ("pixels=1e303mp", "pixels must be between 4096 and 16777216, got inf")]:  # issue 22, 8
            mark = fake_discord.mark()
            request = await fake_discord.send_message(fake_discord.alice, f"!stylize {text}",
                                                      attachments=photo_and_style())
            reply = await fake_discord.wait_for(kind="message", since=mark)
            assert replying_to(request)(reply) and reply.content.startswith("⚠️ ") and expected in reply.content
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.alice, "!stylize")
        usage = await fake_discord.wait_for(kind="message", since=mark)
        assert "I need two pictures" in usage.content and "**Usage:** `!stylize`" in usage.content
        mark = fake_discord.mark()
        await fake_discord.send_interaction(fake_discord.alice, "stylize paint", {"content": photo_and_style()[0]})
        slash = await fake_discord.wait_for(kind="message", since=mark)
        assert slash.ephemeral and "I need a style image (style)" in slash.content
        mark = fake_discord.mark()
        big = Upload("huge.png", picture(8, 8), size=30_000_000)
        await fake_discord.send_message(fake_discord.alice, "!stylize", attachments=[big, photo_and_style()[1]])
        too_big = await fake_discord.wait_for(kind="message", since=mark)
        assert "The photo: That file is 30 MB; the limit is 26.2 MB" in too_big.content
    assert not [e for e in fake_discord.events if "Queued" in (e.content or "")]
    assert not [p for p in fake_discord.request_paths if p.endswith("/huge.png")]  # never downloaded


async def test_caps_by_role(fake_discord: FakeDiscord, run_bot) -> None:
    painters = fake_discord.add_role("Painters")
    painter = fake_discord.make_user("painter", roles=[painters])
    cfg = config(limits={"max_size": 128, "max_steps": 50, "roles": [{"id": painters, "max_size": 256}]},
                 defaults={"size": 64, "steps": 2})
    runner = FakeRunner()
    async with run_bot(make_bot(cfg, runner=runner)):
        await fake_discord.send_message(fake_discord.alice, "!stylize size=256", attachments=photo_and_style())
        refused = await fake_discord.wait_for(kind="message")
        mark = fake_discord.mark()
        request = await fake_discord.send_message(painter, "!stylize size=256", attachments=photo_and_style())
        await status_of(fake_discord, request, mark)
        mark = fake_discord.mark()
        await fake_discord.send_message(painter, "!stylize steps=51 size=64", attachments=photo_and_style())
        steps = await fake_discord.wait_for(kind="message", since=mark)
        runner.release_all()
    assert "size=256 is over this server's cap of 128 for you — ask for size=128 or less" in refused.content
    assert "steps=51 is over this server's cap of 50" in steps.content


async def test_echoed_text_pings_nobody_and_links_nothing(fake_discord: FakeDiscord, run_bot) -> None:
    """Whatever a user types comes back clipped and escaped, and pings nobody."""
    alice, bob = fake_discord.alice, fake_discord.bob
    async with run_bot(make_bot(config(cooldown={"commands": 10}))):
        for text in (f"<@{bob.id}>=1", "[Free_Nitro](https://evil.example)=1", "steps=@everyone", "k" * 1985 + "=1",
                     " ".join(f"<@{bob.id}>" for _ in range(90))):
            mark = fake_discord.mark()
            request = await fake_discord.send_message(alice, f"!stylize {text}", attachments=photo_and_style())
            reply = await fake_discord.wait_for(kind="message", since=mark)
            assert replying_to(request)(reply) and reply.content.startswith("⚠️ ")
            assert reply.pings == {"users": [], "roles": [], "everyone": False}, reply.content
            assert f"<@{bob.id}>" not in reply.content and "[Free" not in reply.content.replace("\\[Free", "")
            assert len(reply.content) < 600


# -------------------------------------------------------------------- limits before any download


def refusal_to(fake: FakeDiscord, request: dict[str, Any]) -> Callable[[Event], bool]:
    return lambda e: replying_to(request)(e) and (e.content or "").startswith("⚠️")


async def test_limits_apply_before_any_download(fake_discord: FakeDiscord, run_bot) -> None:
    """4 quick commands with per_user=2: the 2 still loading hold their places, the others fetch nothing."""
    runner = FakeRunner()
    slow = fake_discord.host_file("slow.png", picture(80, 60), "image/png", delay=1.0)
    async with run_bot(make_bot(runner=runner, session_factory=permissive_session)):
        requests = [await fake_discord.send_message(fake_discord.alice, f"!stylize {slow}",
                                                    attachments=[photo_and_style()[1]]) for _ in range(4)]
        refused = [await fake_discord.wait_for(refusal_to(fake_discord, r), kind="message", timeout=10)
                   for r in requests[2:]]
        for request in requests[:2]:
            await status_of(fake_discord, request, 0)
        runner.release_all()
    assert all("You already have 2 jobs in the queue" in r.content for r in refused)
    assert fake_discord.hits_for(slow) == 2
    assert len([p for p in fake_discord.request_paths if p.endswith("/style.png")]) == 2


async def test_a_full_queue_downloads_nothing(fake_discord: FakeDiscord, run_bot) -> None:
    runner = FakeRunner()
    link = fake_discord.host_file("photo.png", picture(80, 60), "image/png")
    carol = fake_discord.make_user("carol")
    async with run_bot(make_bot(config(limits={"queue_size": 1}), runner=runner, session_factory=permissive_session)):
        for user in (fake_discord.alice, fake_discord.bob):  # one running, one waiting
            mark = fake_discord.mark()
            await status_of(fake_discord, await fake_discord.send_message(user, "!stylize",
                                                                          attachments=photo_and_style()), mark)
        request = await fake_discord.send_message(carol, f"!stylize {link}", attachments=[photo_and_style()[1]])
        refused = await fake_discord.wait_for(refusal_to(fake_discord, request), kind="message", timeout=10)
        runner.release_all()
    assert "The queue is full (1 jobs waiting)" in refused.content
    assert fake_discord.hits_for(link) == 0


class Overlap:
    """Wraps a function (the real decoder): each call made slow enough to overlap, the most at once counted."""

    def __init__(self, work: Callable[..., Any], seconds: float = 0.3) -> None:
        self.work, self.seconds = work, seconds
        self.lock, self.active, self.peak = threading.Lock(), 0, 0

    def __call__(self, *args: Any, **options: Any) -> Any:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.seconds)
            return self.work(*args, **options)
        finally:
            with self.lock:
                self.active -= 1


async def test_at_most_two_pictures_decode_at_once(fake_discord: FakeDiscord, run_bot,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    slow_decode = Overlap(images.decode_image)
    monkeypatch.setattr(images, "decode_image", slow_decode)  # before the cog is loaded, so it imports this one
    users = [fake_discord.alice, fake_discord.bob, fake_discord.make_user("carol"), fake_discord.make_user("dave")]
    async with run_bot(make_bot(runner=runner)):
        requests = [await fake_discord.send_message(user, "!stylize", attachments=photo_and_style()) for user in users]
        for request in requests:
            await status_of(fake_discord, request, 0)
        runner.release_all()
    assert slow_decode.peak == 2


async def test_queued_jobs_hold_pictures_at_the_size_they_will_be_painted(fake_discord: FakeDiscord, run_bot) -> None:
    runner = FakeRunner()
    async with run_bot(make_bot(runner=runner)) as bot:
        request = await fake_discord.send_message(
            fake_discord.alice, "!stylize size=64 style_scale=0.5",
            attachments=[Upload("photo.png", picture(600, 400)), Upload("style.png", picture(400, 200)),
                         Upload("style2.png", picture(300, 300))])
        await status_of(fake_discord, request, 0)
        [queued] = await bot.backend.jobs()
        runner.release_all()
    assert queued.content.size == (64, 43)
    assert [s.size for s in queued.styles] == [(64, 32), (32, 32)]  # size × style_scale, but 32 px across at least


async def test_a_pixel_count_sizes_the_photo_and_its_styles(fake_discord: FakeDiscord, run_bot) -> None:
    cfg = config(limits={"max_size": 100, "max_style_size": 136}, defaults={"size": 64, "steps": 2})
    runner = FakeRunner()
    async with run_bot(make_bot(cfg, runner=runner)) as bot:
        request = await fake_discord.send_message(
            fake_discord.alice, "!stylize pixels=6144",
            attachments=[Upload("photo.png", picture(600, 200)), Upload("style.png", picture(400, 400))])
        await status_of(fake_discord, request, 0)
        [queued] = await bot.backend.jobs()
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.alice, "!stylize pixels=0.011mp", attachments=photo_and_style())
        refused = await fake_discord.wait_for(kind="message", since=mark)
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.alice, "!stylize pixels=6144 size=64", attachments=photo_and_style())
        both = await fake_discord.wait_for(kind="message", since=mark)
        runner.release_all()
    assert queued.content.size == (136, 45)  # 3:1 at 6144 pixels: wider than the cap's 100 px square
    assert (queued.settings.size, queued.settings.pixels) == (136, 6144)
    assert [s.size for s in queued.styles] == [(136, 136)]  # styles follow the derived size
    assert "pixels=11000 is over this server's cap of 10000 for you — ask for pixels=10000 or less" in refused.content
    assert "give size (the longest side) or pixels (the pixel count), not both" in both.content


async def test_a_pixel_count_on_a_panorama_is_refused_at_the_style_size_it_would_paint(fake_discord: FakeDiscord,
                                                                                         run_bot) -> None:
    """pixels=1048576 on a 32:1 photo would paint its style at 4096 px against a 1024 px cap (issue 22, 2):
    refused once the photo's shape is known, before the style is fetched."""
    runner = FakeRunner()
    style = fake_discord.host_file("style.png", picture(40, 40), "image/png")
    async with run_bot(make_bot(config(limits={"max_size": 1024}), runner=runner,
                                session_factory=permissive_session)) as bot:
        request = await fake_discord.send_message(fake_discord.alice, f"!stylize pixels=1048576 {style}",
                                                  attachments=[Upload("photo.png", picture(640, 20))])
        refused = await fake_discord.wait_for(refusal_to(fake_discord, request), kind="message", timeout=10)
        assert await bot.backend.jobs() == []
        runner.release_all()
    assert ("pixels=1048576 on this 32:1 photo (painted 4096×128) with style_scale=1 paints the style pictures at "
            "4096 px, over this server's cap of 1024 for you — ask for pixels=32768 or style_scale=0.25 or less"
            ) in refused.content
    assert fake_discord.hits_for(style) == 0


async def test_a_job_too_large_for_the_memory_is_refused_with_the_size_that_fits(fake_discord: FakeDiscord,
                                                                                  run_bot) -> None:
    def need(size: int) -> int | None:  # the job as the bot sees it: its defaults below, the photo 4:3
        return predict_peak_bytes(Settings.parse({"size": size, "steps": 2, "precision": "fp32"}), (4, 3), 1, "cpu")

    budget = need(1000)
    assert budget is not None
    cfg = config(limits={"memory_gb": budget / 1e9, "max_size": 4096}, defaults={"size": 64, "steps": 2})
    runner = FakeRunner()
    async with run_bot(make_bot(cfg, runner=runner)) as bot:
        await fake_discord.send_message(fake_discord.alice, "!stylize size=2000 precision=fp32",
                                        attachments=[Upload("photo.png", picture(80, 60)), photo_and_style()[1]])
        refused = await fake_discord.wait_for(kind="message")
        assert await bot.backend.jobs() == []
        mark = fake_discord.mark()
        request = await fake_discord.send_message(fake_discord.alice, "!stylize size=1000 precision=fp32",
                                                  attachments=photo_and_style())
        await status_of(fake_discord, request, mark)
        runner.release_all()
    assert refused.content == (f"⚠️ That job would need about {need(2000) / 1e9:.1f} GB of memory, and a job may use "
                               f"{budget / 1e9:.1f} GB here — ask for size=1000 or less")


async def test_pictures_too_thin_to_paint_are_refused_at_once(fake_discord: FakeDiscord, run_bot) -> None:
    runner = FakeRunner()
    async with run_bot(make_bot(runner=runner)):
        request = await fake_discord.send_message(fake_discord.alice, "!stylize size=64",
                                                  attachments=[Upload("photo.png", picture(640, 10)),
                                                               photo_and_style()[1]])
        refused = await fake_discord.wait_for(refusal_to(fake_discord, request), kind="message", timeout=10)
        mark = fake_discord.mark()
        request = await fake_discord.send_message(fake_discord.alice, "!stylize size=64",
                                                  attachments=[photo_and_style()[0], Upload("s.png", picture(10, 100))])
        style = await fake_discord.wait_for(refusal_to(fake_discord, request), kind="message", since=mark, timeout=10)
    assert refused.content == ("⚠️ The photo: That picture is too narrow: at size=64 its short side would be 1 px, "
                               "and I need at least 16 — send one no wider than 4:1, or ask for a larger size")
    assert style.content.startswith("⚠️ The style picture: That picture is too narrow: at size=64 its short side "
                                    "would be 6 px")
    assert runner.ran == []


async def test_style_resolution_and_style_count_follow_the_role_caps(fake_discord: FakeDiscord, run_bot) -> None:
    painters = fake_discord.add_role("Painters")
    painter = fake_discord.make_user("painter", roles=[painters])
    cfg = config(limits={"max_styles": 1, "roles": [{"id": painters, "max_styles": 2, "max_style_size": 2048}]})
    runner = FakeRunner()
    two_styles = [*photo_and_style(), Upload("style2.png", picture(40, 40))]
    async with run_bot(make_bot(cfg, runner=runner)):
        await fake_discord.send_message(fake_discord.alice, "!stylize size=1024 style_scale=4",
                                        attachments=photo_and_style())
        too_fine = await fake_discord.wait_for(kind="message")
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.alice, "!stylize", attachments=two_styles)
        too_many = await fake_discord.wait_for(kind="message", since=mark)
        mark = fake_discord.mark()
        request = await fake_discord.send_message(painter, "!stylize size=1024 style_scale=2", attachments=two_styles)
        await status_of(fake_discord, request, mark)
        runner.release_all()
    assert ("style_scale=4 at size=1024 paints the style pictures at 4096 px, over this server's cap of 1024 for you "
            "— ask for style_scale=1 or less") in too_fine.content
    assert "That's 2 style images; the limit is 1." in too_many.content


# ----------------------------------------------------------------------------- help and queue


async def test_help_lists_every_setting(fake_discord: FakeDiscord, run_bot) -> None:
    async with run_bot(make_bot()):
        await fake_discord.send_message(fake_discord.alice, "!stylize help")
        prefix = await fake_discord.wait_for(kind="message")
        mark = fake_discord.mark()
        await fake_discord.send_interaction(fake_discord.alice, "stylize help")
        slash = await fake_discord.wait_for(kind="message", since=mark)
    for reply in (prefix, slash):
        names = [f["name"].split(" ")[0] for embed in reply.embeds for f in embed["fields"]]
        assert names == [spec.name for spec in SPECS]
        assert "`!stylize mask=last`" in reply.embeds[0]["description"]  # the mask, by example
    assert slash.ephemeral


async def test_queue_shows_running_and_waiting(fake_discord: FakeDiscord, run_bot) -> None:
    runner = FakeRunner()
    async with run_bot(make_bot(runner=runner)):
        first = await fake_discord.send_message(fake_discord.alice, "!stylize", attachments=photo_and_style())
        await status_of(fake_discord, first, 0)
        mark = fake_discord.mark()
        second = await fake_discord.send_message(fake_discord.bob, "!stylize size=256", attachments=photo_and_style())
        await status_of(fake_discord, second, mark)
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.moderator, "!stylize queue")
        listing = await fake_discord.wait_for(kind="message", since=mark)
        runner.release_all()
    assert listing.content.startswith("**Queue** (1 waiting)")
    assert f"🎨 running: <@{fake_discord.alice.id}>" in listing.content
    assert f"\n1. <@{fake_discord.bob.id}> · size 256" in listing.content
    assert listing.pings == {"users": [], "roles": [], "everyone": False}  # listing people does not ping them


# --------------------------------------------------------------------------------- cancelling


async def test_cancel_command_and_button(fake_discord: FakeDiscord, run_bot) -> None:
    runner = FakeRunner()
    alice, bob = fake_discord.alice, fake_discord.bob
    async with run_bot(make_bot(runner=runner)):
        running_request = await fake_discord.send_message(alice, "!stylize", attachments=photo_and_style())
        running = await status_of(fake_discord, running_request, 0)
        mark = fake_discord.mark()
        queued_request = await fake_discord.send_message(alice, "!stylize", attachments=photo_and_style())
        queued = await status_of(fake_discord, queued_request, mark)
        queued_id = queued.content.split("`")[-2]

        mark = fake_discord.mark()
        await fake_discord.click_button(bob, running.message_id, label="Cancel")
        refusal = await fake_discord.wait_for(kind="message", since=mark)
        assert refusal.ephemeral and refusal.content == f"Only <@{alice.id}> or a moderator can cancel this job."

        mark = fake_discord.mark()
        await fake_discord.send_message(bob, "!stylize cancel")
        assert "You have no job waiting or running." in (await fake_discord.wait_for(kind="message", since=mark)).content
        mark = fake_discord.mark()
        await fake_discord.send_message(bob, f"!stylize cancel {queued_id}")
        assert "someone else's job" in (await fake_discord.wait_for(kind="message", since=mark)).content

        mark = fake_discord.mark()
        await fake_discord.send_message(alice, f"!stylize cancel {queued_id}")
        confirmed = await fake_discord.wait_for(kind="message", since=mark)
        assert confirmed.content == f"🛑 Cancelled job `{queued_id}`."
        assert (await edit_of(fake_discord, queued, "cancelled by")).content == \
            f"🛑 Job `{queued_id}` cancelled by <@{alice.id}>."

        mark = fake_discord.mark()
        await fake_discord.click_button(fake_discord.moderator, running.message_id, label="Cancel")
        pressed = await fake_discord.wait_for(kind="interaction_response", since=mark)
        final = await edit_of(fake_discord, running, "(moderator)", mark)
        told = await fake_discord.wait_for(lambda e: "was cancelled" in (e.content or ""), kind="message", since=mark)
    assert pressed.response_type == 7 and pressed.message["components"] == []
    assert final.content.endswith(f"cancelled by <@{fake_discord.moderator.id}> (moderator).")
    assert replying_to(running_request)(told) and told.content.startswith(f"<@{alice.id}> your job")
    # alice cancelled her own queued job herself: she was not told again
    assert not fake_discord.find(lambda e: replying_to(queued_request)(e) and "was cancelled" in (e.content or ""))


async def test_moderators_and_queue_stay_in_their_server(fake_discord: FakeDiscord, run_bot) -> None:
    """A moderator of this server neither lists nor cancels jobs from DMs or other servers; in DMs,
    `queue` lists only one's own jobs."""
    runner = FakeRunner()
    alice, bob, mod = fake_discord.alice, fake_discord.bob, fake_discord.moderator
    async with run_bot(make_bot(runner=runner)) as bot:
        here = await fake_discord.send_message(alice, "!stylize", attachments=photo_and_style())
        here_id = (await status_of(fake_discord, here, 0)).content.split("`")[-2]
        mark = fake_discord.mark()
        in_dm = await fake_discord.send_message(bob, "!stylize", attachments=photo_and_style(), dm=True)
        dm_id = (await status_of(fake_discord, in_dm, mark)).content.split("`")[-2]
        elsewhere = Job(user_id=4242, channel_id=1, guild_id=fake_discord.guild_id + 1, message_id=None,
                        content=Image.new("RGB", (8, 8)), styles=(Image.new("RGB", (8, 8)),),
                        settings=bot.config.defaults)  # a job from another server the bot is in
        await bot.backend.submit(elsewhere)

        async def answer(user: Any, text: str, **where: Any) -> str:
            mark = fake_discord.mark()
            await fake_discord.send_message(user, text, **where)
            return (await fake_discord.wait_for(kind="message", since=mark)).content

        listing = await answer(mod, "!stylize queue")
        assert here_id in listing and dm_id not in listing and elsewhere.short not in listing
        assert listing.startswith("**Queue** (2 waiting)") and "…and 2 jobs from elsewhere." in listing
        mine = await answer(bob, "!stylize queue", dm=True)
        assert f"\n1. <@{bob.id}>" in mine and dm_id in mine and here_id not in mine and elsewhere.short not in mine
        for job_id in (dm_id, elsewhere.id):
            assert f"No job '{job_id}' is waiting or running." in await answer(mod, f"!stylize cancel {job_id}")
        assert {j.short for j in await bot.backend.jobs()} == {here_id, dm_id, elsewhere.short}
        assert "Cancelled job" in await answer(mod, f"!stylize cancel {here_id}")  # this server's: yes
        runner.release_all()


async def test_own_button_cancels_a_running_job(fake_discord: FakeDiscord, run_bot) -> None:
    runner = FakeRunner()
    async with run_bot(make_bot(runner=runner)):
        request = await fake_discord.send_message(fake_discord.bob, "!stylize", attachments=photo_and_style())
        status = await status_of(fake_discord, request, 0)
        await fake_discord.click_button(fake_discord.bob, status.message_id, label="Cancel")
        final = await edit_of(fake_discord, status, "cancelled by")
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.bob, "!stylize queue")
        assert "empty" in (await fake_discord.wait_for(kind="message", since=mark)).content
    assert final.content.endswith(f"cancelled by <@{fake_discord.bob.id}>.") and final.components == []


async def test_failed_job_is_explained_and_the_next_one_runs(fake_discord: FakeDiscord, run_bot) -> None:
    runner = FakeRunner()
    async with run_bot(make_bot(runner=runner)):
        failing = await fake_discord.send_message(fake_discord.alice, "!stylize", attachments=photo_and_style())
        failing_status = await status_of(fake_discord, failing, 0)
        job_id = fake_discord.find_component(failing_status.message_id, label="Cancel")["custom_id"].split(":")[-1]
        runner.failures[job_id] = OutOfMemory("the CUDA ran out of memory at size=512; try a smaller size")
        mark = fake_discord.mark()
        fine = await fake_discord.send_message(fake_discord.bob, "!stylize", attachments=photo_and_style())
        await status_of(fake_discord, fine, mark)
        runner.release_all()
        sorry = await fake_discord.wait_for(lambda e: replying_to(failing)(e) and "failed" in (e.content or ""),
                                            kind="message", timeout=10)
        result = await fake_discord.wait_for(lambda e: with_file(e) and replying_to(fine)(e), kind="message",
                                             timeout=10)
    assert sorry.content.endswith("failed: the CUDA ran out of memory at size=512; try a smaller size.")
    assert result.filenames == ["stylized.png"]


# ------------------------------------------- Discord's invalid-request limit: silence and cooldowns


async def test_no_answers_where_the_bot_may_not_post(fake_discord: FakeDiscord, run_bot,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Each answer there would fail with 403, and 10,000 of those in 10 minutes get the IP banned."""
    muted = fake_discord.add_text_channel("announcements", deny_bot=discord.Permissions(send_messages=True))
    async with run_bot(make_bot()):
        for text in ("!stylize", "!stylize help", "!stylize queue", "!stylize cancel", "!stylize x=1"):
            await fake_discord.send_message(fake_discord.alice, text, channel_id=muted, attachments=photo_and_style())
        await eventually(lambda: "I may not send messages there" in caplog.text)
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.alice, "!stylize help")  # where it may, it answers
        await fake_discord.wait_for(kind="message", since=mark)
    assert [str(r) for r in fake_discord.requests if f"/channels/{muted}/" in r.path] == []
    assert caplog.text.count("I may not send messages there") == 1  # logged once, not once per command


async def test_cooldown_on_commands_and_buttons(fake_discord: FakeDiscord, run_bot) -> None:
    runner = FakeRunner()
    alice, bob = fake_discord.alice, fake_discord.bob
    async with run_bot(make_bot(config(cooldown={"commands": 2, "buttons": 1, "seconds": 60}), runner=runner)):
        request = await fake_discord.send_message(alice, "!stylize", attachments=photo_and_style())
        status = await status_of(fake_discord, request, 0)
        second = await fake_discord.send_message(alice, "!stylize queue")  # the second command in the period: fine
        queue = await fake_discord.wait_for(replying_to(second), kind="message")
        fast = [await fake_discord.send_message(alice, "!stylize queue") for _ in range(5)]
        note = await fake_discord.wait_for(lambda e: any(replying_to(m)(e) for m in fast), kind="message")
        slash = await fake_discord.response_to(await fake_discord.send_interaction(alice, "stylize queue"),
                                               kind="message")
        bobs = await fake_discord.send_message(bob, "!stylize queue")  # per user: bob is not slowed down
        assert (await fake_discord.wait_for(replying_to(bobs), kind="message")).content.startswith("**Queue**")
        for _ in range(2):
            click = await fake_discord.click_button(bob, status.message_id, label="Cancel")
            pressed = await fake_discord.response_to(click, kind="message")
        await fake_discord.click_button(alice, status.message_id, label="Cancel")  # her own bucket
        await edit_of(fake_discord, status, "cancelled by")
    slow = r"You're going a bit fast — try again in \d+ s\."
    assert queue.content.startswith("**Queue**")
    assert slash.ephemeral and re.fullmatch(f"⚠️ {slow}", slash.content)
    assert not note.ephemeral and re.fullmatch(f"⚠️ {slow}", note.content)
    notes = [e for e in fake_discord.sent if any(replying_to(m)(e) for m in fast)]  # all five long handled by now
    assert notes == [note]  # one note for five commands
    assert pressed.ephemeral and re.fullmatch(slow, pressed.content)


# ------------------------------------------------------------------------------ access, admin


async def test_only_in_allowed_channels(fake_discord: FakeDiscord, run_bot) -> None:
    other = fake_discord.add_text_channel("painting")
    async with run_bot(make_bot(config(access={"channels": [other]}))):
        await fake_discord.send_message(fake_discord.alice, "!stylize help")
        await fake_discord.assert_nothing(kind="message", within=0.3)
        await fake_discord.send_interaction(fake_discord.alice, "stylize help")
        refusal = await fake_discord.wait_for(kind="message")
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.alice, "!stylize help", channel_id=other)
        allowed = await fake_discord.wait_for(kind="message", since=mark)
    assert refusal.ephemeral and "not enabled in this channel" in refusal.content
    assert allowed.embeds


async def test_sync_is_owner_only_and_publishes_generated_options(fake_discord: FakeDiscord, run_bot) -> None:
    async with run_bot(make_bot()):
        await fake_discord.send_message(fake_discord.alice, "!sync")
        refused = await fake_discord.wait_for(kind="message")
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.owner, "!sync")
        synced = await fake_discord.wait_for(kind="commands_sync", since=mark)
        confirmed = await fake_discord.wait_for(kind="message", since=mark)
    assert refused.content == "⚠️ Only the bot's owner can do that."
    assert synced.extra["names"] == ["stylize", "stylize-defaults", "Stylize: paint again", "Stylize: settings",
                                     "Stylize: use this photo"]
    assert confirmed.content.startswith("Synced 5 command(s) globally")
    group, defaults, *menus = synced.payload
    assert [menu["type"] for menu in menus] == [3, 3, 3]  # message context menus
    assert int(defaults["default_member_permissions"]) == discord.Permissions(manage_guild=True).value
    paint = next(o for o in group["options"] if o["name"] == "paint")
    assert {o["name"] for o in group["options"]} == {"paint", "help", "cancel", "queue", "last", "styles", "forget"}
    # Discord refuses the whole sync past 25 options; keep room for three more (animation, …)
    assert len(paint["options"]) <= 22, f"/stylize paint has {len(paint['options'])} options"
    options = {o["name"]: o for o in paint["options"]}
    assert list(options)[:6] == ["content", "style", "style2", "mask", "content_link", "style_link"]
    assert options["mask"]["type"] == 11  # an attachment
    assert options["preset"]["autocomplete"] and options["settings"]["type"] == 3
    assert len(options["settings"]["description"]) <= 100 and "num_epoch" in options["settings"]["description"]
    for spec in SPECS:
        option = options.get(spec.name)
        if option is None:  # every setting without a typed option goes through `settings`
            continue
        assert option["description"] == spec.help[:100] and not option["required"]
        if spec.choices:
            assert [c["value"] for c in option["choices"]] == list(spec.choices)
        elif spec.type in (int, float) and spec.min is not None:
            assert option["type"] == (4 if spec.type is int else 10)
            assert (option["min_value"], option["max_value"]) == (spec.min, spec.max)
        else:
            assert option["type"] == {bool: 5, tuple: 3, str: 3}[spec.type]
    assert {"size", "steps", "style_weight", "preserve_color", "seed"} <= set(options)


async def test_slash_settings_text_goes_through_the_prefix_parser(fake_discord: FakeDiscord, run_bot) -> None:
    photo, style = photo_and_style()
    async with run_bot(make_bot(runner=FakeRunner())):
        for options, expected in [({"settings": "stile_weight=1"}, "unknown setting 'stile_weight' — did you mean"),
                                  ({"steps": 5, "settings": "iterations=6"}, "given twice"),
                                  ({"settings": "https://example.com/a.png"}, "only key=value settings go here")]:
            mark = fake_discord.mark()
            await fake_discord.send_interaction(fake_discord.alice, "stylize paint",
                                                {"content": photo, "style": style, **options})
            reply = await fake_discord.wait_for(kind="message", since=mark)
            assert reply.ephemeral and expected in reply.content, reply.content


# ------------------------------------------------------------------------------ process level


@pytest.mark.parametrize("late_answers", [False, True])
async def test_sigterm_cancels_jobs_and_tells_users(fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch,
                                                    late_answers: bool) -> None:
    """late_answers: the bot has the answer to each message it sends 0.3 s after Discord has the message, so
    SIGTERM comes while Bob's status message is on its way; his job was then cancelled without a word (its
    follower started after shutdown had stopped waiting, and found the connection closed)."""
    if late_answers:
        send = discord.http.HTTPClient.send_message

        async def late(*args: Any, **kwargs: Any) -> Any:
            answer = await send(*args, **kwargs)
            await asyncio.sleep(0.3)
            return answer

        monkeypatch.setattr(discord.http.HTTPClient, "send_message", late)
    runner = FakeRunner()
    bot = make_bot(runner=runner)
    served = asyncio.create_task(serve(bot, "fake-token"))
    try:
        await fake_discord.wait_for(kind="gateway")  # logged in and identifying
        await bot.wait_until_ready()
        running = await fake_discord.send_message(fake_discord.alice, "!stylize", attachments=photo_and_style())
        await status_of(fake_discord, running, 0)
        mark = fake_discord.mark()
        waiting = await fake_discord.send_message(fake_discord.bob, "!stylize", attachments=photo_and_style())
        await status_of(fake_discord, waiting, mark)
        signal.raise_signal(signal.SIGTERM)
        assert await asyncio.wait_for(asyncio.shield(served), 20) == 0
    finally:
        await bot.close()
        await served
    assert bot.is_closed()
    for request, user in ((running, fake_discord.alice), (waiting, fake_discord.bob)):
        told = fake_discord.find(lambda e, r=request: replying_to(r)(e) and "shutting down" in (e.content or ""),
                                 kind="message")
        assert told and told[0].content.startswith(f"<@{user.id}> your job")


async def test_health_report_while_running(tmp_path: Any) -> None:
    path = tmp_path / "health.json"
    async with FakeDiscord(heartbeat_interval_ms=50) as fake:  # latency is known after the first heartbeat
        bot = make_bot(health=HealthReporter(path, interval=0.05))
        async with discord_standin.run_bot(bot):
            for _ in range(200):
                if diagnose(path) is None:
                    break
                await asyncio.sleep(0.02)
            assert diagnose(path) is None and bot.backend.alive()
            await bot.close()
            assert not path.exists() and not bot.backend.alive()
    assert not fake.internal_errors


def test_cli_check_subcommand(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr(check, "run_check", lambda path: seen.append(path) or 0)
    assert main(["check", "--config", "x.toml"]) == 0 and main(["check"]) == 0
    assert seen == ["x.toml", None]


def test_cli_sets_pillows_pixel_limit_once_from_the_config(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bot.toml"
    path.write_text('token = "t"\n[limits]\ninput_pixels = 150_000_000\n', encoding="utf-8")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test

    async def no_discord(bot: StylizeBot, token: str) -> int:
        return 0

    monkeypatch.setattr("bot.__main__.serve", no_discord)
    monkeypatch.setattr("discord.utils.setup_logging", lambda **options: None)  # leave the root logger alone
    with warnings.catch_warnings():
        assert main(["--config", str(path)]) == 0
    assert Image.MAX_IMAGE_PIXELS == 150_000_000  # Pillow's own default (89.5 MP) would refuse 100 MP pictures


def test_cli_refuses_a_bad_config(tmp_path: Any, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bot.toml"
    path.write_text('token = "very-secret"\nworkers = "two"\n', encoding="utf-8")
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"stylize-bot: {path}: workers must be an integer, not string\n"
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert "no such file" in capsys.readouterr().err
