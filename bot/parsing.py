"""Turn what a user typed after `!stylize` into links and Settings, and pick content vs. style inputs.

Pure text in, values or a user-facing error out (UsageError, or the engine's ParamError): no
Discord objects here, so all of it is unit-tested. Hyperparameter names, aliases, types and ranges
come from engine.params via Settings.parse; nothing about a parameter is restated here.

Whatever a user typed may come back in an error, so it must not be able to ping, link or format in
the bot's voice: our own messages quote it through `echo`, and `parse_settings` lets only keys and
values shaped like real ones (short, letters, digits and `_.,+-`) reach the engine, whose messages
quote them as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine import SPECS, ParamError, Settings, masks

T = TypeVar("T")

_NAMES = {alias: spec.name for spec in SPECS for alias in (spec.name, *spec.aliases)}
ECHO = 40  # characters of user text quoted back, at most
LONGEST_VALUE = 100  # style_blend=0.25,0.3333333333333333,… is long; nothing real is longer
_KEY = re.compile(r"[A-Za-z][\w-]*", re.ASCII)  # how every setting name looks
_VALUE = re.compile(r"[\w.,+:# -]*", re.ASCII)  # numbers, words, comma lists, regions=red:1,#00ff00:photo
STYLE_KEYS = ("style", "preset")  # `style=starry_night,wave`: styles from the library, by name
STYLE_NAME = re.compile(r"[a-z0-9_-]{1,32}")


class UsageError(ValueError):
    """The request can't be understood; str(e) says how to ask. `show_usage`: append an example."""

    def __init__(self, message: str, *, show_usage: bool = False) -> None:
        super().__init__(message)
        self.show_usage = show_usage


@dataclass(frozen=True)
class Arguments:
    """The words after the command: image links in order, key=value settings as typed, the names of
    library styles (bare words, or `style=a,b`) in order, and the mask: a link, MASK_LAST (the last
    attachment), or None."""

    links: tuple[str, ...] = ()
    raw: Mapping[str, str] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    mask: str | None = None


MASK_LAST = "last"


def _unwrap(word: str) -> str:
    return word[1:-1] if word.startswith("<") and word.endswith(">") else word


def _is_link(word: str) -> bool:
    return word.lower().startswith(("http://", "https://"))


def split_arguments(text: str, *, links_allowed: bool = True) -> Arguments:
    """Split on whitespace: http(s) links (optionally <wrapped>) are inputs, key=value are settings,
    `style=a,b` and other bare words are style names (the library says whether they exist), and
    mask=LINK or mask=last names the mask picture."""
    links: list[str] = []
    raw: dict[str, str] = {}
    names: list[str] = []
    mask: str | None = None
    for word in text.split():
        if _is_link(_unwrap(word)):
            if not links_allowed:
                raise UsageError(f"'{echo(word)}' is a link, and only key=value settings go here.")
            links.append(_unwrap(word))
            continue
        if links_allowed and word.lower().startswith("mask="):
            value = _unwrap(word[5:])
            if mask is not None:
                raise UsageError("'mask' was given twice")
            if value.lower() != MASK_LAST and not _is_link(value):
                raise UsageError(f"mask= takes a link to the mask picture, or `last` for the last attachment — "
                                 f"not '{echo(value)}'", show_usage=True)
            mask = MASK_LAST if value.lower() == MASK_LAST else value
            continue
            continue
        key, sep, value = word.partition("=")
        if not sep and STYLE_NAME.fullmatch(word.lower()) and canonical(word) is None:
            names.append(word.lower())
            continue
        if not sep or not key:
            raise UsageError(f"I don't understand '{echo(word)}' — settings look like key=value "
                             "(e.g. steps=300), and images are attachments or http(s) links.", show_usage=True)
        if _normal(key) in STYLE_KEYS:
            names += style_names(value)
            continue
        if key in raw:
            raise UsageError(f"'{echo(key)}' was given twice")
        raw[key] = value
    return Arguments(tuple(links), raw, tuple(names), mask)


