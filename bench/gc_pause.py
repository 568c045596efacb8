"""How long the event loop stalls while the bot takes a 230 KB GIF of 10,000 frames, with and without gc.freeze().

    .venv/bin/python bench/gc_pause.py [--uploads 5]

Runs the real bot against the Discord stand-in (tests/discord_standin.py), once as it starts (its heap
frozen by bot.app.freeze_heap) and once with gc.unfreeze() right after start-up (the bot before the
freeze), each in a fresh process. Each run sends `!stylize animate=true` with the GIF (1×1 frames on a
64×64 canvas, 23 bytes each: counting its frames allocates a burst of short-lived objects) `--uploads`
times, and reports per upload the longest stall of the event loop (a task that sleeps 1 ms and measures
how late it wakes) and the garbage collections of the oldest generation (gc.callbacks) while it ran; then
the stall while a full collection runs in a decoder thread (what the review saw during frame counting:
whether an upload sets one off depends on what the heap went through before, so it is forced here).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

FRAMES = 10_000


def many_frames_gif(frames: int = FRAMES, side: int = 64) -> bytes:
    """A GIF of `frames` 1×1 frames, 20 ms each: 23 bytes a frame (control, descriptor, 1-pixel LZW data)."""
    head = b"GIF89a" + struct.pack("<HHBBB", side, side, 0x80, 0, 0) + bytes([0, 0, 0, 255, 255, 255])
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = (b"\x21\xf9\x04\x00\x02\x00\x00\x00" + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
             + b"\x02\x02\x44\x01\x00")
    return head + loop + frame * frames + b"\x3b"


class Watch:
    """The event loop's longest stall, and the oldest generation's collections, since the last reset."""

    def __init__(self) -> None:
        self.stall = 0.0
        self.collections: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.collections.append(time.perf_counter() - self._started)

    def reset(self) -> None:
        self.stall, self.collections = 0.0, []

    async def run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            self.stall = max(self.stall, time.perf_counter() - before - 0.001)


async def uploads(count: int, frozen: bool) -> dict[str, Any]:
    from bot import app
    from bot.config import parse_config
    from discord_standin import FakeDiscord, Upload, run_bot
    from test_bot_e2e import picture

    if not frozen:
        app.freeze_heap = lambda: None  # the bot as it was
    config = parse_config({"token": "fake-token", "device": "cpu", "cooldown": {"commands": 100}})
    gif = many_frames_gif()
    watch = Watch()
    results = []
    async with FakeDiscord() as fake:
        async with run_bot(app.StylizeBot(config, guild_ready_timeout=0.05)):  # the default backend, as deployed
            frozen_objects = gc.get_freeze_count()
            ticker = asyncio.create_task(watch.run())
            for _ in range(count):
                await asyncio.sleep(0.2)
                watch.reset()
                request = await fake.send_message(fake.alice, "!stylize animate=true", attachments=[
                    Upload("many.gif", gif, content_type="image/gif"), Upload("style.png", picture(40, 40))])
                answer = await fake.wait_for(lambda e: (e.reference or {}).get("message_id") == request["id"],
                                             kind="message", timeout=60)
                results.append({"stall_ms": watch.stall * 1e3, "gen2": [c * 1e3 for c in watch.collections],
                                "answer": (answer.content or "")[:90]})
            # A full collection set off in a decoder thread, as frame counting did in the review: the loop
            # waits for it (the collector holds the GIL), whatever the thread was doing.
            await asyncio.sleep(0.2)
            watch.reset()
            started = time.perf_counter()
            await asyncio.get_running_loop().run_in_executor(None, gc.collect)
            full = time.perf_counter() - started
            await asyncio.sleep(0.01)
            ticker.cancel()
    return {"gif_bytes": len(gif), "frozen_objects": frozen_objects, "full_collection_ms": full * 1e3,
            "full_collection_stall_ms": watch.stall * 1e3, "tracked": len(gc.get_objects()), "uploads": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--child", choices=("frozen", "unfrozen"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(uploads(args.uploads, args.child == "frozen"))))
        return
    for child in ("unfrozen", "frozen"):
        out = subprocess.run([sys.executable, __file__, "--uploads", str(args.uploads), "--child", child],
                             check=True, capture_output=True, text=True).stdout
        run = json.loads(out.strip().splitlines()[-1])
        print(f"{child}: GIF {run['gif_bytes'] / 1e3:.0f} KB, {FRAMES:,} frames; objects frozen "
              f"{run['frozen_objects']:,}")
        for n, upload in enumerate(run["uploads"], start=1):
            gen2 = ", ".join(f"{ms:.0f}" for ms in upload["gen2"]) or "none"
            print(f"  upload {n}: longest loop stall {upload['stall_ms']:.0f} ms; full collections (ms): {gen2}")
        print(f"  a full collection in a decoder thread after the uploads: {run['full_collection_ms']:.0f} ms, "
              f"longest loop stall {run['full_collection_stall_ms']:.0f} ms ({run['tracked']:,} objects tracked, "
              "frozen ones included)")
        print(f"  answer: {run['uploads'][0]['answer']}")


if __name__ == "__main__":
    main()
