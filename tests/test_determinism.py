"""Same seed, same picture — the promise per device (engine/determinism.py): exact on the CPU with or
without `deterministic`; exact on CUDA with it (the CUDA tests skip without a GPU: tiny, cheap runs).
The mode's switches are process-wide: on while any deterministic run is, put back after the last."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from engine import EngineError, Settings, batch, stylize
from engine.animate import animate
from engine.determinism import CUBLAS_DETERMINISTIC, CUBLAS_VARIABLE, NotDeterministic, deterministic_mode
from test_engine import painting, photo  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
GPU = torch.device("cuda")  # flipping the switches for a GPU run needs no GPU


def tiny(**values: object) -> Settings:
    return Settings.parse({"size": 64, "steps": 6, "scales": 1, "init": "noise", "seed": 7, **values})


def switches() -> tuple[bool, bool, bool, bool]:
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)


ON = (True, False, True, False)


@pytest.fixture
def fresh_switches() -> Iterator[tuple[bool, bool, bool, bool]]:
    """Starts from a non-default state (benchmark on), so "put back" is told apart from "switched off"."""
    before = switches()
    torch.backends.cudnn.benchmark = True
    yield switches()
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2:]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def test_on_the_cpu_a_seed_repeats_with_or_without_deterministic(photo: Image.Image, painting: Image.Image) -> None:
    plain = [stylize(photo, [painting], tiny(), device="cpu") for _ in range(2)]
    strict = stylize(photo, [painting], tiny(deterministic=True), device="cpu")
    other = stylize(photo, [painting], tiny(seed=8), device="cpu")
    assert np.array_equal(pixels(plain[0].image), pixels(plain[1].image))
    assert np.array_equal(pixels(plain[0].image), pixels(strict.image))  # the setting changes nothing here
    assert not np.array_equal(pixels(plain[0].image), pixels(other.image))
    assert strict.settings.deterministic and not torch.are_deterministic_algorithms_enabled()


def test_on_the_cpu_an_animation_repeats_too(photo: Image.Image, painting: Image.Image) -> None:
    """Its optical flow (OpenCV, on the CPU) and every frame's painting."""
    frames = [photo, photo.transform(photo.size, Image.Transform.AFFINE, (1, 0, 2, 0, 1, 1))]
    settings = tiny(init="content", steps=3, frame_steps=2)
    first, again = (animate(frames, [100, 100], [painting], settings, device="cpu") for _ in range(2))
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(first.frames, again.frames, strict=True))


@CUDA
def test_on_cuda_deterministic_repeats_exactly_and_puts_the_switches_back(
        photo: Image.Image, painting: Image.Image, fresh_switches: tuple[bool, bool, bool, bool]) -> None:
    runs = [stylize(photo, [painting], tiny(deterministic=True), device="cuda") for _ in range(2)]
    other = stylize(photo, [painting], tiny(deterministic=True, seed=8), device="cuda")
    assert np.array_equal(pixels(runs[0].image), pixels(runs[1].image))
    assert runs[0].losses == runs[1].losses
    assert not np.array_equal(pixels(runs[0].image), pixels(other.image))
    assert switches() == fresh_switches


def test_the_mode_is_on_while_any_deterministic_run_is(fresh_switches: tuple[bool, bool, bool, bool]) -> None:
    """Jobs run in threads (in-process backend, Celery thread pools): a run that ends must not switch the
    mode off under one still going, and the last one puts back what was there before the first."""
    inside, release = threading.Event(), threading.Event()

    def long_run() -> None:
        with deterministic_mode(True, GPU):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=long_run)
    thread.start()
    try:
        assert inside.wait(10) and switches() == ON
        with deterministic_mode(True, GPU):
            assert switches() == ON
        assert switches() == ON  # the long run still holds it
        with deterministic_mode(False, GPU):
            assert switches() == ON  # a run that did not ask, beside one that did, runs in the mode too
    finally:
        release.set()
        thread.join(10)
    assert switches() == fresh_switches


def test_the_mode_is_put_back_when_a_run_fails(fresh_switches: tuple[bool, bool, bool, bool]) -> None:
    with pytest.raises(ValueError), deterministic_mode(True, GPU):
        raise ValueError("the job failed")
    assert switches() == fresh_switches
    with deterministic_mode(True, torch.device("cpu")):
        assert switches() == fresh_switches  # CPU runs repeat anyway: nothing is switched


def test_an_op_without_a_deterministic_version_is_a_clear_error(photo: Image.Image, painting: Image.Image,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """No op the engine runs today lacks one; a penalty that does (put_) stands in for a future one."""
    monkeypatch.setattr(batch, "deterministic_mode", lambda on, device: deterministic_mode(on, GPU))

    def penalty(image: torch.Tensor) -> tuple[str, torch.Tensor, float]:
        torch.zeros(2).put_(torch.tensor([0]), torch.tensor([1.0]))
        return "extra", image.mean(), 0.0

    with pytest.raises(EngineError, match=r"deterministic=true cannot be honoured: put_ does not have a "
                                          r"deterministic implementation — run without deterministic=true$"):
        stylize(photo, [painting], tiny(deterministic=True, steps=1), device="cpu", penalty=penalty)
    stylize(photo, [painting], tiny(steps=1), device="cpu", penalty=penalty)  # without the mode it runs


def test_cublas_is_configured_for_determinism_at_import_and_a_wrong_setting_is_named(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert os.environ[CUBLAS_VARIABLE] in CUBLAS_DETERMINISTIC
    monkeypatch.setenv(CUBLAS_VARIABLE, ":0:0")
    with pytest.raises(NotDeterministic, match=r"needs CUBLAS_WORKSPACE_CONFIG unset or set to :4096:8 or :16:8; "
                                               r"this process has ':0:0'"):
        with deterministic_mode(True, GPU):
            pass
    assert not torch.are_deterministic_algorithms_enabled()
