"""Spatial control, scale control and layer choice (Gatys et al. 2017), on the CPU with 64 px pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import EngineError, Settings, cli, masks, stylize, transfer
from engine.losses import gram, guided_gram
from engine.params import ParamError
from engine.vgg import LAYERS, load_vgg

S = 64  # side of every synthetic picture


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def picture(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.asarray(array, dtype=np.uint8))


@pytest.fixture(scope="module")
def stripes() -> Image.Image:
    """Style A: red diagonal stripes on cream."""
    y, x = np.mgrid[:S, :S]
    return picture(np.where((((x + y) // 4) % 2 == 0)[..., None], [220, 30, 30], [250, 235, 225]))


@pytest.fixture(scope="module")
def dots() -> Image.Image:
    """Style B: blue dots on pale blue."""
    y, x = np.mgrid[:S, :S]
    return picture(np.where((((x % 8 - 3.5) ** 2 + (y % 8 - 3.5) ** 2) < 6)[..., None], [30, 60, 220], [225, 235, 250]))


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A smooth grey ramp: no colour of its own, and low gradients, so seams show."""
    y, x = np.mgrid[:S, :S]
    return picture(np.stack([100 + x + y] * 3, -1))


@pytest.fixture(scope="module")
def halves() -> Image.Image:
    """White left half, black right half."""
    mask = np.zeros((S, S, 3))
    mask[:, : S // 2] = 255
    return picture(mask)


def run(photo: Image.Image, styles: list[Image.Image], mask: Image.Image | None = None, **values: object
        ) -> np.ndarray:
    settings = Settings.parse({"size": S, "steps": 3, "scales": 1, "seed": 1, **values})
    return np.asarray(stylize(photo, styles, settings, mask=mask).image, dtype=float)


# --- guided Gram matrices --------------------------------------------------------------------------

def test_binary_guided_gram_is_the_plain_gram_of_the_regions_pixels() -> None:
    feats = torch.randn(1, 5, 6, 7, dtype=torch.float64)
    guide = (torch.rand(6, 7) > 0.6).double()
    inside = feats[..., guide.bool()]  # 1×C×M' (only the region's pixels)
    plain = inside @ inside.transpose(1, 2) / (5 * inside.shape[-1])
    assert torch.allclose(guided_gram(feats, guide), plain)
    assert torch.allclose(guided_gram(feats, torch.ones(6, 7, dtype=torch.float64)), gram(feats))
    # A feathered guide weighs each pixel by g²: the same as repeating pixels in proportion.
    soft = guide * 0.5 + 0.25
    weighted = feats * soft
    assert torch.allclose(guided_gram(feats, soft), weighted.flatten(2) @ weighted.flatten(2).transpose(1, 2)
                          / (5 * soft.square().sum()))


def test_guides_reach_every_layer_at_its_resolution_and_erode_inward() -> None:
    onehot = torch.zeros(2, S, S)
    onehot[0, :, : S // 2], onehot[1, :, S // 2:] = 1, 1
    soft = masks.guides(onehot, (S, S), feather=8)
    assert torch.allclose(soft.sum(0), torch.ones(S, S))
    assert soft[0, 0, S // 2 - 1] < 0.9 and soft[0, 0, 0] > 0.99  # blurred at the seam only
    vgg = load_vgg("cpu")
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    feats = vgg(torch.rand(1, 3, S, S) * 255, layers)
    plain = masks.layer_guides(onehot[0], layers, erode=False)
    eroded = masks.layer_guides(onehot[0], layers, erode=True)
    for name in layers:
        assert plain[name].shape == feats[name].shape[2:]
        assert eroded[name].sum() < plain[name].sum()
        assert eroded[name][:, -1].sum() == 0  # the far side stays out


# --- the mask and its mapping ----------------------------------------------------------------------

def test_default_mapping_and_explicit_regions() -> None:
    one, two = Settings(), Settings()
    assert masks.plan(one, 1, masked=True) == (masks.Region("white", "1"), masks.Region("black", "photo"))
    assert masks.plan(two, 2, masked=True) == (masks.Region("white", "1"), masks.Region("black", "2"))
    explicit = Settings.parse({"regions": "red:1, Blue:2,#00ff00:photo"})
    assert [(r.colour, r.target) for r in masks.plan(explicit, 2, masked=True)] == [
        ("red", "1"), ("blue", "2"), ("#00ff00", "photo")]
    with pytest.raises(ParamError, match="only 1 style image"):
        masks.plan(Settings.parse({"regions": "red:2,blue:photo"}), 1, masked=True)
    with pytest.raises(ParamError, match="say which colour gets which"):
        masks.plan(Settings(), 3, masked=True)
    with pytest.raises(ParamError, match="nothing would be painted"):
        masks.plan(Settings.parse({"regions": "white:photo"}), 1, masked=True)
    with pytest.raises(ParamError, match="fine_style needs two or more"):
        masks.plan(Settings.parse({"fine_style": "1"}), 1, masked=False)


def test_mask_colours_match_with_a_tolerance_and_strays_are_refused() -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((40, 60, 3))
    mask[:, :30] = [255, 0, 0]
    mask[:, 30:] = [0, 0, 255]
    noisy = picture(np.clip(mask + rng.normal(0, 25, mask.shape), 0, 255))  # JPEG-like noise
    onehot = masks.labels(noisy, ["red", "blue"], (30, 20))
    assert onehot.shape == (2, 20, 30)
    assert onehot[0, :, :15].min() == 1 and onehot[1, :, 15:].min() == 1
    green = mask.copy()
    green[:10] = [0, 255, 0]
    with pytest.raises(ParamError, match="25% of the mask is none of its colours.*#00ff00"):
        masks.labels(picture(green), ["red", "blue"], (60, 40))


def test_a_mask_of_another_shape_is_refused(photo: Image.Image, stripes: Image.Image) -> None:
    with pytest.raises(EngineError, match="shapes differ by 3%"):
        stylize(photo, [stripes], Settings.parse({"size": S, "steps": 1}), mask=Image.new("RGB", (103, 100)))
    stylize(photo, [stripes], Settings.parse({"size": S, "steps": 1, "scales": 1}),
            mask=Image.new("RGB", (101, 100), "white"))  # 1 % off: scaled, not refused


# --- what the regions become -----------------------------------------------------------------------

def test_each_half_takes_its_own_style(photo: Image.Image, stripes: Image.Image, dots: Image.Image,
                                       halves: Image.Image) -> None:
    """Left half → red stripes, right half → blue dots: each half is ≥ 3× nearer its own style than the
    other, in mean colour and in relu1_1/relu2_1 Grams. The style dominates (content_weight 0.01, no TV)
    and speaks through the layers measured, so 60 Adam steps converge; at the default weights 60 steps
    barely move the colours. (Measured: worst ratio 0.26, right half's colour.)"""
    result = run(photo, [stripes, dots], halves, steps=60, optimizer="adam", lr=25, content_weight=0.01,
                 tv_weight=0, style_weight=1e5, feather=0, style_layers="relu1_1,relu2_1")
    vgg = load_vgg("cpu")

    def grams(image: Image.Image) -> dict[str, torch.Tensor]:
        feats = vgg(transfer.to_tensor(image)[None], ("relu1_1", "relu2_1"))
        return {k: gram(v) for k, v in feats.items()}

    def mean_colour(image: np.ndarray | Image.Image) -> np.ndarray:
        return np.asarray(image, dtype=float).reshape(-1, 3).mean(0)

    styles = {"stripes": stripes, "dots": dots}
    for part, own, other in ((result[:, : S // 2], "stripes", "dots"), (result[:, S // 2:], "dots", "stripes")):
        colour = mean_colour(part)
        assert (np.linalg.norm(colour - mean_colour(styles[own]))
                <= np.linalg.norm(colour - mean_colour(styles[other])) / 3), own
        mine, theirs, ours = grams(styles[own]), grams(styles[other]), grams(picture(part))
        for layer in ("relu1_1", "relu2_1"):
            assert (ours[layer] - mine[layer]).norm() <= (ours[layer] - theirs[layer]).norm() / 3, (own, layer)


def test_a_photo_region_stays_the_photo(photo: Image.Image, stripes: Image.Image, halves: Image.Image) -> None:
    """One style and a black-and-white mask: black is the photo, pasted back through the feathered mask."""
    result = run(photo, [stripes], halves, steps=4, optimizer="adam", lr=10, feather=4)
    kept = result[:, S // 2 + 6:]  # the photo's half, eroded by 1.5 × feather
    assert np.abs(kept - np.asarray(photo, dtype=float)[:, S // 2 + 6:]).mean() <= 2
    assert np.abs(result[:, : S // 2 - 6] - np.asarray(photo, dtype=float)[:, : S // 2 - 6]).mean() > 10


def test_feather_softens_the_seam(photo: Image.Image, stripes: Image.Image, halves: Image.Image) -> None:
    def seam_gradient(image: np.ndarray) -> float:  # mean |horizontal step| over the 4 columns at the seam
        return float(np.abs(np.diff(image[:, S // 2 - 3: S // 2 + 2], axis=1)).mean())

    # A strong style, so that 8 steps paint clear stripes up to the seam (the default weight barely starts).
    hard = run(photo, [stripes], halves, steps=8, optimizer="adam", lr=10, feather=0, style_weight=1000)
    soft = run(photo, [stripes], halves, steps=8, optimizer="adam", lr=10, feather=8, style_weight=1000)
    assert seam_gradient(soft) <= 0.7 * seam_gradient(hard)


def test_masks_work_coarse_to_fine_with_colour_control_and_lbfgs(photo: Image.Image, stripes: Image.Image,
                                                                 dots: Image.Image, halves: Image.Image) -> None:
    for colour in ("histogram", "luminance"):
        result = run(photo, [stripes, dots], halves, scales=2, steps=4, preserve_color=colour,
                     regions="white:blend,black:2", style_blend="1,1")
        assert result.shape == (S, S, 3) and np.isfinite(result).all()


def test_histogram_matching_uses_each_styles_own_region() -> None:
    content = torch.zeros(3, 8, 8)
    content[0, :, :4] = 200  # red on the left
    content[2, :, 4:] = 200  # blue on the right
    hard = torch.zeros(8, 8, dtype=torch.long)
    hard[:, 4:] = 1
    control = transfer.Control((masks.Region("white", "1"), masks.Region("black", "2")),
                                ({"relu1_1": torch.tensor([1.0, 0.0])}, {"relu1_1": torch.tensor([0.0, 1.0])}),
                                None, (None, None))
    left = transfer.colours_for(0, content, hard, control, list(control.mixes))
    assert left.shape == (3, 32) and (left[0] == 200).all() and (left[2] == 0).all()


# --- scale control and layers ----------------------------------------------------------------------

def test_fine_style_paints_the_fine_layers_and_the_others_the_rest() -> None:
    blend = torch.tensor([0.5, 0.5])
    assert masks.mix(None, "relu1_1", blend, 2).tolist() == [0, 1]
    assert masks.mix(None, "relu2_1", blend, 2).tolist() == [0, 1]
    assert masks.mix(None, "relu3_1", blend, 2).tolist() == [1, 0]
    assert masks.mix(masks.Region("red", "2"), "relu4_1", blend, 1).tolist() == [0, 1]
    assert masks.mix(None, "relu4_1", blend, None).tolist() == [0.5, 0.5]


def test_fine_style_changes_the_picture(photo: Image.Image, stripes: Image.Image, dots: Image.Image) -> None:
    assert not np.array_equal(run(photo, [stripes, dots], steps=2, fine_style=2),
                              run(photo, [stripes, dots], steps=2))


def test_layer_weights_keep_style_weights_meaning(photo: Image.Image, stripes: Image.Image) -> None:
    """Weights are normalised: one layer at weight 1 is the same objective as that layer alone."""
    alone = run(photo, [stripes], steps=2, style_layers="relu2_1", deterministic=True)
    weighted = run(photo, [stripes], steps=2, style_layers="relu2_1,relu3_1", style_layer_weights="1,0",
                   deterministic=True)
    assert np.allclose(alone, weighted, atol=1)


def test_a_deeper_layer_builds_a_deeper_trunk(photo: Image.Image, stripes: Image.Image) -> None:
    run(photo, [stripes], steps=1, content_layers="relu5_4")
    assert len(load_vgg("cpu", None, LAYERS["relu5_4"]).trunk) == LAYERS["relu5_4"] + 1
    assert len(load_vgg("cpu").trunk) == LAYERS["relu5_1"] + 1


# --- command line ----------------------------------------------------------------------------------

def test_cli_paints_with_a_mask(tmp_path: Path, photo: Image.Image, stripes: Image.Image, dots: Image.Image,
                                halves: Image.Image) -> None:
    paths = [tmp_path / name for name in ("photo.png", "a.png", "b.png", "mask.png", "out.png")]
    for image, path in zip((photo, stripes, dots, halves), paths):
        image.save(path)
    args = [str(p) for p in paths[:3]] + ["--mask", str(paths[3]), "-o", str(paths[4]), "--size", "64",
                                          "--steps", "1", "--scales", "1", "--regions", "white:2,black:1"]
    assert cli.main(args) == 0 and Image.open(paths[4]).size == (S, S)
    Image.new("RGB", (64, 80)).save(paths[3])
    assert cli.main(args) == 1
