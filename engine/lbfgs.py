"""L-BFGS whose every step stays on the device: no `.item()`, no Python branch on a tensor's value.

The same method as `torch.optim.LBFGS(max_iter=1, line_search_fn=None)` with its tolerances off — one
objective evaluation per step, a fixed step of 1 along the two-loop direction, a curvature pair kept
only when yᵀs > 1e-10, H₀ = γI with γ = yᵀs / yᵀy of the last pair kept — but torch's version turns
every dot product into a Python float (~140 host syncs a step at 512 px on a GPU, which then idles
between them). Here the history is one (m+1, 2, n) tensor of (s, y) rows in a ring, and the two-loop
recursion is rewritten in the Gram matrices of those rows (sᵢᵀyⱼ, yᵢᵀyⱼ, kept up to date one row and
column a step): its two sequential sweeps become two m×m triangular solves, so a step is two matmuls
over the history plus a few small ops, whatever m is — the same arithmetic, reordered (the compact
form of Byrd, Nocedal & Schnabel 1994). Whether a pair is kept is decided on the device too: a
rejected pair is written to a spare slot that nothing reads. The loss is never read here.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

CURVATURE_MIN = 1e-10  # as torch.optim.LBFGS: a pair with yᵀs at or below this is not kept
HISTORY_BYTES = 1 << 30  # cap on the stored curvature pairs, so huge outputs still fit


def history_size(numel: int, steps: int) -> int:
    """Curvature pairs kept in a pass of `steps` steps on `numel` floats: at most HISTORY_BYTES of them
    (but at least 5) and 100, and no more than the pass makes (one a step after the first)."""
    return max(1, min(steps - 1, max(5, min(100, HISTORY_BYTES // (2 * numel * 4)))))


class LBFGS:
    """Minimise `closure()` (which sets x.grad and returns the loss) over the tensor `x`, in place.

    The first step moves along −g by `first_lr`·min(1, 1/‖g‖₁) (torch's first-step rule; see
    transfer._optimizer for the scale we give it), later steps by 1 along the L-BFGS direction.
    `history` curvature pairs are kept; `evals` counts objective evaluations (one per step).
    """

    def __init__(self, x: Tensor, history: int, first_lr: float) -> None:
        self.x = x
        self.first_lr = first_lr
        self.size = history
        n = x.numel()
        small = torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no float64
        self.pairs = x.new_zeros(history + 1, 2, n)  # (s, y) per slot; slot `history` takes rejected pairs
        self.sy = torch.zeros(history + 1, history + 1, dtype=small, device=x.device)  # sᵢᵀyⱼ
        self.yy = torch.zeros_like(self.sy)  # yᵢᵀyⱼ
        self.rho = torch.zeros(history + 1, dtype=small, device=x.device)  # 1/yᵢᵀsᵢ; 0: an empty slot
        self.age = torch.full((history + 1,), -1, dtype=torch.long, device=x.device)  # step that stored it
        self.slot = torch.zeros((), dtype=torch.long, device=x.device)  # where the next kept pair goes
        self.spare = torch.full((), history, dtype=torch.long, device=x.device)
        self.gamma = torch.ones((), dtype=small, device=x.device)
        self.prev_grad: Tensor | None = None
        self.last_move: Tensor | None = None
        self.steps = 0
        self.evals = 0

    def step(self, closure: Callable[[], Tensor]) -> Tensor:
        """Evaluate, then move x; returns the loss at the point evaluated (as a tensor, unread)."""
        with torch.enable_grad():
            loss = closure()
        self.evals += 1
        with torch.no_grad():
            grad = self.x.grad.reshape(-1)
            if self.last_move is None:
                scale = grad.abs().sum().reciprocal().clamp(max=1) * self.first_lr
                move = grad * -scale
            else:
                self._remember(self.last_move, grad - self.prev_grad)
                move = self._direction(grad)
            self.prev_grad = grad.clone()
            self.x.add_(move.view_as(self.x))
            self.last_move = move
        self.steps += 1
        return loss

    def _used(self) -> int:
        """Slots that may hold a pair: slots fill in order, at most one a step (known without a sync)."""
        return min(self.steps, self.size)

    def _remember(self, s: Tensor, y: Tensor) -> None:
        ys = y @ s
        keep = ys > CURVATURE_MIN
        where = torch.where(keep, self.slot, self.spare)[None]
        self.pairs[:, 0].index_copy_(0, where, s[None])
        self.pairs[:, 1].index_copy_(0, where, y[None])
        used = self._used()
        products = (self.pairs[:used].reshape(2 * used, -1) @ torch.stack([s, y], 1)).to(self.sy.dtype)
        s_dot, y_dot = products[0::2], products[1::2]  # rows: sᵢ·(s, y), yᵢ·(s, y) for the slots in use
        self.sy[:used].index_copy_(1, where, s_dot[:, 1:])  # sᵢᵀy
        self.sy[:, :used].index_copy_(0, where, y_dot[:, :1].T)  # sᵀyⱼ
        self.yy[:used].index_copy_(1, where, y_dot[:, 1:])
        self.yy[:, :used].index_copy_(0, where, y_dot[:, 1:].T)
        ys = ys.to(self.rho.dtype)
        self.rho.index_copy_(0, where, ys.reciprocal()[None])
        self.age.index_copy_(0, where, torch.full_like(where, self.steps))
        self.gamma = torch.where(keep, ys / (y @ y).to(ys.dtype), self.gamma)
        self.slot = torch.where(keep, (self.slot + 1) % self.size, self.slot)

    def _direction(self, grad: Tensor) -> Tensor:
        """−H·g by the two-loop recursion, written as two triangular solves over the history's Grams."""
        used = self._used()
        history = self.pairs[:used].reshape(2 * used, -1)
        products = (history @ grad).to(self.sy.dtype)
        order = self.age[:used].argsort()  # oldest first; empty slots (age −1, ρ 0) first and inert
        a, b = products[0::2][order], products[1::2][order]  # sᵢᵀg, yᵢᵀg
        rho, gamma = self.rho[:used][order], self.gamma
        sy = self.sy[:used, :used][order][:, order]
        yy = self.yy[:used, :used][order][:, order]
        eye = torch.eye(used, dtype=sy.dtype, device=sy.device)
        # first loop, newest to oldest: αᵢ = ρᵢ sᵢᵀ(−g − Σ_{j newer} αⱼ yⱼ)
        upper = rho[:, None] * sy.triu(1)
        alpha = torch.linalg.solve_triangular(eye + upper, (-rho * a)[:, None], upper=True)[:, 0]
        # second loop, oldest to newest: βᵢ = ρᵢ yᵢᵀ(γq + Σ_{j older} sⱼ(αⱼ − βⱼ)), q = −g − Σ αⱼ yⱼ
        lower = rho[:, None] * sy.T.tril(-1)
        yq = -(b + yy @ alpha)
        beta = torch.linalg.solve_triangular(eye + lower, (rho * gamma * yq + lower @ alpha)[:, None],
                                             upper=False)[:, 0]
        coefficients = torch.empty(used, 2, dtype=sy.dtype, device=sy.device)
        coefficients[order] = torch.stack([alpha - beta, -gamma * alpha], 1)  # back to slot order
        return history.T @ coefficients.reshape(-1).to(grad.dtype) - gamma.to(grad.dtype) * grad
