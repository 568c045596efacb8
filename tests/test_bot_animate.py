"""Animated photos in the bot (issue 15): safe intake of GIF, APNG and WebP frames within the caps, checked
before queueing and again while decoding; `animate=true` (or a role's default) paints every frame and replies
with an animation keeping the frames' timing; without it the first frame is painted and the reply says how.

Real discord.py against the stand-in, the real engine, real tiny files."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from bot.config import Limits, Motion, RoleLimit
from bot.inputs.images import ImageError, decode_clip
from bot.jobs import ClipProgress, Job, engine_runner
from bot.painting.service import role_default
from bot.render import help_embeds, result_embed
from discord_standin import Event, FakeDiscord, Upload
from engine import ParamError, Result, Settings
from engine.memory import FRAME_BYTES, PAIR_BYTES, largest_size, predict_peak_bytes
from test_bot_e2e import config, decoded, edit_of, make_bot, picture, status_of, with_file
from test_bot_jobs import FakeRunner

pytestmark = pytest.mark.usefixtures("one_torch_thread", "vgg_loaded")

ANIMATE = "animate=true steps=2 frame_steps=2 size=64 scales=1"
DURATIONS = [100, 200, 300]


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Any) -> Any:
    import test_bot_e2e
    test_bot_e2e.DATA_DIR = tmp_path / "data"
    yield test_bot_e2e.DATA_DIR
    test_bot_e2e.DATA_DIR = None


def frames(n: int, size: tuple[int, int] = (64, 48)) -> list[Image.Image]:
    """Distinct noise frames (identical neighbours would be merged by every encoder)."""
    return [Image.effect_noise(size, 40 + 10 * i).convert("RGB") for i in range(n)]


def animation(fmt: str = "GIF", durations: list[int] = DURATIONS, size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    shots = frames(len(durations), size)
    shots[0].save(buffer, fmt, save_all=True, append_images=shots[1:], duration=durations, loop=0,
                  **({"lossless": True} if fmt == "WEBP" else {}))
    return buffer.getvalue()


ONE_PIXEL_FRAME = bytes.fromhex("21f904000a000000" "2c0000000001000100" "00" "02024401" "00")  # 100 ms, 1×1 at 0,0


def gif_of_pixels(frames: int, canvas: tuple[int, int] = (1, 1)) -> bytes:
    """A GIF of `frames` 1×1 frames on a `canvas`, written byte by byte (Pillow would merge identical frames)."""
    size = b"".join(side.to_bytes(2, "little") for side in canvas)
    return bytes.fromhex("474946383961") + size + bytes.fromhex("80" "0000" "000000" "ffffff") + \
        ONE_PIXEL_FRAME * frames + b";"


def clip_of(data: bytes, check: Callable[[int, tuple[int, int]], None] = lambda n, c: None, **caps: Any) -> Any:
    """decode_clip with generous caps unless told otherwise."""
    return decode_clip(data, **{"max_pixels": 10**6, "max_frames": 48, "max_seconds": 10, "max_fps": 12, **caps},
                       check=check)


def with_huge_frame(data: bytes, width: int, height: int) -> bytes:
    """`data` (a GIF) with one more frame whose descriptor is `width`×`height`: larger than the canvas the
    header declares, so only decoding it finds out."""
    descriptor = bytes.fromhex("2c00000000") + width.to_bytes(2, "little") + height.to_bytes(2, "little") + b"\0"
    return data[:-1] + bytes.fromhex("21f904000a000000") + descriptor + bytes.fromhex("0202440100") + b";"


def timings(data: bytes) -> list[int]:
    with Image.open(io.BytesIO(data)) as im:
        out = []
        for index in range(im.n_frames):
            im.seek(index)
            im.load()  # WebP knows a frame's duration once it is loaded
            out.append(im.info["duration"])
        return out


def upload(data: bytes, name: str = "clip.gif") -> list[Upload]:
    return [Upload(name, data), Upload("style.png", picture(40, 40))]


def refusal(fake: FakeDiscord) -> Callable[[Event], bool]:
    return lambda e: (e.content or "").startswith("⚠️")


class FrameGate:
    """Wraps a runner: holds the animation at its second frame until opened, so the test sees that edit."""

    def __init__(self) -> None:
        self.runner = engine_runner("cpu")
        self.opened = threading.Event()
        self.reports: list[Any] = []

    def __call__(self, job: Any, report: Callable[[Any], None], cancel: threading.Event) -> Any:
        def hold(progress: Any) -> None:
            self.reports.append(progress)
            report(progress)
            if isinstance(progress, ClipProgress) and progress.frame == 2:
                self.opened.wait(10)

        return self.runner(job, hold, cancel)


# ---------------------------------------------------------------------------------------- end to end

@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
async def test_animate_true_paints_every_frame_and_keeps_the_timing(fake_discord: FakeDiscord, run_bot,
                                                                    fmt: str) -> None:
    gate = FrameGate()
    async with run_bot(make_bot(runner=gate)):
        request = await fake_discord.send_message(fake_discord.alice, f"!stylize {ANIMATE} seed=3",
                                                  attachments=upload(animation(fmt), f"clip.{fmt.lower()}"))
        status = await status_of(fake_discord, request, 0)
        progress = await edit_of(fake_discord, status, "frame 2/3")
        gate.opened.set()
        reply = await fake_discord.wait_for(with_file, kind="message", timeout=30)
    assert "step 3/6" in progress.content or "step 4/6" in progress.content  # 2 steps + 2 per later frame
    [name] = reply.filenames
    assert name in ("stylized.webp", "stylized.gif") and reply.embeds[0]["image"]["url"] == f"attachment://{name}"
    painted = decoded(reply)
    assert painted.n_frames == 3 and painted.size == (64, 48)
    assert timings(reply.files[0].data) == DURATIONS
    assert "animate = true" in reply.embeds[0]["description"] and "animated" not in reply.content
    assert {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}["Animation"] == "3 frames, 0.6 s"
    assert {r.frame for r in gate.reports} == {1, 2, 3} and gate.reports[-1].step == gate.reports[-1].total == 6


async def test_without_animate_the_first_frame_is_painted_and_the_reply_says_how(fake_discord: FakeDiscord,
                                                                                 run_bot) -> None:
    async with run_bot(make_bot()):
        await fake_discord.send_message(fake_discord.alice, "!stylize steps=2 size=64 scales=1",
                                        attachments=upload(animation("PNG"), "clip.png"))
        reply = await fake_discord.wait_for(with_file, kind="message", timeout=30)
    assert reply.filenames == ["stylized.png"] and getattr(decoded(reply), "n_frames", 1) == 1
    assert "Add `animate=true` to paint every frame." in reply.content


async def test_a_roles_default_animates_and_animate_false_still_paints_one_frame(fake_discord: FakeDiscord,
                                                                                 run_bot) -> None:
    movers = fake_discord.add_role("Movers")
    mover = fake_discord.make_user("mover", roles=[movers])
    cfg = config(limits={"roles": [{"id": movers, "animate": True}]},
                 defaults={"steps": 2, "frame_steps": 2, "size": 64, "scales": 1})
    async with run_bot(make_bot(cfg)):
        await fake_discord.send_message(mover, "!stylize", attachments=upload(animation()))
        animated = await fake_discord.wait_for(with_file, kind="message", timeout=30)
        mark = fake_discord.mark()
        await fake_discord.send_message(mover, "!stylize animate=false", attachments=upload(animation()))
        still = await fake_discord.wait_for(with_file, kind="message", since=mark, timeout=30)
    assert decoded(animated).n_frames == 3 and "• **animate" not in animated.embeds[0]["description"]
    assert still.filenames == ["stylized.png"] and "animate=true" in still.content


async def test_an_animation_is_cancelled_between_steps(fake_discord: FakeDiscord, run_bot) -> None:
    gate = FrameGate()
    async with run_bot(make_bot(runner=gate)):
        request = await fake_discord.send_message(fake_discord.alice, f"!stylize {ANIMATE}",
                                                  attachments=upload(animation()))
        status = await status_of(fake_discord, request, 0)
        await edit_of(fake_discord, status, "frame 2/3")
        await fake_discord.send_message(fake_discord.alice, "!stylize cancel")
        await fake_discord.wait_for(lambda e: "Cancelled job" in (e.content or ""), kind="message")
        gate.opened.set()
        ended = await edit_of(fake_discord, status, "cancelled by")
    assert ended.content.startswith("🛑") and not any(e.files for e in fake_discord.events if e.kind == "message")
    assert max(r.frame for r in gate.reports) == 2  # stopped at the next step: frame 3 never started


async def test_an_animation_too_large_to_upload_says_so(fake_discord: FakeDiscord, run_bot) -> None:
    clip, style = upload(animation())
    fake_discord.attachment_size_limit = 2000
    async with run_bot(make_bot()):
        await fake_discord.send_interaction(fake_discord.alice, "stylize paint",
                                            {"content": clip, "style": style, "settings": ANIMATE})
        failed = await fake_discord.wait_for(lambda e: "sorry" in (e.content or ""), kind="message", timeout=30)
    assert re.search(r"failed: the animation is too large to upload here \([\d,]+ bytes, the limit is 2,000\) — "
                     r"try fewer frames or a smaller size\.", failed.content), failed.content


async def test_the_photo_is_shrunk_off_the_event_loop(fake_discord: FakeDiscord, run_bot,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The kept photo (up to keep_side) is shrunk to the job's size on a decoder thread: a LANCZOS resize of
    a large photo would stall every other user's messages."""
    from bot.inputs import images
    threads: list[threading.Thread] = []

    def shrink(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    real = images.shrink
    monkeypatch.setattr(images, "shrink", shrink)  # before the cog is loaded: it imports the name
    runner = FakeRunner()
    async with run_bot(make_bot(runner=runner)) as bot:
        await fake_discord.send_message(fake_discord.alice, "!stylize steps=2 size=64 scales=1",
                                        attachments=upload(picture(128, 96), "photo.png"))
        said = await fake_discord.wait_for(kind="message")
        jobs = await bot.backend.jobs()
        assert len(jobs) == 1, said.content
        [job] = jobs
        runner.release_all()
    assert job.content.size == (64, 48) and threads and threading.main_thread() not in threads


async def test_caps_refuse_before_anything_is_queued(fake_discord: FakeDiscord, run_bot) -> None:
    runner = FakeRunner()
    cfg = config(limits={"max_frames": 2, "max_work": 64 * 48 * 3})
    async with run_bot(make_bot(cfg, runner=runner)) as bot:
        await fake_discord.send_message(fake_discord.alice, f"!stylize {ANIMATE}", attachments=upload(animation()))
        frames_refused = await fake_discord.wait_for(kind="message")
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.alice, f"!stylize {ANIMATE}",
                                        attachments=upload(animation(durations=[100, 100])))
        work_refused = await fake_discord.wait_for(kind="message", since=mark)
        assert await bot.backend.jobs() == []
    assert frames_refused.content == ("⚠️ The photo: That animation has more frames than the 2 you may animate, "
                                      "even with frames faster than 12 per second merged — trim it.")
    # 64×48 px × (2 + 2) steps = 12,288 pixel-steps; the budget takes 3 steps at this size: 1 frame
    assert "2 frames of 64×48 with steps=2 and frame_steps=2 is 12,288 pixel-steps, over your budget of 9,216 — " \
           "1 frame would fit at these settings" in work_refused.content
    assert len(fake_discord.sent) == 2 and runner.ran == []  # two refusals, no status message, nothing ran


