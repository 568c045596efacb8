"""bot.parsing: `!stylize` text → links + Settings, and which picture is the photo."""

from __future__ import annotations

import math
import re

import pytest
from discord.utils import escape_mentions
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from bot.config import Limits
from bot.render import settings_lines, settings_text
from bot.parsing import (ECHO, Arguments, UsageError, check_blend, inert, parse_settings, pick_inputs,
                         pick_slash_inputs, quoted_name, split_arguments)
from engine import SPECS, ParamError, Settings, Spec
from engine.memory import predict_peak_bytes
from engine.params import Pixels, Regions
from test_params import extreme_values

BASE = Settings()


def test_links_and_pairs() -> None:
    args = split_arguments("https://a.example/x.png?w=1  <http://b.example/y.jpg> steps=300 "
                           "style_weight=1e5 preserve_color=luminance")
    assert args.links == ("https://a.example/x.png?w=1", "http://b.example/y.jpg")
    assert args.raw == {"steps": "300", "style_weight": "1e5", "preserve_color": "luminance"}
    assert split_arguments("   ") == Arguments()


@pytest.mark.parametrize("text, message", [
    ("steps", "I don't understand 'steps'"),
    ("=5", r"I don't understand '\\=5'"),
    ("steps=1 steps=2", "'steps' was given twice"),
    ("ftp://example.com/a.png", "I don't understand"),
])
def test_words_that_are_neither(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        split_arguments(text)


def test_settings_on_top_of_server_defaults() -> None:
    base = Settings.parse({"size": 256, "style_weight": 5})
    settings, given = parse_settings({"Steps": "2", "image_size": "64", "colour": "histogram"}, base)
    assert (settings.steps, settings.size, settings.preserve_color, settings.style_weight) == (2, 64, "histogram", 5)
    assert given == {"steps", "size", "preserve_color"}  # canonical names, for the echo


def test_seed_notebook_names() -> None:
    settings, given = parse_settings(split_arguments("num_epoch=4 steps_per_epoch=25").raw, BASE)
    assert settings.steps == 100 and settings.epoch_length == 25 and given == {"num_epoch", "steps_per_epoch"}


@pytest.mark.parametrize("text, message", [
    ("steps=abc", "steps must be a number, got 'abc'"),
    ("stile_weight=1", "unknown setting 'stile_weight' — did you mean style_weight?"),
    ("size=10", "size must be between 64 and 4096"),
    ("size=64 image_size=64", "size was given twice"),
    ("optimizer=sgd", "optimizer must be one of lbfgs, adam"),
])
def test_friendly_refusals(text: str, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        parse_settings(split_arguments(text).raw, BASE)


@pytest.mark.parametrize("text, message", [
    (f"<@{'1' * 18}>=1", f"unknown setting '\\<\\@\u200b{'1' * 18}\\>' (see `help` for the list)"),
    ("[Free_Nitro](https://evil.example)=1", r"unknown setting '\[Free\_Nitro\]\(https\:\/\/evil\.example\)'"),
    ("steps=@everyone", "steps can't be '\\@\u200beveryone' — values are numbers or words"),
    ("k" * 1985 + "=1", f"unknown setting '{'k' * (ECHO - 1)}…' (see"),
    ("seed=" + "9" * 101, f"seed can't be '{'9' * (ECHO - 1)}…'"),
    ("**bold**", r"I don't understand '\*\*bold\*\*'"),
])
def test_echoed_text_is_clipped_and_escaped(text: str, message: str) -> None:
    """Nothing a user types comes back as a ping, a masked link or formatting, or longer than ECHO."""
    with pytest.raises((UsageError, ParamError)) as info:
        parse_settings(split_arguments(text).raw, BASE)
    assert str(info.value).startswith(message)


def test_blend_needs_one_weight_per_style() -> None:
    check_blend(Settings.parse({"style_blend": "2,1"}), 2)
    check_blend(BASE, 3)
    with pytest.raises(ParamError, match="style_blend has 2 weights but you gave 1 style image — give one"):
        check_blend(Settings.parse({"style_blend": "2,1"}), 1)


def test_the_mask_is_a_link_or_the_last_attachment() -> None:
    args = split_arguments("mask=<https://m.example/mask.png> https://a.example/p.png regions=red:1,blue:photo")
    assert args.mask == "https://m.example/mask.png" and args.links == ("https://a.example/p.png",)
    assert parse_settings(args.raw, BASE)[0].regions == (("red", "1"), ("blue", "photo"))
    assert split_arguments("mask=LAST").mask == "last"
    assert pick_inputs(["r"], ["a1", "a2", "m"], ["l1"], max_styles=3, mask="last") == ("r", ["a1", "a2", "l1"], "m")
    assert pick_inputs([], ["a1", "a2"], [], max_styles=3, mask="https://m") == ("a1", ["a2"], "https://m")
    with pytest.raises(UsageError, match="nothing is attached"):
        pick_inputs([], [], ["l1", "l2"], max_styles=3, mask="last")
    with pytest.raises(UsageError, match="got only one image"):
        pick_inputs([], ["a1", "m"], [], max_styles=3, mask="last")
    with pytest.raises(UsageError, match="mask= takes a link to the mask picture, or `last`"):
        split_arguments("mask=first")
    with pytest.raises(UsageError, match="'mask' was given twice"):
        split_arguments("mask=last mask=https://m")


def test_regions_and_fine_style_must_name_existing_styles() -> None:
    check_blend(Settings.parse({"regions": "red:1,blue:2"}), 2, masked=True)
    with pytest.raises(ParamError, match="sends blue to style 2, but there is only 1 style image"):
        check_blend(Settings.parse({"regions": "red:1,blue:2"}), 1, masked=True)
    with pytest.raises(ParamError, match="fine_style=3, but there are only 2 style images"):
        check_blend(Settings.parse({"fine_style": "3"}), 2)


def test_inputs_in_order() -> None:
    assert pick_inputs([], ["a1", "a2"], [], max_styles=3) == ("a1", ["a2"], None)
    assert pick_inputs([], ["a1"], ["l1"], max_styles=3) == ("a1", ["l1"], None)
    assert pick_inputs([], [], ["l1", "l2", "l3"], max_styles=3) == ("l1", ["l2", "l3"], None)
    assert pick_inputs(["r"], ["a1", "a2"], ["l1"], max_styles=3) == ("r", ["a1", "a2", "l1"], None)
    with pytest.raises(UsageError, match="got only one image") as info:
        pick_inputs([], ["a1"], [], max_styles=3)
    assert info.value.show_usage
    with pytest.raises(UsageError, match="got no image"):
        pick_inputs([], [], [], max_styles=3)
    with pytest.raises(UsageError, match="That's 4 style images; the limit is 3"):
        pick_inputs(["r"], ["a", "b"], ["c", "d"], max_styles=3)


def test_slash_inputs_by_name() -> None:
    assert pick_slash_inputs("c", None, [None, "s2", "l"], max_styles=3) == ("c", ["s2", "l"])
    assert pick_slash_inputs(None, "cl", ["s", None, None], max_styles=3) == ("cl", ["s"])
    with pytest.raises(UsageError, match="not both"):
        pick_slash_inputs("c", "cl", ["s"], max_styles=3)
    with pytest.raises(UsageError, match=r"I need the photo \(content\)"):
        pick_slash_inputs(None, None, ["s"], max_styles=3)
    with pytest.raises(UsageError, match=r"I need a style image \(style\)"):
        pick_slash_inputs("c", None, [None, None, None], max_styles=3)
    with pytest.raises(UsageError, match="limit is 1"):
        pick_slash_inputs("c", None, ["s", "t"], max_styles=1)


# --------------------------------------------------------------------------- property tests


def _number_text(spec: Spec) -> st.SearchStrategy[str]:
    lo = spec.min if spec.min is not None else -1e6
    hi = spec.max if spec.max is not None else 1e6
    if spec.type is int:
        return st.integers(int(math.ceil(lo)), int(hi)).map(str)
    return st.floats(lo, hi, allow_nan=False).map(repr)


def valid_text(spec: Spec) -> st.SearchStrategy[str]:
    """Text a user could type for `spec` that the engine must accept."""
    if spec.choices:
        return st.sampled_from(spec.choices)
    if spec.type is bool:
        return st.sampled_from(["true", "false", "yes", "no", "on", "off", "1", "0"])
    if spec.type is Regions:
        return st.sampled_from(["white:1", "red:1,#00ff00:photo", "blue:blend"])
    if spec.type is Pixels:
        return st.integers(int(spec.min), int(spec.max)).map(str)
    if spec.name == "style_layer_weights":  # one per default style layer, short enough to type
        return st.lists(st.integers(1, 1000).map(str), min_size=len(BASE.style_layers),
                        max_size=len(BASE.style_layers)).map(",".join)
    if spec.type is tuple:
        return st.lists(_number_text(spec), min_size=1, max_size=3).map(",".join)
    return _number_text(spec)


def _compatible(pairs: dict[str, str]) -> bool:
    """steps must agree with num_epoch × steps_per_epoch when all three are given, and style_layer_weights
    with style_layers, and size is not given with pixels (the engine refuses otherwise)."""
    if "style_layer_weights" in pairs and "style_layers" in pairs:
        return False
    if "size" in pairs and "pixels" in pairs:  # one or the other
        return False
    if "steps" in pairs and "steps_per_epoch" in pairs:
        implied = int(pairs.get("num_epoch", BASE.num_epoch)) * int(pairs["steps_per_epoch"])
        return int(pairs["steps"]) == implied
    if "steps_per_epoch" in pairs:
        return int(pairs.get("num_epoch", BASE.num_epoch)) * int(pairs["steps_per_epoch"]) <= 5000
    return True


valid_pairs = st.lists(st.sampled_from(SPECS), unique=True, max_size=len(SPECS)).flatmap(
    lambda specs: st.fixed_dictionaries({spec.name: valid_text(spec) for spec in specs})).filter(_compatible)


@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(valid_pairs)
def test_typed_pairs_parse_like_the_dict(pairs: dict[str, str]) -> None:
    text = " ".join(f"{key}={value}" for key, value in pairs.items())
    settings, given_names = parse_settings(split_arguments(text).raw, BASE)
    assert settings == Settings.parse(pairs, BASE)
    assert given_names == set(pairs)


words = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)


@hyp_settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(words, st.builds("{}={}".format, st.sampled_from(
    [n for s in SPECS for n in (s.name, *s.aliases)] + ["x", "Size", "STEPS"]), words)), max_size=6))
