"""engine.memory: the fitted peak-memory model grows with every setting that costs memory, and answers
nothing where it was not measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.memory import CPU, largest_size, machine_bytes, optimizer_bytes, predict_peak_bytes
from engine.params import Settings


def need(shape: tuple[int, int] = (1, 1), styles: int = 1, **raw: object) -> int:
    value = predict_peak_bytes(Settings.parse({"precision": "fp32", **raw}), shape, styles, "cpu")
    assert value is not None
    return value


def test_more_pixels_styles_and_history_never_need_less() -> None:
    sizes = [need(size=s) for s in range(64, 4097, 64)]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    assert need(size=1024, styles=3) > need(size=1024, styles=2) > need(size=1024)
    assert need(size=1024, style_scale=2) > need(size=1024) > need(size=1024, style_scale=0.5)
    assert need(size=1024, steps=300) > need(size=1024, steps=20)  # L-BFGS's history fills up with steps
    assert need((2, 1), size=1024) < need(size=1024)  # a wide photo at the same long side has fewer pixels


def test_small_jobs_are_bounded_by_loading_the_weights() -> None:
    assert need(size=64) == round(CPU.load_peak)


def test_adam_keeps_less_state_than_lbfgs() -> None:
    numel = 3 * 1024 * 1024
    assert optimizer_bytes(Settings.parse({"optimizer": "adam"}), numel) == 3 * numel * 4
    lbfgs = Settings.parse({"steps": 300})  # 150 steps in the last pass: the whole history, 1 GiB's 42 pairs
    assert optimizer_bytes(lbfgs, numel) == (4 + 2 * (42 + 1)) * numel * 4  # and the spare slot
    assert need(size=1024, optimizer="adam") < need(size=1024)


def test_a_pixel_count_needs_what_its_size_does() -> None:
    assert need((3, 1), pixels=300_000) == need((3, 1), size=949)  # 949×316 ≈ 300,000 pixels


@pytest.mark.parametrize("budget_gb", [2.0, 3.5, 8.0])
def test_largest_size_is_the_last_that_fits(budget_gb: float) -> None:
    settings = Settings.parse({"precision": "fp32"})
    largest = largest_size(settings, budget_gb * 1e9, (4, 3), 1, "cpu")
    assert largest and 64 <= largest < 4096
    assert need((4, 3), size=largest) <= budget_gb * 1e9 < need((4, 3), size=largest + 1)


def test_nothing_fits_a_budget_below_the_weights() -> None:
    assert largest_size(Settings(), CPU.load_peak / 2) == 0


def test_unmeasured_devices_get_no_prediction() -> None:
    assert predict_peak_bytes(Settings(), (1, 1), 1, "mps") is None
    assert largest_size(Settings(), 1e12, device="mps") is None


@pytest.mark.parametrize("file, text, limited", [("memory.max", "3221225472\n", True), ("memory.max", "max\n", False),
                                                 ("memory/memory.limit_in_bytes", "3221225472\n", True),
                                                 ("memory/memory.limit_in_bytes", "9223372036854771712\n", False)])
def test_the_containers_memory_limit_is_seen_under_cgroup_v2_and_v1(tmp_path: Path, file: str, text: str,
                                                                   limited: bool) -> None:
    """`docker run --memory 3g` on a cgroup v1 host (Docker 20.10 there) writes memory.limit_in_bytes."""
    (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / file).write_text(text)
    machine = machine_bytes(tmp_path / "nothing-here")
    assert machine_bytes(tmp_path) == (3221225472 if limited else machine) and machine > 3221225472


def test_gpu_jobs_are_predicted_from_the_h200_measurements() -> None:
    """bench/gpu.py measured 2.42 GB for the largest 512 px default job (square style) and 32.5 GB at 4096 px
    (a 4:3 photo): the model must not promise less."""
    assert 2.42e9 <= predict_peak_bytes(Settings.parse({"size": 512}), (1, 1), 1, "cuda") < 4e9
    assert 32.5e9 <= predict_peak_bytes(Settings.parse({"size": 4096}), (4, 3), 1, "cuda:1") < 50e9
    largest = largest_size(Settings(), 10e9, device="cuda")
    assert largest and 1024 < largest < 2048
    fits = [predict_peak_bytes(Settings.parse({"size": s}), (1, 1), 1, "cuda") for s in (largest, largest + 1)]
    assert fits[0] <= 10e9 < fits[1]


def test_a_batch_is_predicted_as_the_sum_of_its_jobs_over_one_process() -> None:
    """A batch (engine.stylize_batch) holds the model once and each job's own bytes: a batch of one is the job
    alone, and each job more adds what it adds alone above the loaded process."""
    from engine.memory import CUDA, predict_batch_bytes

    settings, shape = Settings.parse({"size": 1024}), (1024, 768)
    one = predict_peak_bytes(settings, shape, 1, "cuda")
    assert predict_batch_bytes([(settings, shape, 1)], "cuda") == one
    assert predict_batch_bytes([(settings, shape, 1)] * 4, "cuda") == pytest.approx(
        CUDA.loaded + 4 * (one - CUDA.loaded), abs=4)
    assert predict_batch_bytes([(settings, shape, 1)] * 2, "mps") is None


def test_batches_through_the_backend_are_predicted_from_the_h200_measurements() -> None:
    """bench/gpu.py --sections batch (2026-12-04, H200): the default 512 px job on chelsea (451×300) × The
    Starry Night through the in-process backend, in batches of 1, 4, 8 and 16 — the model must not promise less
    (it did, by up to 0.64 GB, before `loaded` took these points in)."""
    from engine.memory import predict_batch_bytes

    settings = Settings.parse({"size": 512, "seed": 0})
    for jobs, peak in ((1, 2_992_505_344), (4, 5_946_099_712), (8, 9_969_371_136), (16, 16_778_875_392)):
        assert peak <= predict_batch_bytes([(settings, (451, 300), 1)] * jobs, "cuda") < peak + 2e9
