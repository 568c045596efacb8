"""Peak host memory (RSS) of a job over a grid of settings, each measured in a fresh process.

    nice uv run python bench/memory.py [--out bench/out/memory.json] [--only NAME…]

Every point runs `stylize` on the CPU in its own subprocess and records the process's peak resident
set while VGG-19 is loaded and, after the heap is trimmed (malloc_trim: else a job reuses freed heap
unseen and small jobs look free) and that peak is reset (/proc/self/clear_refs), the job's own peak
(VmHWM), with the output's and the styles' pixel counts and L-BFGS's history as it was used. Results are appended to a
JSON file as they come, so an interrupted sweep resumes where it stopped. `--fit` prints the least
squares fit of the model in engine/memory.py (fixed + bytes per output pixel + bytes per style pixel
+ the L-BFGS history's vectors) and each point's error. CUDA is not measured here (no GPU).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

# name: settings on top of "steps=3 scales=1" (a step's peak), plus aspect (w/h) and the number of styles;
# style_scale stretches the styles' long side. Sizes below ~400 px peak under the weights' loading anyway.
GRID: dict[str, dict] = {
    **{f"lbfgs-{s}": {"size": s} for s in (256, 384, 512, 640)},
    "styles3-384": {"size": 384, "styles": 3}, "style_scale2-384": {"size": 384, "style_scale": 2.0},
    "history-192": {"size": 192, "steps": 106}, "adam-512": {"size": 512, "optimizer": "adam"},
    "wide2-512": {"size": 512, "aspect": 2.0}, "lbfgs-768": {"size": 768}, "styles2-512": {"size": 512, "styles": 2},
    "bf16-384": {"size": 384, "precision": "bf16"}, "lbfgs-1024": {"size": 1024},
}


def measure(point: dict) -> dict:
    """Run one job in this process; its peak RSS and what it held."""
    import torch
    from PIL import Image

    from engine import Settings, load_vgg, stylize
    from engine.vgg import depth_for
    from engine.lbfgs import history_size
    from engine.transfer import fit, style_side

    aspect = point.pop("aspect", 1.0)
    n_styles = point.pop("styles", 1)
    settings = Settings.parse({"steps": 3, "scales": 1, "seed": 0, **point})
    photo = Image.open(ROOT / "examples/astronaut.jpg").convert("RGB")  # square, 512 px
    side = 1024
    width, height = (side, round(side / aspect)) if aspect >= 1 else (round(side * aspect), side)
    photo = photo.resize((width, height))
    styles = [Image.open(ROOT / name).convert("RGB") for name in
              ("examples/starry_night.jpg", "examples/the_scream.jpg", "examples/chelsea.png")][:n_styles]
    rss_before = _status("VmRSS")
    load_vgg("cpu", None, depth_for(settings.content_layers + settings.style_layers))  # cached: stylize reuses it
    load_peak = _status("VmHWM")
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed heap resident; a job would reuse it unseen
    rss_loaded = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS from here on: the job's own peak
    start = (time.perf_counter(), time.process_time())
    result = stylize(photo, styles, settings, device="cpu")
    out_w, out_h = result.image.size
    numel = 3 * out_w * out_h
    style_pixels = [fit(s.size, style_side(s.size, settings.size, settings.style_scale)) for s in styles]
    return {"settings": {k: getattr(result.settings, k) for k in
                         ("size", "steps", "scales", "style_scale", "optimizer", "precision")},
            "torch": torch.__version__, "out": [out_w, out_h], "out_pixels": out_w * out_h,
            "style_pixels": sum(w * h for w, h in style_pixels), "styles": n_styles,
            "history_pairs": history_size(numel, settings.steps) if settings.optimizer == "lbfgs" else 0,
            "rss_before": rss_before, "load_peak": load_peak, "rss_loaded": rss_loaded, "job_peak": _status("VmHWM"),
            "wall": time.perf_counter() - start[0], "cpu": time.process_time() - start[1],
            "threads": torch.get_num_threads()}


def _status(key: str) -> int:
    """A line of /proc/self/status in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/memory.json")
    parser.add_argument("--only", nargs="*", default=None, help="names from the grid (default: all)")
    parser.add_argument("--fit", action="store_true", help="fit the model to the saved results and print it")
    args = parser.parse_args()
    done = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.fit:
        return fit_model(done)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name, point in GRID.items():
        if name in done or (args.only and name not in args.only):
            continue
        run = subprocess.run([sys.executable, __file__, "--worker", json.dumps(point)],
                             capture_output=True, text=True, check=False)
        if run.returncode != 0:
            print(f"{name}: failed\n{run.stderr[-2000:]}", flush=True)
            continue
        done[name] = {**json.loads(run.stdout.strip().splitlines()[-1]), "load": os.getloadavg()[0]}
        args.out.write_text(json.dumps(done, indent=1))
        r = done[name]
        print(f"{name}: {r['out']} job peak {r['job_peak'] / 2**20:.0f} MiB, loaded {r['rss_loaded'] / 2**20:.0f}, "
              f"load peak {r['load_peak'] / 2**20:.0f}, before {r['rss_before'] / 2**20:.0f} "
              f"wall {r['wall']:.1f} s cpu {r['cpu']:.1f} s load {r['load']:.2f}", flush=True)


def fit_model(done: dict) -> None:
    """Least squares of each job's own peak (above the loaded model), less its optimiser state (known
    bytes: `state` is 1 by construction, checked by the history points' errors), on the other terms."""
    import numpy as np

    from engine.memory import features

    names = list(done)
    x = np.array([features(done[n]) for n in names], dtype=float)
    y = np.array([done[n]["job_peak"] - done[n]["rss_loaded"] for n in names], dtype=float)
    coef, *_ = np.linalg.lstsq(x[:, :4], y - x[:, 4], rcond=None)
    coef = np.append(coef, 1.0)
    loaded = float(np.median([done[n]["rss_loaded"] for n in names]))
    load_peak = max(done[n]["load_peak"] for n in names)
    print(f"load_peak={load_peak:.4g} loaded={loaded:.4g} per_job={coef[0]:.4g} fp32 px={coef[1]:.4g} "
          f"bf16 px={coef[2]:.4g} style px={coef[3]:.4g} state={coef[4]:.4g}")
    for name, row, job, point in zip(names, x, y, (done[n] for n in names)):
        fitted = float(np.dot(row, coef))
        print(f"{name:>20} {point['out']} job {job / 2**20:6.0f} MiB fit {fitted / 2**20:6.0f} MiB "
              f"({(fitted - job) / 2**20:+5.0f} MiB; process {(point['rss_loaded'] + job) / 2**20:5.0f} MiB)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(measure(json.loads(sys.argv[2]))))
    else:
        main()