def style_names(text: str) -> list[str]:
    """`starry_night,wave` → the names, checked for shape only."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    for name in names:
        if not STYLE_NAME.fullmatch(name):
            raise UsageError(f"'{echo(name)}' is not a style name — names use a-z, 0-9, _ and - "
                             "(`help` has the `styles` command that lists them).")
    if not names:
        raise UsageError("style= needs one or more style names, e.g. style=starry_night,wave")
    return names


def parse_settings(raw: Mapping[str, Any], base: Settings) -> tuple[Settings, frozenset[str]]:
    """Settings.parse on top of `base`, plus the canonical names the user set (to mark in echoes).

    Keys and values that cannot be a setting's are refused here, quoted safely (see the module's note)."""
    for key, value in raw.items():
        if len(key) > ECHO or not _KEY.fullmatch(key):
            raise ParamError(f"unknown setting '{echo(key)}' (see `help` for the list)")
        if isinstance(value, str) and (len(value) > LONGEST_VALUE or not _VALUE.fullmatch(value)):
            raise ParamError(f"{key} can't be '{echo(value)}' — values are numbers or words, "
                             "e.g. steps=300 or preserve_color=luminance")
    settings = Settings.parse(raw, base)
    return settings, frozenset(_NAMES[_normal(key)] for key in raw)


def pick_inputs(replied: Sequence[T], uploads: Sequence[T], links: Sequence[T], *,
                max_styles: int, named: Sequence[T] = (), mask: str | None = None
                ) -> tuple[T, list[T], T | str | None]:
    """Content, styles and mask. Content then styles, in order: the replied-to image, then attachments,
    then links; the library styles given by name come first among the styles (style_blend follows this
    order). The mask is its own link, or with MASK_LAST the last attachment (phones name every upload
    image0.jpg, so names can't tell it apart)."""
    if mask == MASK_LAST:
        if not uploads:
            raise UsageError("mask=last takes the last attachment as the mask, but nothing is attached.")
        *uploads, mask_source = uploads
    else:
        mask_source = mask
    images = [*replied[:1], *uploads, *links]
    if not images or len(images) + len(named) < 2:
        have = "no image" if not images else "only one image"
        raise UsageError(f"I need two pictures, the photo first and then the style, but got {have}.",
                         show_usage=True)
    return images[0], _styles([*named, *images[1:]], max_styles), mask_source


def pick_slash_inputs(content: T | None, content_link: T | None, styles: Sequence[T | None], *,
                      max_styles: int, named: Sequence[T] = ()) -> tuple[T, list[T]]:
    """The slash command names its inputs: exactly one content source, one or more styles
    (presets first, then the attached or linked ones)."""
    if content is not None and content_link is not None:
        raise UsageError("Give the photo as an attachment or as a link, not both.")
    given = [*named, *(s for s in styles if s is not None)]
    photo = content if content is not None else content_link
    if photo is None or not given:
        missing = "the photo (content)" if photo is None else "a style image (style) or a preset"
        raise UsageError(f"I need {missing} — attach it or give its link.", show_usage=True)
    return photo, _styles(given, max_styles)


def _styles(styles: list[T], max_styles: int) -> list[T]:
    if len(styles) > max_styles:
        raise UsageError(f"That's {len(styles)} style images; the limit is {max_styles}.")
    return styles


def check_blend(settings: Settings, styles: int, masked: bool = False) -> None:
    """style_blend needs one weight per style image, and regions/fine_style styles that exist (the
    engine checks too, but later, after the downloads, and less kindly)."""
    if settings.style_blend is not None and len(settings.style_blend) != styles:
        raise ParamError(f"style_blend has {len(settings.style_blend)} weights but you gave {styles} "
                         f"style image{'s' if styles > 1 else ''} — give one weight per style image")
    masks.plan(settings, styles, masked)


def canonical(key: str) -> str | None:
    """The setting's own name for `key` (an alias, any case), None if it names no setting."""
    return _NAMES.get(_normal(key))


def _normal(key: str) -> str:
    """The key as Settings.parse looks it up."""
    return key.strip().lower().replace("-", "_")


_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # controls that reorder the text around them


def inert(text: str) -> str:
    """User text as the bot may show it in any message or embed, whoever reads it: every ASCII punctuation
    character backslash-escaped — Discord shows `\\x` as x for any of them, and no link `[x](url)` however
    many, `code` or break-out of it, **bold**, # heading, > quote, -# subtext, ||spoiler||, <@mention>,
    <#channel>, <:emoji:> or https:// link is left to render — and @everyone/@here broken by a zero-width
    space, so they ping nobody even where mentions are allowed; bidirectional controls, which could turn the
    bot's own words around them backwards, are dropped. Not for inside `code` (it shows backslashes)."""
    return _PUNCTUATION.sub(r"\\\1", _BIDI.sub("", text)).replace("@", "@\u200b")


def echo(text: str) -> str:
    """User text to quote in a reply: clipped to ECHO characters, then made inert."""
    return inert(text if len(text) <= ECHO else text[: ECHO - 1] + "…")


def quoted_name(name: str) -> str:
    """A style name to show: in `code` when it is one a style can have, else inert text (a name read from a
    picture's settings, or typed by a moderator, is anything: `x` [Free Nitro](https://…)` must not break out)."""
    return f"`{name}`" if STYLE_NAME.fullmatch(name) else f"'{echo(name)}'"
