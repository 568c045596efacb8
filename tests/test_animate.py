"""Animations (engine/animate.py): flow conventions, occlusions, and a tiny real run on the CPU."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from engine import Cancelled, Settings
from engine.animate import AnimationProgress, animate, flow, reliable, temporal_penalty, warp

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def texture(height: int, width: int, seed: int, blur: float = 1.5) -> np.ndarray:
    """Smooth random grey texture, 0–255 uint8: something optical flow can lock onto."""
    noise = np.random.default_rng(seed).random((height, width)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), blur)
    return ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.uint8)


def test_warping_with_the_backward_flow_carries_the_previous_frame_onto_the_next() -> None:
    before = texture(48, 64, seed=1)
    after = np.roll(before, 3, axis=1)  # the picture moved 3 px to the right
    backward = np.zeros((48, 64, 2), np.float32)
    backward[..., 0] = -3  # frame t's pixel x came from x − 3 in frame t−1
    assert np.array_equal(warp(before, backward)[:, 3:], after[:, 3:])  # exact, and not the other way round
    estimated = flow(after, before)
    assert np.abs(estimated[8:-8, 8:-8] - (-3, 0)).mean() < 0.1  # DIS agrees on the sign and size
    assert np.abs(flow(before, after)[8:-8, 8:-8] - (3, 0)).mean() < 0.1
    assert np.abs(warp(before.astype(np.float32), estimated)[8:-8, 8:-8] - after[8:-8, 8:-8]).mean() < 1


def test_the_occlusion_test_finds_the_strip_a_moving_square_uncovers() -> None:
    background, square = texture(64, 64, seed=2), texture(20, 20, seed=3, blur=1.0)
    first, second = background.copy(), background.copy()
    first[22:42, 16:36] = square
    second[22:42, 22:42] = square  # moved 6 px to the right: x 16–21 of the second frame is uncovered
    forward, backward = flow(first, second), flow(second, first)
    uncovered = np.zeros((64, 64), bool)
    uncovered[22:42, 16:22] = True
    far = np.ones((64, 64), bool)
    far[14:50, 8:50] = False
    full, consistency, off = (reliable(forward, backward, rule) for rule in ("full", "consistency", "off"))
    assert 1 - full[uncovered].mean() > 0.9 and 1 - consistency[uncovered].mean() > 0.5
    assert full[far].mean() > 0.98 and consistency[far].mean() > 0.98
    assert off.min() == 1  # nothing flows in from outside here, and no rule is applied
    assert (full <= consistency).all()  # motion boundaries only take pixels away


def test_pixels_flowing_in_from_outside_are_not_trusted() -> None:
    before = texture(48, 64, seed=4)
    after = np.roll(before, 5, axis=1)
    trust = reliable(flow(before, after), flow(after, before), "off")
    assert trust[8:-8, :4].max() == 0 and trust[8:-8, 8:-8].min() == 1


@pytest.fixture(scope="module")
def clip() -> list[Image.Image]:
    """Three distinct frames: a photo panned 2 px per frame."""
    photo = np.asarray(Image.open(EXAMPLES / "chelsea.png").convert("RGB").resize((72, 44)))
    return [Image.fromarray(np.ascontiguousarray(photo[:, 2 * i:2 * i + 64])) for i in range(3)]


@pytest.fixture(scope="module")
def painting() -> Image.Image:
    return Image.open(EXAMPLES / "starry_night.jpg").convert("RGB").resize((64, 40))


def test_an_animation_keeps_its_frames_timing_and_reports_every_step(clip, painting) -> None:
    settings = Settings.parse({"size": 64, "steps": 3, "frame_steps": 2, "scales": 1, "seed": 3})
    reports: list[AnimationProgress] = []
    result = animate(clip, [40, 120, 70], [painting], settings, device="cpu", progress=reports.append,
                     preview_every=2)
    assert len(result.frames) == 3 and result.durations_ms == [40, 120, 70]
    assert all(frame.size == (64, 44) for frame in result.frames)
    assert [(r.frame, r.step) for r in reports] == [(1, 1), (1, 2), (1, 3), (2, 4), (2, 5), (3, 6), (3, 7)]
    assert result.steps == reports[-1].total == 7 and result.settings.seed == 3
    assert [r.still.preview is not None for r in reports] == [False, True, True, False, True, False, True]
    assert "temporal" not in result.losses[0] and all(loss["temporal"] >= 0 for loss in result.losses[1:])
    assert all(np.abs(np.asarray(out, np.int16) - np.asarray(given, np.int16)).mean() > 1
               for out, given in zip(result.frames, clip))  # every frame painted, none copied


def test_the_temporal_loss_is_in_0_to_1_pixel_units_like_tv() -> None:
    """A picture 51 levels (0.2) off the warped one where c = 1, and anything where c = 0: loss 0.2² · ½."""
    warped, image = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 51.0)
    trust = torch.ones(1, 1, 4, 4)
    trust[..., 2:] = 0
    image[..., 2:] = 255
    name, loss, strength = temporal_penalty(warped, trust, 7.0)(image)
    assert (name, strength) == ("temporal", 7.0) and loss.item() == pytest.approx(0.02)


def test_a_strong_temporal_loss_holds_the_next_frame_to_the_warped_previous_one(clip, painting) -> None:
    def second_frame_change(weight: float) -> float:
        settings = Settings.parse({"size": 64, "steps": 4, "frame_steps": 4, "scales": 1, "seed": 5,
                                   "temporal_weight": weight, "occlusion": "off"})
        frames = animate(clip[:2], [50, 50], [painting], settings, device="cpu").frames
        first, second = (np.asarray(f, np.float32) for f in frames)
        return float(np.abs(second[:, :-2] - first[:, 2:]).mean())  # the pan moved the picture 2 px left

    assert second_frame_change(1e6) < 0.5 * second_frame_change(0)


def test_cancel_stops_between_steps(clip, painting) -> None:
    cancel = threading.Event()

    def stop_in_frame_two(report: AnimationProgress) -> None:
        if report.frame == 2:
            cancel.set()

    settings = Settings.parse({"size": 64, "steps": 2, "frame_steps": 5, "scales": 1, "seed": 1})
    reports: list[AnimationProgress] = []
    with pytest.raises(Cancelled):
        animate(clip, [50] * 3, [painting], settings, device="cpu", cancel=cancel,
                progress=lambda r: (reports.append(r), stop_in_frame_two(r)))
    assert reports[-1].frame == 2 and reports[-1].step == 3
