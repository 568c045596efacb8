"""engine.lbfgs: torch's L-BFGS step for step, without a host sync per step."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

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
    optimizer = LBFGS([ours], history, first_lr)

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
    assert optimizer.rho[0, -1] < 0  # a pair was rejected
    assert len(reference.state[reference.param_groups[0]["params"][0]]["old_dirs"]) == 3  # the ring is full
    assert all(torch.allclose(t, o, atol=1e-3, rtol=1e-4) for t, o in zip(theirs, ours))


def _quadratic(seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(8, 8, generator=generator, dtype=torch.float64)
    a = a @ a.T / 8 + 0.1 * torch.eye(8, dtype=torch.float64)
    b = torch.randn(8, generator=generator, dtype=torch.float64)
    return lambda x: 0.5 * x @ a @ x - b @ x + 0.1 * x.pow(4).sum()


def _descend(optimizer: LBFGS, objectives: list[Callable[[torch.Tensor], torch.Tensor]], steps: int
             ) -> list[list[torch.Tensor]]:
    """`steps` steps of `optimizer` on its pictures, the i-th picture's objective `objectives[i]` (one
    backward of their sum sets each picture's own gradient, as a batch's evaluation does); each step's
    pictures."""
    path = []
    for _ in range(steps):
        def evaluate() -> torch.Tensor:
            for picture in optimizer.pictures:
                picture.grad = None
            loss = sum(f(x) for f, x in zip(objectives, optimizer.pictures))
            loss.backward()
            return loss
        optimizer.step(evaluate)
        path.append([x.detach().clone() for x in optimizer.pictures])
    return path


def test_a_batch_steps_each_picture_as_if_it_were_alone() -> None:
    """Three pictures in one optimiser, each its own problem — two convex, one rejecting pairs (near a
    maximum of cos) — take the steps three optimisers of one picture take, also after the middle one left
    the batch (its state dropped, the others' kept). In float64: only the summation order differs."""
    objectives = [_quadratic(0), lambda x: x.cos().sum() + 0.05 * x.square().sum(), _quadratic(2)]
    starts = [torch.rand(8, generator=torch.Generator().manual_seed(k), dtype=torch.float64) * 0.2
              for k in range(3)]
    alone = [_descend(LBFGS([start.clone().requires_grad_(True)], 3, 0.5), [f], 14)
             for f, start in zip(objectives, starts)]
    batch = LBFGS([start.clone().requires_grad_(True) for start in starts], 3, 0.5)
    before = _descend(batch, objectives, 6)
    assert batch.rho[1, -1] < 0 and (batch.rho[[0, 2], -1] == 0).all()  # only the middle one rejected a pair
    batch.keep([0, 2])
    after = _descend(batch, [objectives[0], objectives[2]], 8)
    for k in range(3):
        assert all(torch.allclose(step[k], alone[k][n][0], atol=1e-9) for n, step in enumerate(before))
    for k, picture in enumerate([0, 2]):
        assert all(torch.allclose(step[k], alone[picture][6 + n][0], atol=1e-9) for n, step in enumerate(after))
    assert batch.evals == 14 and len(batch.pictures) == 2


VIEWS = {"aten::view", "aten::view_as", "aten::reshape", "aten::_reshape_alias", "aten::select", "aten::slice",
         "aten::unbind", "aten::flatten", "aten::unsqueeze", "aten::transpose", "aten::expand", "aten::as_strided"}


def _operations_of_a_step(pictures: int) -> Counter[str]:
    """The operations one L-BFGS step calls (not those they call in turn), views left out: on a GPU each is
    about one kernel launch; a view launches none."""
    objective = _quadratic(0)
    batch = LBFGS([torch.rand(8, dtype=torch.float64).requires_grad_(True) for _ in range(pictures)], 4, 0.5)
    _descend(batch, [objective] * pictures, 6)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with record_function("the step"):
            batch.step(lambda: None)  # the gradients of the last evaluation are still set
    return Counter(event.name for event in prof.events()
                   if event.cpu_parent is not None and event.cpu_parent.name == "the step"
                   and event.name not in VIEWS)


def test_a_step_is_the_same_operations_for_one_picture_as_for_four() -> None:
    """torch's L-BFGS (and this one before batches) launched its ~75 operations a step once per job: a
    batch of 16 cost the host 16 times the launches, and batching gained nothing on an H200."""
    one, four = _operations_of_a_step(1), _operations_of_a_step(4)
    assert one == four and sum(one.values()) > 40


class _Recorder(TorchDispatchMode):
    """Every operation run inside it, with its tensors named by what they are — a tensor of `known` (the
    optimiser's state, the pictures and their gradients: by name, offset, shape and strides), or the output
    of an earlier operation recorded here — and every other argument (a Python number baked into a CUDA graph
    at capture) as it is. Two steps with the same record do the same work on the same memory: a CUDA graph
    captured from one replays the other."""

    def __init__(self, known: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.known = {tensor.untyped_storage().data_ptr(): name for name, tensor in known.items()}
        self.made: dict[int, int] = {}
        self.record: list[tuple[object, ...]] = []

    def name(self, value: object) -> object:
        if not isinstance(value, torch.Tensor):
            return value
        where = value.untyped_storage().data_ptr()
        owner = self.known.get(where, f"output {self.made[where]}" if where in self.made else "unknown")
        return owner, value.storage_offset(), tuple(value.shape), value.stride(), value.dtype

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        self.record.append((str(func), tree_map(self.name, args), tree_map(self.name, kwargs or {})))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.untyped_storage().data_ptr() not in self.known:
                self.made[tensor.untyped_storage().data_ptr()] = len(self.record)
        return out


def _record_of_steps(static: bool, steps: tuple[int, int]) -> list[list[tuple[object, ...]]]:
    """The records of two steps (numbered from 1) of a two-picture batch on convex problems."""
    objectives = [_quadratic(0), _quadratic(1)]
    batch = LBFGS([torch.rand(8, dtype=torch.float64).requires_grad_(True) for _ in objectives], 4, 0.5,
                  static=static)
    records = []
    for number in range(1, max(steps) + 1):
        for picture in batch.pictures:
            picture.grad = None
        sum(f(x) for f, x in zip(objectives, batch.pictures)).backward()
        known = {name: getattr(batch, name) for name in ("pairs", "sy", "yy", "rho", "age", "slot", "gamma",
                                                         "clock", "rows", "prev_grad", "last_move")}
        known |= {f"picture {k}": p for k, p in enumerate(batch.pictures)}
        known |= {f"gradient {k}": p.grad for k, p in enumerate(batch.pictures)}
        with _Recorder(known) as recorder:
            batch.step(lambda: None)  # the gradients are set
        if number in steps:
            records.append(recorder.record)
    return records


def test_a_static_step_can_be_replayed_as_a_cuda_graph() -> None:
    """On CUDA the update after the second step is a graph captured once (engine.lbfgs, static): every later
    step must be the same operations on the same tensors with the same numbers. Proved here on the CPU by
    recording steps 3 and 7 of a 4-pair history (filling it, then wrapping around); the growing history of
    the eager path fails the same comparison (its matmuls widen as slots fill, its ages are Python ints)."""
    third, seventh = _record_of_steps(True, (3, 7))
    assert third == seventh and len(third) > 40
    assert all("unknown" not in repr(operation) for operation in third)
    growing = _record_of_steps(False, (3, 4))
    assert growing[0] != growing[1]


def test_static_steps_are_the_growing_historys_steps() -> None:
    """Reading empty slots changes nothing but the order of float sums."""
    objectives = [_quadratic(0), lambda x: x.cos().sum() + 0.05 * x.square().sum()]
    starts = [torch.rand(8, generator=torch.Generator().manual_seed(k), dtype=torch.float64) * 0.2 for k in (0, 1)]
    paths = [_descend(LBFGS([start.clone().requires_grad_(True) for start in starts], 3, 0.5, static=static),
                      objectives, 12) for static in (False, True)]
    assert all(torch.allclose(a, b, atol=1e-9) for one, other in zip(*paths) for a, b in zip(one, other))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_captured_update_takes_the_cpus_steps() -> None:
    """On a GPU: the static optimiser's update, captured at the third step and replayed after, moves the
    pictures as the same optimiser does on the CPU (where nothing is captured) — the trace test above says
    the steps are the same operations; this says CUDA's replay agrees."""
    objectives = [_quadratic(0), _quadratic(1)]
    paths = []
    for device in ("cpu", "cuda"):
        pictures = [torch.full((8,), 0.1, dtype=torch.float64, device=device).requires_grad_(True) for _ in objectives]
        grads = [torch.zeros_like(picture) for picture in pictures]
        for picture, grad in zip(pictures, grads):
            picture.grad = grad  # the same tensors every step, as under the objective's CUDA graph
        batch = LBFGS(pictures, 4, 0.5, static=True)

        def evaluate() -> None:
            for picture, grad, f in zip(pictures, grads, objectives):
                grad.copy_(torch.autograd.grad(f(picture.cpu()), picture)[0])  # the objective on the CPU

        path = []
        for _ in range(12):
            batch.step(evaluate)
            path.append([picture.detach().cpu().clone() for picture in pictures])
        paths.append(path)
    assert batch.graph is not None  # the CUDA run captured its update
    assert all(torch.allclose(a, b, atol=1e-9) for one, other in zip(*paths) for a, b in zip(one, other))


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
