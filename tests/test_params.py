"""The hyperparameter declaration: every refusal names the problem, every alias and derived value works."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

from engine.params import SPEC, SPECS, ParamError, Settings, format_value


@pytest.mark.parametrize("raw, message", [
    ({"size": "5000"}, "size must be between 64 and 4096, got 5000"),
    ({"size": "63"}, "size must be between 64 and 4096, got 63"),
    ({"steps": "0"}, "steps must be between 1 and 5000, got 0"),
    ({"steps": "1.5"}, "steps must be a whole number"),
    ({"steps": "abc"}, "steps must be a number, got 'abc'"),
    ({"style_weight": "nan"}, "style_weight must be a finite number"),
    ({"content_weight": "inf"}, "content_weight must be a finite number"),
    ({"tv_weight": "-1"}, "tv_weight must be between 0"),
    ({"style_scale": "0"}, "style_scale must be between 0.1 and 4"),
    ({"pooling": "mx"}, "did you mean max"),
    ({"preserve_color": "lumin"}, "did you mean luminance"),
    ({"optimizer": "sgd"}, "optimizer must be one of lbfgs, adam"),
    ({"preview": "maybe"}, "preview must be true or false"),
    ({"style_blend": "1,x"}, "style_blend must be a number"),
    ({"style_blend": "1,-2"}, "style_blend must be between 0 and 1000"),
    ({"seed": "-3"}, "seed must be between 0"),
    ({"stlye_weight": "1"}, "unknown setting 'stlye_weight' — did you mean style_weight?"),
    ({"bogus": "1"}, "unknown setting 'bogus'"),
    ({"size": ""}, "size needs a value"),
    ({"steps": "10", "iterations": "20"}, "steps was given twice"),
    ({"num_epoch": "5", "steps_per_epoch": "10", "steps": "20"}, "disagrees with num_epoch × steps_per_epoch = 50"),
    ({"num_epoch": "100", "steps_per_epoch": "100"}, "steps must be between 1 and 5000, got 10000"),
    ({"regions": "red"}, "regions pairs look like colour:target"),
    ({"regions": "rde:1"}, "'rde' is not a colour I know (white, black, red"),
    ({"regions": "red:sky"}, "the target of red must be a style number, photo"),
    ({"regions": "red:1,red:photo"}, "regions names red twice"),
    ({"style_layers": "relu1_1,relu6_1"}, "'relu6_1' is not a VGG-19 layer"),
    ({"content_layers": "relu4_3,relu4_3"}, "content_layers names a layer twice"),
    ({"style_layer_weights": "1,2"}, "style_layer_weights has 2 weights for 5 style_layers"),
    ({"style_layer_weights": "0,0,0,0,0"}, "style_layer_weights must not all be zero"),
    ({"fine_style": "0"}, "fine_style must be between 1 and 10"),
    ({"pixels": "0.25mp", "size": "512"}, "give size (the longest side) or pixels (the pixel count), not both"),
    ({"pixels": "20mp"}, "pixels must be between 4096 and 16777216, got 20000000"),
    ({"pixels": "1000"}, "pixels must be between 4096 and 16777216, got 1000"),
    ({"pixels": "lots"}, "pixels must be a number, got 'lots'"),
    ({"pixels": "0.001mp"}, "pixels must be between 4096 and 16777216, got 1000"),
])
def test_bad_values_are_refused_with_a_clear_message(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ParamError) as error:
        Settings.parse(raw)
    assert message in str(error.value)


def test_defaults_are_valid_for_their_own_specs() -> None:
    for spec in SPECS:
        if spec.default is not None:
            assert spec.convert(spec.default) == spec.default, spec.name


def test_aliases_case_and_dashes() -> None:
    settings = Settings.parse({"Style-Weight": "1e5", "iterations": "40", "color": "Luminance", "preview": "yes"})
    assert settings.style_weight == 1e5 and settings.steps == 40
    assert settings.preserve_color == "luminance" and settings.preview is True


def test_seed_notebook_epochs() -> None:
    settings = Settings.parse({"num_epoch": "4", "steps_per_epoch": "25"})
    assert settings.steps == 100 and settings.epoch_length == 25
    derived = Settings.parse({"steps": "95", "num_epoch": "10"})
    assert derived.epoch_length == 10 and derived.steps_per_epoch is None
    assert dict((spec.name, value) for spec, value in derived.items())["steps_per_epoch"] == 10
    # A server default for steps_per_epoch gives way when a user asks for a number of steps.
    base = Settings.parse({"steps_per_epoch": "50"})
    assert Settings.parse({"steps": "30"}, base).epoch_length == 3


def test_mappings_and_layer_lists_round_trip_through_their_text() -> None:
    settings = Settings.parse({"regions": "Red:1, #00FF00:photo,white:blend", "style_layers": "relu1_1,relu5_4",
                               "style_layer_weights": "3,1"})
    assert settings.regions == (("red", "1"), ("#00ff00", "photo"), ("white", "blend"))
    assert settings.style_layers == ("relu1_1", "relu5_4")
    shown = {spec.name: format_value(value) for spec, value in settings.items()}
    assert shown["regions"] == "red:1,#00ff00:photo,white:blend" and shown["style_layers"] == "relu1_1,relu5_4"
    assert Settings.parse({k: shown[k] for k in ("regions", "style_layers", "style_layer_weights")}) == settings


def test_base_settings_are_the_starting_point() -> None:
    base = Settings.parse({"size": "256", "style_weight": "1e3"})
    settings = Settings.parse({"steps": "10"}, base)
    assert (settings.size, settings.style_weight, settings.steps) == (256, 1e3, 10)


def test_optional_values_accept_auto() -> None:
    assert Settings.parse({"seed": "random"}).seed is None
    assert Settings.parse({"style_blend": "2, 1"}).style_blend == (2.0, 1.0)


def test_every_spec_has_help_and_a_describable_range() -> None:
    for spec in SPECS:
        assert spec.help and spec.describe_range()
    assert SPEC["size"].describe_range() == "64–4096"
    assert format_value(1e5) == "1e+05" and format_value(0.5) == "0.5" and format_value(None) == "auto"


@given(st.integers(64, 4096), st.floats(0, 1e12, allow_nan=False), st.sampled_from(["none", "luminance"]))
def test_valid_values_round_trip_through_text(size: int, weight: float, color: str) -> None:
    settings = Settings.parse({"size": str(size), "style_weight": repr(weight), "preserve_color": color})
    assert settings.size == size and math.isclose(settings.style_weight, weight) and settings.preserve_color == color


@given(st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=4))
def test_junk_only_ever_raises_param_error(raw: dict[str, str]) -> None:
    try:
        Settings.parse(raw)
    except ParamError:
        pass


@pytest.mark.parametrize("text, count", [("262144", 262144), ("0.25mp", 250000), ("0.25 MP", 250000),
                                         ("1m", 1000000), (65536, 65536)])
def test_pixels_take_a_count_or_megapixels(text: object, count: int) -> None:
    assert Settings.parse({"pixels": text}).pixels == count


@pytest.mark.parametrize("shape, side", [((512, 512), 512), ((1024, 256), 1024), ((300, 1200), 1024),
                                         ((3000, 2000), 627), ((10000, 10), 4096)])
def test_pixels_give_every_shape_its_share(shape: tuple[int, int], side: int) -> None:
    settings = Settings.parse({"pixels": 512 * 512})
    assert settings.long_side(shape) == side
    assert settings.for_shape(shape).size == side
    if side < 4096:  # within size's range the pixel count is kept, whatever the aspect ratio
        w, h = shape
        assert abs(side * side * min(w, h) / max(w, h) / 512**2 - 1) < 0.01


def test_size_overrides_a_default_pixel_count() -> None:
    base = Settings.parse({"pixels": "1mp"})
    assert Settings.parse({"size": "300"}, base).pixels is None
    assert Settings.parse({"steps": "10"}, base).pixels == 1_000_000
    assert Settings.parse({"size": "300"}).for_shape((1000, 10)).size == 300  # size alone: untouched


EXTREME = ["inf", "-inf", "nan", "-nan", "infinity", "1e308", "-1e308", "1e309", "1e-400", "-0", "-0.0", "+0", "0x10",
           "1_000", "9" * 400, "-" + "9" * 400, "1e303mp", "1e309mp", "infmp", "nanmp", "-1e303m", "0.000001mp",
           "١٢٣", "１２３", "²", "1e", ".", "+", "-", "e5", "1e5.5", "1.7976931348623157e308", "4.9e-324",
           "1e-324mp", "2e31", "2147483648", "-2147483649", "1e999999999", " 5 ", "5\u00a0", "mp", "m", "0", "True", "none", "auto"]
PYTHON_NUMBERS = [math.inf, -math.inf, math.nan, 1e308, -0.0, 5e-324, 10**400, -(10**400), 2**63, True]


def extreme_values() -> list[object]:
    """Every extreme number alone, in a comma list, as a region's target, and as a Python value."""
    return [*EXTREME, *(f"{v},{v}" for v in EXTREME), *(f"red:{v}" for v in EXTREME), *PYTHON_NUMBERS]


