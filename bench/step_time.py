"""Per-step time without a mask: median over runs of the mean step time of 20 steps at 256 px, as wall
time and as this process's CPU time (less disturbed by other work on a shared machine).

    nice uv run python bench/step_time.py [RUNS]            # this checkout
    PYTHONPATH=/path/to/other/checkout uv run python bench/step_time.py   # another commit's engine

Each run is one `stylize` call (L-BFGS, one pass, content start) timed from its 1st to its last step's
progress report, so loading the model and the targets is left out. Only the public API is used, so the
script times older commits too. Not a test: timings on a shared CPU need interleaving and medians.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from PIL import Image

from engine import Progress, Settings, stylize

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STEPS = 20


def per_step(content: Image.Image, style: Image.Image) -> tuple[float, float]:
    """(wall, CPU) seconds per step."""
    times: list[tuple[float, float]] = []

    def seen(progress: Progress) -> None:
        times.append((time.perf_counter(), time.process_time()))

    stylize(content, [style], Settings.parse({"size": 256, "steps": STEPS + 1, "scales": 1, "seed": 1}),
            device="cpu", progress=seen)
    return (times[-1][0] - times[0][0]) / STEPS, (times[-1][1] - times[0][1]) / STEPS


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    content, style = Image.open(EXAMPLES / "chelsea.png"), Image.open(EXAMPLES / "starry_night.jpg")
    results = [per_step(content, style) for _ in range(runs)]
    wall, cpu = zip(*results)
    print("wall", " ".join(f"{w:.4f}" for w in wall), "cpu", " ".join(f"{c:.4f}" for c in cpu),
          f"median wall {statistics.median(wall):.4f} cpu {statistics.median(cpu):.4f} s/step")
