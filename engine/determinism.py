"""Same seed, same picture on a GPU: PyTorch's deterministic mode for the jobs that ask (settings.deterministic).

A seed fixes the starting noise; the rest of a run is arithmetic. On the CPU that arithmetic repeats (for
a given machine and thread count), so the same seed gives the same picture. On CUDA it does not: cuDNN
picks non-deterministic convolution algorithms and L-BFGS amplifies the last-bit differences into another
picture (seed 7 twice, 512 px, H200: 99.8 % of pixels differed, by up to 242 of 255). In deterministic
mode the two pictures were identical, at 8.9–9.1 s a job against 7.9–8.8 s without (same process).

PyTorch's switches are process-wide, while jobs run in threads (the in-process backend, a Celery thread
pool), so `deterministic_mode` counts the deterministic runs in progress: the first switches the mode on,
the last puts back what was there before. A job that did not ask, running beside one that did, runs in
deterministic mode too — a little slower, never different in kind: none of the ops the engine runs is on
PyTorch's list of those without a deterministic version (should one be added, its job fails with a
message that says so).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

# cuBLAS repeats itself only with a fixed workspace configuration, which PyTorch reads when CUDA starts
# and checks in deterministic mode; so it is set here, at import, never changed later (changing the
# environment while other threads run is unsafe). 8 × 4 MiB is the workspace PyTorch uses on Hopper.
CUBLAS_VARIABLE = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_DETERMINISTIC = (":4096:8", ":16:8")
os.environ.setdefault(CUBLAS_VARIABLE, CUBLAS_DETERMINISTIC[0])


class NotDeterministic(RuntimeError):
    """Deterministic mode cannot be had here; str(e) says why, for the user."""


@contextmanager
def deterministic_mode(on: bool, device: torch.device) -> Iterator[None]:
    """Run the body in PyTorch's deterministic mode (cuDNN deterministic, benchmark off,
    torch.use_deterministic_algorithms) when `on` and `device` is a GPU; safe to enter from several threads
    at once. On the CPU it changes nothing: runs repeat there anyway, and the mode would only fill every
    new buffer first (torch.utils.deterministic.fill_uninitialized_memory)."""
    if not on or device.type == "cpu":
        yield
        return
    if device.type == "cuda" and os.environ.get(CUBLAS_VARIABLE) not in CUBLAS_DETERMINISTIC:
        raise NotDeterministic(f"deterministic=true needs {CUBLAS_VARIABLE} unset or set to "
                               f"{' or '.join(CUBLAS_DETERMINISTIC)}; this process has "
                               f"{os.environ.get(CUBLAS_VARIABLE)!r}")
    _MODE.enter()
    try:
        yield
    except RuntimeError as error:  # an op without a deterministic version (none in today's engine)
        if "does not have a deterministic implementation" not in str(error):
            raise
        raise NotDeterministic("deterministic=true cannot be honoured: " + str(error).split(", but you set")[0]
                               + " — run without deterministic=true") from error
    finally:
        _MODE.leave()


class _Mode:
    """The process-wide switches, on while at least one deterministic run is in progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0
        self._before: tuple[bool, bool, bool, bool] | None = None

    def enter(self) -> None:
        with self._lock:
            if self._runs == 0:
                self._before = (torch.are_deterministic_algorithms_enabled(),
                                torch.is_deterministic_algorithms_warn_only_enabled(),
                                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
                _switch(True, False, True, False)
            self._runs += 1

    def leave(self) -> None:
        with self._lock:
            self._runs -= 1
            if self._runs == 0 and self._before is not None:
                _switch(*self._before)
                self._before = None


def _switch(algorithms: bool, warn_only: bool, cudnn_deterministic: bool, cudnn_benchmark: bool) -> None:
    torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
    torch.backends.cudnn.deterministic = cudnn_deterministic
    torch.backends.cudnn.benchmark = cudnn_benchmark


_MODE = _Mode()