def taken_or_refused(name: str, value: object) -> None:
    try:
        settings = Settings.parse({name: value})
    except ParamError as error:
        assert str(error) and len(str(error)) < 300, str(error)
    else:
        assert 64 <= settings.for_shape((32, 1)).size <= 4096 and 64 <= settings.long_side((1, 32)) <= 4096


@pytest.mark.parametrize("name", [spec.name for spec in SPECS])
def test_every_setting_takes_or_refuses_extreme_numbers(name: str) -> None:
    """Issue 22, 8: pixels=1e303mp raised OverflowError ("went wrong on my side"); lists and regions given a
    Python number raised TypeError, a region's target '²' ValueError, and refusals quoted 400 digits. Every
    setting, given any extreme number as text or as a Python value (a slash option), takes it or refuses it
    with a short ParamError."""
    for value in extreme_values():
        taken_or_refused(name, value)


@given(st.sampled_from([spec.name for spec in SPECS]),
       st.one_of(st.floats(), st.integers(), st.text(st.characters(categories=["Nd", "No", "Pd", "Po", "Ll"]),
                                                     max_size=12),
                 st.builds("{}mp".format, st.floats())))
def test_every_setting_takes_or_refuses_random_numbers(name: str, value: object) -> None:
    taken_or_refused(name, value)


def test_a_pixel_count_past_infinity_is_refused_in_words() -> None:
    with pytest.raises(ParamError, match=r"pixels must be between 4096 and 16777216, got inf"):
        Settings.parse({"pixels": "1e303mp"})