async def test_the_frame_cap_counts_the_frames_painted_once_fast_ones_are_merged(fake_discord: FakeDiscord,
                                                                                  run_bot) -> None:
    """A 25 fps clip of 6 frames is 2 frames at max_fps = 12: it fits max_frames = 2."""
    runner = FakeRunner()
    async with run_bot(make_bot(config(limits={"max_frames": 2}), runner=runner)) as bot:
        await fake_discord.send_message(fake_discord.alice, f"!stylize {ANIMATE}",
                                        attachments=upload(animation(durations=[40] * 6)))
        await fake_discord.wait_for(kind="message")
        [job] = await bot.backend.jobs()
        runner.release_all()
    assert job.durations_ms == (120, 120) and len(job.frames) == 2


async def test_caps_are_enforced_again_while_decoding(fake_discord: FakeDiscord, run_bot) -> None:
    """Headers lie: a frame larger than the canvas the header declares, and a length no header states."""
    runner = FakeRunner()
    async with run_bot(make_bot(config(limits={"max_seconds": 0.5}), runner=runner)) as bot:
        await fake_discord.send_message(fake_discord.alice, f"!stylize {ANIMATE}",
                                        attachments=upload(with_huge_frame(animation(durations=[100]), 4000, 4000)))
        huge = await fake_discord.wait_for(kind="message")
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.alice, f"!stylize {ANIMATE}", attachments=upload(animation()))
        long = await fake_discord.wait_for(kind="message", since=mark)
        assert await bot.backend.jobs() == []
    assert huge.content == ("⚠️ The photo: Frame 2 of that animation is 4000×4000, larger than its 64×48 canvas — "
                            "the file is damaged or crafted; save it again.")
    assert long.content == ("⚠️ The photo: That animation lasts more than 0.5 s (its first 3 frames take 0.6 s); "
                            "you may animate at most 0.5 s — trim it.")
    assert len(fake_discord.sent) == 2 and runner.ran == []


