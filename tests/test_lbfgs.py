"""engine.lbfgs: torch's L-BFGS step for step, without a host sync per step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.profiler import ProfilerActivity, profile

from engine import Progress, Settings, stylize
from engine.lbfgs import LBFGS
from engine.transfer import Losses

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _torch_and_ours(f: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, history: int, first_lr: float,
                    steps: int) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.optim.LBFGS, LBFGS]:
    theirs, ours = start.clone().requires_grad_(True), start.clone().requires_grad_(True)
    reference = torch.optim.LBFGS([theirs], lr=first_lr, max_iter=1, history_size=history, tolerance_grad=-1,
                                  tolerance_change=-1)
    optimizer = LBFGS(ours, history, first_lr)

    def closure(x: torch.Tensor) -> Callable[[], torch.Tensor]:
        def evaluate() -> torch.Tensor:
            x.grad = None
            loss = f(x)
            loss.backward()
            return loss
        return evaluate

    path_theirs, path_ours = [], []
    for _ in range(steps):
        reference.step(closure(theirs))
        reference.param_groups[0]["lr"] = 1  # the engine's rule: only the first step is scaled
        optimizer.step(closure(ours))
        path_theirs.append(theirs.detach().clone())
        path_ours.append(ours.detach().clone())
    return path_theirs, path_ours, reference, optimizer


@pytest.mark.parametrize("history", [3, 10])
def test_steps_are_torchs_on_a_convex_problem(history: int) -> None:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(40, 40, generator=generator)
    a = a @ a.T / 40 + 0.1 * torch.eye(40)
    b = torch.randn(40, generator=generator)
    theirs, ours, _, optimizer = _torch_and_ours(lambda x: 0.5 * x @ a @ x - b @ x + 0.1 * x.pow(4).sum(),
                                                  torch.zeros(40), history, 7.0, 30)
    assert all(torch.allclose(t, o, atol=1e-5) for t, o in zip(theirs, ours))
    assert optimizer.evals == 30


def test_pairs_without_curvature_are_dropped_as_torch_drops_them() -> None:
    """Near a maximum of cos, yᵀs < 0: torch keeps no pair for the first steps, then fills its ring and
    wraps; ours must pick the same pairs (the spare slot takes the rejected ones). In float64: on this
    non-convex path the two recursions' float32 rounding (their order of sums differs, and differs between
    CPUs) grew past the tolerance within 12 steps on another machine (an H200 host, torch 2.11)."""
    start = torch.rand(8, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.2
    theirs, ours, reference, optimizer = _torch_and_ours(lambda x: x.cos().sum() + 0.05 * x.square().sum(),
                                                          start, 3, 0.5, 12)
    assert optimizer.rho[-1] < 0  # a pair was rejected
    assert len(reference.state[reference.param_groups[0]["params"][0]]["old_dirs"]) == 3  # the ring is full
    assert all(torch.allclose(t, o, atol=1e-3, rtol=1e-4) for t, o in zip(theirs, ours))


def _host_syncs(steps: int) -> int:
    """Device→host copies (`aten::_local_scalar_dense`, one per .item()) in a whole stylize call."""
    photo = Image.open(EXAMPLES / "chelsea.png").convert("RGB").resize((48, 32))
    painting = Image.open(EXAMPLES / "starry_night.jpg").convert("RGB").resize((48, 32))
    settings = Settings.parse({"size": 64, "steps": steps, "scales": 1, "seed": 1})
    seen: list[Progress] = []
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        result = stylize(photo, [painting], settings, device="cpu", progress=seen.append)
    assert seen[-1].losses == result.losses  # read (once, all of them) when looked at
    return sum(event.count for event in prof.key_averages() if event.key == "aten::_local_scalar_dense")


def test_a_step_makes_no_host_sync() -> None:
    """torch.optim.LBFGS made ~46 a step here (one per dot product and loss read), ~140 at 512 px on a GPU.
    What is left is per job: the passes' set-up and the result's losses."""
    assert _host_syncs(9) == _host_syncs(3)


def test_progress_with_unread_losses_travels_as_json() -> None:
    """The Celery worker stores progress as JSON: the device-held losses must be read on the way."""
    pytest.importorskip("celery", reason="the Celery worker's module needs celery")
    from bot.jobs.worker import progress_from, progress_json

    progress = Progress(3, 10, 1, 2, (64, 43), Losses({"style": torch.tensor(0.5), "total": torch.tensor(2.0)}), 1.5)
    back = progress_from(progress_json(progress))
    assert back is not None and back.losses == {"style": 0.5, "total": 2.0} and back.size == (64, 43)
