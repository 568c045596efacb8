"""Does a better starting picture save evaluations? init=content against `--init PICTURE` (e.g. a feed-forward
network's sketch of the same photo and painting), scored every 10 steps with bench/yardstick.py.

    nice uv run python bench/init_from.py CONTENT STYLE --init SKETCH.png [--size 256] [--steps 100]

Both runs are one pass (scales=1) of L-BFGS with one evaluation per step, same seed. Prints, for each
run, the relative content and style distances every 10 steps, and the first step at which the other
start's run is at least as good as init=content's final picture on both distances.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from engine import Settings, stylize  # noqa: E402
from yardstick import Yardstick  # noqa: E402

EVERY = 10


def run(content: Image.Image, style: Image.Image, settings: Settings, init: Image.Image | None
        ) -> tuple[list[tuple[int, Image.Image]], float]:
    shots: list[tuple[int, Image.Image]] = []
    start = time.process_time()
    result = stylize(content, [style], settings, init_image=init, device="cpu", preview_every=EVERY,
                     progress=lambda p: p.preview is not None and shots.append((p.step, p.preview)))
    shots[-1] = (result.steps, result.image)
    return shots, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("content", type=Path)
    parser.add_argument("style", type=Path)
    parser.add_argument("--init", type=Path, required=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    content, style = Image.open(args.content).convert("RGB"), Image.open(args.style).convert("RGB")
    settings = Settings.parse({"size": args.size, "steps": args.steps, "scales": 1, "seed": 0,
                               "precision": "fp32"})
    yardstick = Yardstick(content, style, args.size)
    runs = {"init=content": run(content, style, settings, None),
            f"init={args.init.name}": run(content, style, settings, Image.open(args.init).convert("RGB"))}
    scored = {name: [(step, yardstick(image).relative) for step, image in shots] for name, (shots, _) in runs.items()}
    goal = scored["init=content"][-1][1]
    for name, points in scored.items():
        reached = next((step for step, d in points if d.at_least_as_good_as(goal)), None)
        print(f"{name}: CPU {runs[name][1]:.0f} s; reaches init=content's step-{args.steps} picture at step "
              f"{reached if reached is not None else 'never'}")
        print("  step, relative content, relative style: "
              + "; ".join(f"{step} {d.content:.4f} {d.style:.4f}" for step, d in points))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
