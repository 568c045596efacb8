"""How many objective evaluations L-BFGS variants spend on one single-scale pass of our objective.

    uv run python bench/lbfgs_evals.py [--size 128] [--evals 200] [--pairs chelsea:starry_night ...]

Every variant starts from the photo with the same targets and weights (our defaults) and runs until it
has spent --evals evaluations of the objective (forward + backward; torch's state["func_evals"],
counted here by wrapping the closure, line-search trials included). Prints per variant: the worst
spike (largest loss evaluated / loss at the start), evaluations until the best loss so far first
reaches the baseline's final loss, the best loss after the budget and the first six losses evaluated.
Evaluation counts do not depend on the machine's load, unlike times (one torch thread: the CPU here
is shared).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import Settings  # noqa: E402
from engine.transfer import Targets, objective, to_tensor  # noqa: E402
from engine.vgg import load_vgg  # noqa: E402

IMAGES = {"chelsea": ROOT / "examples/chelsea.png", "starry_night": ROOT / "examples/starry_night.jpg",
          **{p.stem: p for p in (ROOT / "bench/images").glob("*.jpg")}}


def lbfgs(image: torch.Tensor, **options) -> torch.optim.LBFGS:
    return torch.optim.LBFGS([image], lr=1, history_size=100, tolerance_grad=-1, tolerance_change=-1, **options)


VARIANTS = {  # name: (optimizer options, steps with line search first, mean |move| of the first step or 0)
    "fixed step (now)": ({"max_iter": 1}, 0, 0),
    "strong Wolfe, max_iter=1, max_eval=10": ({"max_iter": 1, "max_eval": 10, "line_search_fn": "strong_wolfe"}, 0, 0),
    "strong Wolfe, one step() per 30 iterations": (
        {"max_iter": 30, "max_eval": 60, "line_search_fn": "strong_wolfe"}, 0, 0),
    "strong Wolfe for the first 3 steps, then fixed": (
        {"max_iter": 1, "max_eval": 10, "line_search_fn": "strong_wolfe"}, 3, 0),
    "fixed, first step scaled to a mean move of 1/255": ({"max_iter": 1}, 0, 1.0),
    "fixed, first step scaled to a mean move of 4/255": ({"max_iter": 1}, 0, 4.0),
    "fixed, first step scaled to a mean move of 16/255": ({"max_iter": 1}, 0, 16.0),
}


def trace(content: Image.Image, style: Image.Image, size: int, evals: int, options: dict,
          warmup: int, first_move: float) -> list[float]:
    """Loss at every evaluation until `evals` are spent."""
    settings = Settings()
    vgg = load_vgg("cpu")
    photo = to_tensor(content, size)
    targets = Targets(vgg, photo, [to_tensor(style, size)], torch.ones(1), settings.pooling)
    image = photo[None].clone(memory_format=torch.contiguous_format).requires_grad_(True)
    optimizer = lbfgs(image, **options)
    losses: list[float] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        total, _ = objective(vgg, image, targets, settings)
        total.backward()
        losses.append(total.item())
        return total

    steps = 0
    if first_move:  # torch's first step is lr/‖g‖₁ · g: its L1 norm is lr
        optimizer.param_groups[0]["lr"] = first_move * image.numel()
    while len(losses) < evals:
        if steps == warmup and warmup:
            optimizer.param_groups[0].update(line_search_fn=None, max_eval=1)
        optimizer.step(closure)
        optimizer.param_groups[0]["lr"] = 1
        steps += 1
    return losses[:evals]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--evals", type=int, default=200)
    parser.add_argument("--pairs", nargs="+", default=["chelsea:starry_night", "colva_beach:shipwreck"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    for pair in args.pairs:
        photo, painting = (Image.open(IMAGES[name]) for name in pair.split(":"))
        print(f"\n{pair} at {args.size} px, {args.evals} evaluations")
        print("| variant | worst spike (× start) | evals to the baseline's final loss | best loss after budget | "
              "first losses |")
        print("|---|---|---|---|---|")
        target = None
        for name, (options, warmup, first_move) in VARIANTS.items():
            losses = trace(photo, painting, args.size, args.evals, options, warmup, first_move)
            best = [min(losses[: i + 1]) for i in range(len(losses))]
            target = best[-1] if target is None else target
            reached = next((i + 1 for i, b in enumerate(best) if b <= target), None)
            print(f"| {name} | {max(losses) / losses[0]:.3g} | {reached or 'not reached'} | {best[-1]:.4g} | "
                  + " ".join(f"{x:.2g}" for x in losses[:6]) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