def test_junk_raises_only_user_errors(parts: list[str]) -> None:
    try:
        args = split_arguments(" ".join(parts))
        parse_settings(args.raw, BASE)
    except (UsageError, ParamError) as error:
        assert str(error)


hostile = st.sampled_from(["<@123456789012345678>", "<@&123456789012345678>", "@everyone", "@here",
                           "[x](https://evil.example)", "**", "`", "_", "~~", "||", "> ", "# ", "x" * 60])


@hyp_settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(hostile, words), min_size=1, max_size=4).map("".join),
       st.lists(st.one_of(hostile, words), max_size=4).map("".join))
def test_no_refusal_carries_a_ping_or_a_link(key: str, value: str) -> None:
    try:
        parse_settings(split_arguments(f"{key}={value}").raw, BASE)
    except (UsageError, ParamError) as error:
        text = str(error)
        assert escape_mentions(text) == text  # no mention left that could ping
        assert not re.search(r"(?<!\\)\[[^\]]*\]\(", text) and len(text) < 300


def test_every_choice_is_accepted() -> None:
    """Including the ones that look like "no value" (preserve_color=none, precision=auto)."""
    for spec in SPECS:
        for choice in spec.choices:
            assert getattr(Settings.parse({spec.name: choice}), spec.name) in (choice, (choice,))  # Names: a list


