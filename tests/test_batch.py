"""Batched jobs (engine.stylize_batch) on the CPU: tiny images, few steps, real Caffe weights.

Tolerance: a job painted in a batch is compared with the same job painted alone, pixel by pixel, at most
TOLERANCE grey levels apart. Only the convolutions' arithmetic differs: oneDNN blocks an fp32 batch of N
differently from one picture (float sums in another order, ~1e-6 relative), and L-BFGS carries such
differences along and grows them — measured on the 2-core test machine, 64 px, two jobs: fp32 at most 1
grey level apart after 6 steps but 61 after 40 (the same kind of drift as a CUDA run repeated, cuDNN not
being deterministic); bf16 (on a CPU with AVX512-BF16) identical at 6 and at 40 steps. Hence fp32, few
steps, and a tolerance of one grey level: what a rounding boundary can flip."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import Cancelled, EngineError, Progress, Request, Settings, batch_key, stylize, stylize_batch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOLERANCE = 1  # grey levels (0–255), see the module's docstring

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [Image.open(EXAMPLES / name).convert("RGB").resize((64, 64))
            for name in ("chelsea.png", "starry_night.jpg")]


@pytest.fixture(scope="module")
def paintings() -> list[Image.Image]:
    return [Image.open(EXAMPLES / name).convert("RGB").resize(size)
            for name, size in (("starry_night.jpg", (64, 40)), ("the_scream.jpg", (40, 51)))]


def tiny(**values: object) -> Settings:
    return Settings.parse({"size": 64, "steps": 6, "scales": 2, "seed": 1, "precision": "fp32", **values})


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def assert_same_picture(batched: Image.Image, alone: Image.Image) -> None:
    assert batched.size == alone.size
    assert np.abs(pixels(batched) - pixels(alone)).max() <= TOLERANCE


def test_a_batched_job_paints_the_same_picture_as_alone(photos: list[Image.Image],
                                                        paintings: list[Image.Image]) -> None:
    # two users' jobs of one shape, with their own styles (of other sizes), weights and seeds
    first, second = tiny(), tiny(style_weight=3e4, seed=7, init="noise")
    alone = [stylize(photos[0], [paintings[0]], first, device="cpu"),
             stylize(photos[1], [paintings[1]], second, device="cpu")]
    reports: list[list[Progress]] = [[], []]
    batched = stylize_batch([Request(photos[0], [paintings[0]], first, progress=reports[0].append),
                             Request(photos[1], [paintings[1]], second, progress=reports[1].append)], device="cpu")
    for result, single, seen in zip(batched, alone, reports):
        assert not isinstance(result, Exception)
        assert_same_picture(result.image, single.image)
        assert result.steps == single.steps == 6
        assert result.losses.keys() == single.losses.keys()
        assert [p.step for p in seen] == list(range(1, 7))  # each job its own progress
    assert not np.array_equal(pixels(batched[0].image), pixels(batched[1].image))


def test_a_batch_of_one_is_stylize(photos: list[Image.Image], paintings: list[Image.Image]) -> None:
    [result] = stylize_batch([Request(photos[0], [paintings[0]], tiny())], device="cpu")
    alone = stylize(photos[0], [paintings[0]], tiny(), device="cpu")
    assert not isinstance(result, Exception)
    assert np.array_equal(pixels(result.image), pixels(alone.image))  # the same code path: bit for bit
    assert result.losses == alone.losses


def test_cancelling_one_job_in_a_batch_leaves_the_others_picture_unchanged(photos: list[Image.Image],
                                                                          paintings: list[Image.Image]) -> None:
    alone = stylize(photos[1], [paintings[1]], tiny(), device="cpu")
    cancel = threading.Event()

    def cancel_at_step_3(progress: Progress) -> None:
        if progress.step == 3:
            cancel.set()

    ended: list[str] = []
    leaving, staying = stylize_batch([Request(photos[0], [paintings[0]], tiny(), progress=cancel_at_step_3,
                                              cancel=cancel, done=lambda outcome: ended.append("leaving")),
                                      Request(photos[1], [paintings[1]], tiny(),
                                              done=lambda outcome: ended.append("staying"))], device="cpu")
    assert isinstance(leaving, Cancelled)
    assert ended == ["leaving", "staying"]  # told at once, not when the batch ends
    assert not isinstance(staying, Exception) and staying.steps == 6
    assert_same_picture(staying.image, alone.image)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_job_leaving_mid_pass_leaves_the_others_steps_as_they_were(photos: list[Image.Image],
                                                                     paintings: list[Image.Image],
                                                                     optimizer: str) -> None:
    """The batch's one optimiser drops the leaving job's state and keeps the others' (their curvature
    history, or Adam's moments and each job's own lr) as it was."""
    settings = [tiny(scales=1, optimizer=optimizer, lr=lr) for lr in (1.0, 2.0, 5.0)]
    alone = [stylize(photos[1], [paintings[k - 1]], settings[k], device="cpu") for k in (1, 2)]
    cancel = threading.Event()
    leaving = Request(photos[0], [paintings[0]], settings[0], cancel=cancel,
                      progress=lambda progress: cancel.set() if progress.step == 2 else None)
    staying = [Request(photos[1], [paintings[k - 1]], settings[k]) for k in (1, 2)]
    left, *stayed = stylize_batch([leaving, *staying], device="cpu")
    assert isinstance(left, Cancelled)
    for result, single in zip(stayed, alone):
        assert not isinstance(result, Exception) and result.steps == 6
        assert_same_picture(result.image, single.image)


def test_a_job_that_fails_fails_alone(photos: list[Image.Image], paintings: list[Image.Image]) -> None:
    bad_blend = Request(photos[0], [paintings[0]], tiny(style_blend=(1.0, 2.0)))
    broken = Request(photos[0], [paintings[0]], tiny(), progress=lambda p: 1 / 0)  # fails mid-run
    good = Request(photos[1], [paintings[1]], tiny())
    failed, crashed, result = stylize_batch([bad_blend, broken, good], device="cpu")
    assert isinstance(failed, EngineError) and "style_blend" in str(failed)
    assert isinstance(crashed, ZeroDivisionError)
    assert not isinstance(result, Exception)
    assert_same_picture(result.image, stylize(photos[1], [paintings[1]], tiny(), device="cpu").image)


def test_jobs_of_different_shapes_are_never_batched(photos: list[Image.Image], paintings: list[Image.Image]) -> None:
    wide, tall = (64, 48), (48, 64)
    assert batch_key(tiny(), wide, "cpu") == batch_key(tiny(style_weight=9.0, seed=3), wide, "cpu")
    for other in (batch_key(tiny(), tall, "cpu"), batch_key(tiny(size=72), wide, "cpu"),
                  batch_key(tiny(steps=8), wide, "cpu"), 
                  batch_key(tiny(optimizer="adam"), wide, "cpu"), batch_key(tiny(pooling="avg"), wide, "cpu")):
        assert other != batch_key(tiny(), wide, "cpu")
    square = (64, 64)  # one pass at 64 px, or a 32 px pass first: the pictures no longer stack
    assert batch_key(tiny(scales=1), square, "cpu") != batch_key(tiny(), square, "cpu")
    with pytest.raises(ValueError, match="different batch keys"):
        stylize_batch([Request(photos[0], [paintings[0]], tiny()), Request(photos[0], [paintings[0]], tiny(size=72))],
                      device="cpu")


def test_a_caller_under_no_grad_gets_the_same_picture(photos: list[Image.Image], paintings: list[Image.Image]) -> None:
    """The optimisers evaluate under enable_grad (as torch's did inside step()): a caller's no_grad, e.g. a
    benchmark's, must not break the batch's backward pass."""
    import torch

    settings = tiny(steps=3, scales=1)
    with torch.no_grad():
        quiet = stylize(photos[0], [paintings[0]], settings, device="cpu")
    assert np.array_equal(pixels(quiet.image), pixels(stylize(photos[0], [paintings[0]], settings, device="cpu").image))
