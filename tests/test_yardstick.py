"""The benchmark's yardsticks (bench/yardstick.py) behave as distances: 0 for identical pictures, growing
with a growing perturbation, symmetric where they should be."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from yardstick import Yardstick, projections, samples, sliced_wasserstein, ssim  # noqa: E402


def noisy(image: Image.Image, amplitude: float, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    array = np.asarray(image, dtype=np.float32) + rng.normal(0, amplitude, (image.height, image.width, 3))
    return Image.fromarray(array.clip(0, 255).round().astype(np.uint8))


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(ROOT / "examples/chelsea.png").convert("RGB").resize((64, 43))


def test_ssim_is_one_for_identical_images_and_falls_with_noise() -> None:
    x = torch.rand(1, 1, 40, 40, generator=torch.Generator().manual_seed(1)) * 255
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    values = [ssim(x, (x + torch.randn(x.shape, generator=torch.Generator().manual_seed(2)) * s).clamp(0, 255))
              for s in (5, 20, 60)]
    assert 1 > values[0] > values[1] > values[2]


def test_sliced_wasserstein_is_symmetric_zero_for_a_shuffled_copy_and_grows_with_a_shift() -> None:
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(500, 8, generator=g), torch.randn(300, 8, generator=g) * 2 + 1
    directions = projections(8)
    assert sliced_wasserstein(a, b, directions) == pytest.approx(sliced_wasserstein(b, a, directions), rel=1e-12)
    assert sliced_wasserstein(a, a[torch.randperm(500, generator=g)], directions) == pytest.approx(0, abs=1e-12)
    shifts = [sliced_wasserstein(a, a + s, directions) for s in (0.1, 0.5, 2.0)]
    assert 0 < shifts[0] < shifts[1] < shifts[2]


def test_projections_are_fixed_unit_directions() -> None:
    p = projections(16)
    assert torch.equal(p, projections(16)) and p.shape == (16, 128)
    assert torch.allclose(p.norm(dim=0), torch.ones(128, dtype=torch.float64))


def test_every_distance_is_zero_for_the_picture_itself_and_grows_with_noise(photo: Image.Image) -> None:
    yardstick = Yardstick(photo, photo, 64)
    same = yardstick(photo)
    for distances in (same.objective, same.relative, same.independent):
        assert distances.content == pytest.approx(0, abs=1e-9)
        assert distances.style == pytest.approx(0, abs=1e-6)
    mild, strong = yardstick(noisy(photo, 10)), yardstick(noisy(photo, 40))
    for name in ("objective", "relative", "independent"):
        a, b = getattr(mild, name), getattr(strong, name)
        assert 0 < a.content < b.content and 0 < a.style < b.style, name
        assert not a.at_least_as_good_as(getattr(same, name)) and a.at_least_as_good_as(b)


def test_sliced_wasserstein_ignores_where_features_are(photo: Image.Image) -> None:
    """The style statistic compares distributions, not positions: a mirrored copy of the painting is far
    closer than a noisy one (not 0: VGG's kernels are not mirror-symmetric)."""
    yardstick = Yardstick(photo, photo, 64)
    features = yardstick.vgg(torch.from_numpy(np.asarray(photo, dtype=np.float32)).permute(2, 0, 1)[None],
                             ("relu1_2",))["relu1_2"]
    flat = samples(features)
    directions = projections(flat.shape[1])
    assert sliced_wasserstein(flat, flat.flip(0), directions) == pytest.approx(0, abs=1e-9)
    mirrored = yardstick(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    assert mirrored.independent.style < 0.5 * yardstick(noisy(photo, 40)).independent.style