# ------------------------------------------------------------------------------ user text, inert

NITRO = "x` [Free Nitro](https://evil.example/nitro) `"  # breaks out of `code` around it, then a live link


def live(text: str) -> list[str]:
    """What would render live in a Discord message or embed: masked links, mentions, @everyone/@here, inline
    code and links (backslash-escaped punctuation starts and ends nothing)."""
    plain = re.sub(r"\\[!-/:-@\[-`{-~]", "\0", text)
    return re.findall(r"\[[^\]\0]*\]\(|<[@#][!&]?\d+>|@(?:everyone|here)|`[^`]+`|https?:/", plain)


@pytest.mark.parametrize("text", [NITRO, "[a](https://a.example) and [b](https://b.example)",
                                  "<@123456789012345678> <@&42> <#7> @everyone @here",
                                  "||spoiler|| **bold** ~~gone~~ __under__ <https://evil.example>"])
def test_inert_text_renders_nothing_and_keeps_every_character(text: str) -> None:
    """Issue 22, 3 and 9: escape_markdown left a second link live, and mentions as they were."""
    assert live(text) and not live(inert(text))
    assert re.sub(r"\\(.)", r"\1", inert(text)).replace("\u200b", "") == text  # Discord shows `\\x` as x


@hyp_settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(hostile, st.text(max_size=8)), max_size=8).map("".join))
def test_inert_leaves_nothing_live(text: str) -> None:
    assert not live(inert(text))
    assert not live(quoted_name(text)) or quoted_name(text) == f"`{text}`"  # a real style name, as code


def test_inert_text_cannot_turn_the_bots_words_around() -> None:
    """A right-to-left override in a credit would show the rest of the bot's line backwards."""
    assert inert("Monet\u202e — evil\u2066x\u2069") == "Monet — evilx"


def test_a_style_name_shows_as_code_only_when_it_is_one() -> None:
    assert quoted_name("starry_night") == "`starry_night`"
    assert not live(quoted_name(NITRO)) and "Free Nitro" in quoted_name(NITRO)


@pytest.mark.parametrize("name", [spec.name for spec in SPECS])
def test_every_setting_with_extreme_numbers_meets_only_user_errors_on_the_way_to_the_queue(name: str) -> None:
    """Issue 22, 8, at the bot: every extreme value of every setting, typed, goes through what a job meets
    before it is queued — the parser, the caps (photo shape known), the memory model, the animation caps,
    the blend and mask plan, the echo — and meets nothing but a refusal meant for the user."""
    caps = Limits(max_size=1024).caps_for([])
    for value in extreme_values():
        try:
            settings, _ = parse_settings(split_arguments(f"{name}={value}").raw, BASE)
            for shape in ((3200, 100), (100, 100)):
                caps.check(settings, shape)
                predict_peak_bytes(settings.for_shape(shape), shape, 2, frames=3)
                caps.motion.check(settings.for_shape(shape), 3, shape)
            check_blend(settings, 2)
            assert settings_lines(settings, frozenset({name})) and settings_text(settings) is not None
        except (UsageError, ParamError) as error:
            assert str(error) and len(str(error)) < 400
