"""Per-step CPU time without a mask: median over runs of the mean step time of 20 steps at 256 px.

    nice uv run python scripts/bench_step.py [RUNS]            # this checkout
    PYTHONPATH=/path/to/other/checkout uv run python scripts/bench_step.py   # another commit's engine

Each run is one `stylize` call (L-BFGS, one pass, content start) timed from its 1st to its last step's
progress report, so loading the model and the targets is left out. Only the public API is used, so the
script times older commits too. Not a test: timings on a shared CPU need interleaving and medians.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from PIL import Image

from engine import Progress, Settings, stylize

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STEPS = 20


def per_step(content: Image.Image, style: Image.Image) -> float:
    times: list[float] = []

    def seen(progress: Progress) -> None:
        times.append(progress.elapsed)

    stylize(content, [style], Settings.parse({"size": 256, "steps": STEPS + 1, "scales": 1, "seed": 1}),
            device="cpu", progress=seen)
    return (times[-1] - times[0]) / STEPS


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    content, style = Image.open(EXAMPLES / "chelsea.png"), Image.open(EXAMPLES / "starry_night.jpg")
    results = [per_step(content, style) for _ in range(runs)]
    print(" ".join(f"{t:.4f}" for t in results), f"median {statistics.median(results):.4f} s/step")