async def test_hostile_animations_get_a_clear_refusal(fake_discord: FakeDiscord, run_bot) -> None:
    clip = animation()
    async with run_bot(make_bot(runner=FakeRunner())) as bot:
        started = time.perf_counter()
        await fake_discord.send_message(fake_discord.alice, f"!stylize {ANIMATE}",
                                        attachments=upload(gif_of_pixels(10_000)))
        many = await fake_discord.wait_for(kind="message")
        many_took = time.perf_counter() - started
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.alice, f"!stylize {ANIMATE}",
                                        attachments=upload(clip[:len(clip) * 3 // 4]))
        truncated = await fake_discord.wait_for(kind="message", since=mark)
        assert await bot.backend.jobs() == []
    assert many.content == ("⚠️ The photo: That animation has 10,000 frames, so it lasts at least 200 s; you may "
                            "animate at most 10 s — trim it.")
    assert many_took < 5  # read from the header: no frame decoded (measured 0.03 s for the decode alone)
    assert truncated.content == ("⚠️ The photo: That image looks damaged or incomplete — save it again, or send a "
                                 "different one.")


# ------------------------------------------------------------------------------------------ the decoder

def test_decoder_keeps_the_relative_timing_of_every_format() -> None:
    for fmt in ("GIF", "PNG", "WEBP"):
        clip = clip_of(animation(fmt))
        assert clip.durations_ms == tuple(DURATIONS) and len(clip.frames) == 3, fmt
        assert {f.size for f in clip.frames} == {(64, 48)} and all(f.mode == "RGB" for f in clip.frames)


def test_fast_frames_are_merged_down_to_max_fps_keeping_the_duration() -> None:
    clip = clip_of(animation(durations=[40] * 6))
    assert clip.durations_ms == (120, 120)  # frames at 0 and 120 ms kept (83 ms apart at least); 240 ms in all
    slow = clip_of(animation("WEBP", durations=[10, 10, 10]))
    assert slow.durations_ms == (100, 100, 100)  # under 20 ms shows as 100 ms, as in browsers


def test_the_header_is_judged_before_any_frame_is_decoded() -> None:
    seen: list[tuple[int, tuple[int, int]]] = []

    def check(frames: int, canvas: tuple[int, int]) -> None:
        seen.append((frames, canvas))
        raise ImageError("no")

    with pytest.raises(ImageError, match="no"):
        clip_of(animation(), check)
    assert seen == [(1, (64, 48))]  # one painted frame at least: the frame count is known once they are merged
    with pytest.raises(ImageError, match="80×80, larger than its 64×48 canvas"):  # refused before it is decoded
        clip_of(with_huge_frame(animation(durations=[100]), 80, 80))


def test_more_frames_than_the_cap_are_refused_while_decoding_counting_merged_ones_once() -> None:
    assert clip_of(animation(durations=[40] * 6), max_frames=2).durations_ms == (120, 120)
    with pytest.raises(ImageError, match="more frames than the 1 you may animate, even with frames faster than 12 per"):
        clip_of(animation(durations=[40] * 6), max_frames=1)


def test_a_tiny_file_with_a_huge_canvas_is_refused_from_its_header() -> None:
    """48 frames of one pixel on a 6000×6000 canvas: 1 KB that took 11 s of CPU to decode (Pillow pastes every
    frame onto the whole canvas)."""
    data = gif_of_pixels(48, (6000, 6000))
    started = time.process_time()
    with pytest.raises(ImageError, match=r"48 frames of 6000×6000: 1,728 megapixels to decode, over the 320 I decode "
                                         r"for one animation \(8 frames of that size\) — send a smaller or shorter"):
        clip_of(data, max_pixels=40_000_000)
    assert len(data) < 2000 and time.process_time() - started < 0.5
    assert len(clip_of(gif_of_pixels(48, (1000, 1000)), max_pixels=40_000_000).frames) == 48  # 48 MP: decoded


def test_apng_and_webp_frames_declared_larger_than_their_canvas_never_decode_larger() -> None:
    """An APNG frame control past its canvas is refused as damaged; libwebp composites every WebP frame onto
    its canvas, so a frame header claiming 4000×4000 still gives canvas-sized frames."""
    import struct
    import zlib
    data = animation("PNG")
    at = data.index(b"fcTL", data.index(b"fcTL") + 4) + 4  # the second frame's control: number, width, height…
    body = data[at:at + 26]
    body = body[:4] + struct.pack(">II", 4000, 4000) + body[12:]
    chunk = b"fcTL" + body
    huge = data[:at - 4] + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[at + 30:]
    with pytest.raises(ImageError, match="damaged or incomplete"):
        clip_of(huge)
    data = bytearray(animation("WEBP"))
    at = data.index(b"ANMF", data.index(b"ANMF") + 4) + 8  # the second frame: x, y, width − 1, height − 1 (24 bits)
    data[at + 6:at + 12] = (3999).to_bytes(3, "little") * 2
    assert {f.size for f in clip_of(bytes(data)).frames} == {(64, 48)}


def test_an_apng_claiming_more_frames_than_it_holds_is_refused() -> None:
    import struct
    import zlib
    data = animation("PNG")
    at = data.index(b"acTL")
    chunk = b"acTL" + struct.pack(">II", 5, 0)
    lying = data[:at] + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[at + 4 + 8 + 4:]
    with pytest.raises(ImageError, match="damaged or incomplete"):
        clip_of(lying)


def test_motion_caps_say_what_would_fit() -> None:
    settings = Settings.parse({"size": 256, "steps": 100, "frame_steps": 50})
    with pytest.raises(ParamError, match=r"at 256×192 \(49,152 pixels\), over your cap of 40,000 pixels per frame "
                                         r"— ask for size=2\d\d or less"):
        Motion(max_frame_pixels=40_000).check(settings, 3, (400, 300))
    side = int(str(pytest.raises(ParamError, Motion(max_frame_pixels=40_000).check, settings, 3, (400, 300)).value)
               .split("size=")[1].split()[0])
    Motion(max_frame_pixels=40_000).check(Settings.parse({"size": side}, settings), 3, (400, 300))  # it fits
    work = 256 * 192 * (100 + 9 * 50)
    Motion(max_work=work).check(settings, 10, (400, 300))  # exactly the budget
    with pytest.raises(ParamError, match="10 frames would fit"):
        Motion(max_work=work).check(settings, 11, (400, 300))
    with pytest.raises(ParamError, match="^1 frame of 256×192 with steps=100 .* — even one frame is over it"):
        Motion(max_work=work // 10).check(settings, 1, (400, 300))  # the header's check: one frame at least


def test_memory_prediction_counts_the_frames() -> None:
    settings = Settings.parse({"size": 1024, "precision": "fp32"})  # over the loading peak
    still = predict_peak_bytes(settings, (4, 3), 1, "cpu")
    clip = predict_peak_bytes(settings, (4, 3), 1, "cpu", frames=48)
    assert still is not None and clip == still + (FRAME_BYTES * 48 + PAIR_BYTES) * 1024 * 768
    budget = (still + clip) / 2
    assert largest_size(settings, budget, (4, 3), 1, "cpu") >= 1024 > largest_size(settings, budget, (4, 3), 1, "cpu",
                                                                                    frames=48)


def test_roles_raise_the_animation_caps_and_may_animate_by_default() -> None:
    limits = Limits(max_frames=10, roles=(RoleLimit(1, max_frames=30, max_fps=24.0), RoleLimit(2, animate=True)))
    assert limits.caps_for([]).motion == Motion(max_frames=10) and not limits.caps_for([]).animate
    mine = limits.caps_for([1, 2])
    assert mine.motion == Motion(max_frames=30, max_fps=24.0) and mine.animate
    settings = Settings()
    assert role_default(settings, frozenset(), mine).animate
    assert not role_default(settings, frozenset({"animate"}), mine).animate  # the member said animate=false
    assert "an animated photo (`animate=true`) may last ≤ 10 s and have ≤ 30 frames once frames faster than 24 " \
           "per second are merged." in \
        help_embeds("!", settings, mine)[0].description


def test_an_animation_merged_into_one_frame_says_one_frame() -> None:
    clip = clip_of(animation(durations=[20, 20]))  # 50 fps: the second frame merges into the first
    settings = Settings.parse({"animate": True})
    job = Job(user_id=1, channel_id=2, guild_id=None, message_id=None, content=clip.frames[0], styles=(),
              settings=settings, frames=clip.frames, durations_ms=clip.durations_ms,
              result=Result(clip.frames[0], settings, "cpu", 1.0, 2, frames=clip.frames))
    fields = {f.name: f.value for f in result_embed(job, frozenset(), "stylized.webp").fields}
    assert fields["Animation"] == "1 frame, 0.04 s"
