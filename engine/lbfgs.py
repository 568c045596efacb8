"""L-BFGS for a batch of pictures, each its own problem, whose every step stays on the device: no `.item()`,
no Python branch on a tensor's value, and the same kernels for one picture as for sixteen.

Per picture, the same method as `torch.optim.LBFGS(max_iter=1, line_search_fn=None)` with its tolerances
off — one objective evaluation per step, a fixed step of 1 along the two-loop direction, a curvature pair
kept only when yᵀs > 1e-10, H₀ = γI with γ = yᵀs / yᵀy of the last pair kept — but torch's version turns
every dot product into a Python float (~140 host syncs a step at 512 px on a GPU, which then idles between
them) and handles one problem per optimiser. Here each picture's history is a (m+1, 2, n) ring of (s, y)
rows, stacked over the batch, and the two-loop recursion is rewritten in the Gram matrices of those rows
(sᵢᵀyⱼ, yᵢᵀyⱼ, kept up to date one row and column a step): its two sequential sweeps become two m×m
triangular solves, so a step is two batched matmuls over the histories plus a few small batched ops,
whatever m and however many pictures — the same arithmetic, reordered (the compact form of Byrd, Nocedal
& Schnabel 1994). Whether a pair is kept is decided on the device too, picture by picture: a rejected pair
is written to a spare slot that nothing reads. The loss is never read here.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Callable, TypeVar

import torch
from torch import Tensor

CURVATURE_MIN = 1e-10  # as torch.optim.LBFGS: a pair with yᵀs at or below this is not kept
HISTORY_BYTES = 1 << 30  # cap on one picture's stored curvature pairs, so huge outputs still fit
T = TypeVar("T")


def history_size(numel: int, steps: int) -> int:
    """Curvature pairs kept in a pass of `steps` steps on `numel` floats: at most HISTORY_BYTES of them
    (but at least 5) and 100, and no more than the pass makes (one a step after the first)."""
    return max(1, min(steps - 1, max(5, min(100, HISTORY_BYTES // (2 * numel * 4)))))


class LBFGS:
    """Minimise each picture of `pictures` (tensors of one shape) over its own objective, in place.

    `step(closure)` calls the closure once — it sets every picture's .grad (its own objective's gradient:
    a batch's summed loss gives each picture exactly that) — then moves every picture. The first step
    moves along −g by `first_lr`·min(1, 1/‖g‖₁) (torch's first-step rule; see batch._optimizer for the
    scale we give it), later steps by 1 along the L-BFGS direction. `history` curvature pairs are kept per
    picture; `evals` counts objective evaluations (one per step). `keep` drops pictures that left.

    `static`: every later step is the same operations on the same memory — all `history` slots are read from
    the start (empty ones are inert: ρ = 0 and s = y = 0), the state is updated in place, the step count that
    dates pairs lives on the device — so on CUDA the update is captured once as a CUDA graph (at the third
    step: the second, eager, is its warm-up) and replayed: one launch a step instead of ~65. The .grad tensors
    must then stay the same tensors between steps (the objective's CUDA graph keeps them so).
    """

    def __init__(self, pictures: Sequence[Tensor], history: int, first_lr: float, static: bool = False) -> None:
        self.pictures = list(pictures)
        first = self.pictures[0]
        jobs, n, device = len(self.pictures), first.numel(), first.device
        small = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        self.first_lr, self.size, self.static = first_lr, history, static
        self.pairs = first.new_zeros(jobs, history + 1, 2, n)  # (s, y) per slot; slot `history` takes rejected pairs
        self.sy = torch.zeros(jobs, history + 1, history + 1, dtype=small, device=device)  # sᵢᵀyⱼ
        self.yy = torch.zeros_like(self.sy)  # yᵢᵀyⱼ
        self.rho = torch.zeros(jobs, history + 1, dtype=small, device=device)  # 1/yᵢᵀsᵢ; 0: an empty slot
        self.age = torch.full((jobs, history + 1), -1, dtype=torch.long, device=device)  # step that stored it
        self.slot = torch.zeros(jobs, dtype=torch.long, device=device)  # where each picture's next kept pair goes
        self.gamma = torch.ones(jobs, dtype=small, device=device)
        self.clock = torch.zeros((), dtype=torch.long, device=device)  # steps taken, as ages are dated
        self.rows = torch.arange(jobs, device=device)
        self.prev_grad = first.new_zeros(jobs, n)
        self.last_move = first.new_zeros(jobs, n)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.capturable = True
        self.steps = 0
        self.evals = 0

    def step(self, closure: Callable[[], T]) -> T:
        """Evaluate (the closure sets the gradients), then move every picture; returns what the closure
        returned — the losses at the point evaluated, unread."""
        with torch.enable_grad():
            evaluated = closure()
        self.evals += 1
        with torch.no_grad():
            if self.steps == 0:
                grad = self._gradients()
                scale = grad.abs().sum(1, keepdim=True).reciprocal().clamp(max=1) * self.first_lr
                self._move(grad, grad * -scale)
            elif self.graph is not None:
                self.graph.replay()
            elif self.static and self.steps >= 2 and self.pairs.device.type == "cuda" and self.capturable:
                self._capture()
            else:
                self._update()
        self.steps += 1
        return evaluated

    def keep(self, rows: Sequence[int]) -> None:
        """Only the pictures at these positions (ascending) go on; their state stays as it was. Each kept
        row is copied down in place, so dropping a job allocates nothing (a captured update is dropped)."""
        self.pictures = [self.pictures[row] for row in rows]
        for name in ("pairs", "sy", "yy", "rho", "age", "slot", "gamma", "prev_grad", "last_move"):
            state = getattr(self, name)
            for new, old in enumerate(rows):
                if new != old:
                    state[new].copy_(state[old])
            setattr(self, name, state[:len(rows)])
        self.rows = self.rows[:len(rows)]
        self.graph = None

    def _capture(self) -> None:
        """Record the update as a CUDA graph on a side stream (nothing runs while it records), then replay it
        for this step. Not through `torch.cuda.graph`, which synchronises and empties the allocator's cache
        before every capture: two more of those a job for nothing the update needs. Should CUDA refuse to
        capture it, this optimiser steps eagerly from then on, with a warning."""
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.stream(torch.cuda.Stream()):
                graph.capture_begin(capture_error_mode="thread_local")  # other workers' jobs may run meanwhile
                try:
                    self._update()
                finally:
                    graph.capture_end()
        except RuntimeError as error:
            warnings.warn(f"L-BFGS update not captured as a CUDA graph, stepping eagerly: {error}", RuntimeWarning)
            self.capturable = False
            self._update()
            return
        self.graph = graph
        graph.replay()

    def _gradients(self) -> Tensor:
        return torch.stack([picture.grad.reshape(-1) for picture in self.pictures])

    def _move(self, grad: Tensor, move: Tensor) -> None:
        self.prev_grad.copy_(grad)
        self.last_move.copy_(move)
        torch._foreach_add_(self.pictures, [m.view_as(p) for m, p in zip(self.last_move.unbind(), self.pictures)])
        self.clock += 1

    def _update(self) -> None:
        """A step after the first: remember the last move's curvature pair, then move along −H·g."""
        grad = self._gradients()
        self._remember(self.last_move, grad - self.prev_grad)
        self._move(grad, self._direction(grad))

    def _used(self) -> int:
        """Slots that may hold a pair: slots fill in order, at most one a step (known without a sync); all of
        them when static."""
        return self.size if self.static else min(self.steps, self.size)

    def _remember(self, s: Tensor, y: Tensor) -> None:
        """Each picture's pair (s, y), kept in its ring if its curvature yᵀs is positive enough."""
        ys = torch.linalg.vecdot(y, s)
        keep = ys > CURVATURE_MIN
        where = torch.where(keep, self.slot, self.size)  # the spare slot takes what is not kept
        pair = torch.stack([s, y], 1)  # jobs × 2 × n
        self.pairs[self.rows, where] = pair
        used = self._used()
        rows, slots = self.rows[:, None], torch.arange(used, device=s.device)[None]
        products = (self.pairs[:, :used].flatten(1, 2) @ pair.transpose(1, 2)).to(self.sy.dtype)
        s_dot, y_dot = products[:, 0::2], products[:, 1::2]  # per slot in use: sᵢ·(s, y), yᵢ·(s, y)
        self.sy[rows, slots, where[:, None]] = s_dot[..., 1]  # sᵢᵀy
        self.sy[rows, where[:, None], slots] = y_dot[..., 0]  # sᵀyⱼ
        self.yy[rows, slots, where[:, None]] = y_dot[..., 1]
        self.yy[rows, where[:, None], slots] = y_dot[..., 1]
        ys = ys.to(self.rho.dtype)
        self.rho[self.rows, where] = ys.reciprocal()
        self.age[self.rows, where] = self.clock.expand_as(where)
        self.gamma.copy_(torch.where(keep, ys / torch.linalg.vecdot(y, y).to(ys.dtype), self.gamma))
        self.slot.copy_(torch.where(keep, (self.slot + 1) % self.size, self.slot))

    def _direction(self, grad: Tensor) -> Tensor:
        """−H·g per picture by the two-loop recursion, written as two triangular solves over the Grams."""
        used = self._used()
        history = self.pairs[:, :used].flatten(1, 2)  # jobs × 2·used × n: s₀, y₀, s₁, y₁, …
        products = (history @ grad[..., None])[..., 0].to(self.sy.dtype)
        order = self.age[:, :used].argsort(1)  # oldest first; empty slots (age −1, ρ 0) first and inert
        a, b = products[:, 0::2].gather(1, order), products[:, 1::2].gather(1, order)  # sᵢᵀg, yᵢᵀg
        rho, gamma = self.rho[:, :used].gather(1, order), self.gamma[:, None]
        pick = (self.rows[:, None, None], order[:, :, None], order[:, None, :])
        sy, yy = self.sy[:, :used, :used][pick], self.yy[:, :used, :used][pick]
        eye = torch.eye(used, dtype=sy.dtype, device=sy.device)
        # first loop, newest to oldest: αᵢ = ρᵢ sᵢᵀ(−g − Σ_{j newer} αⱼ yⱼ)
        upper = rho[..., None] * sy.triu(1)
        alpha = torch.linalg.solve_triangular(eye + upper, (-rho * a)[..., None], upper=True)
        # second loop, oldest to newest: βᵢ = ρᵢ yᵢᵀ(γq + Σ_{j older} sⱼ(αⱼ − βⱼ)), q = −g − Σ αⱼ yⱼ
        lower = rho[..., None] * sy.transpose(1, 2).tril(-1)
        yq = -(b[..., None] + yy @ alpha)
        beta = torch.linalg.solve_triangular(eye + lower, (rho * gamma)[..., None] * yq + lower @ alpha, upper=False)
        alpha, beta = alpha[..., 0], beta[..., 0]
        coefficients = torch.empty(len(self.pictures), used, 2, dtype=sy.dtype, device=sy.device)
        coefficients[self.rows[:, None], order] = torch.stack([alpha - beta, -gamma * alpha], 2)  # slot order
        return (history.transpose(1, 2) @ coefficients.flatten(1)[..., None].to(grad.dtype))[..., 0] \
            - gamma.to(grad.dtype) * grad
