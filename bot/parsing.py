"""Turn what a user typed after `!stylize` into links and Settings, and pick content vs. style inputs.

Pure text in, values or a user-facing error out (UsageError, or the engine's ParamError): no
Discord here, so all of it is unit-tested. Hyperparameter names, aliases, types and ranges come
from engine.params via Settings.parse; nothing about a parameter is restated here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine import SPECS, ParamError, Settings

T = TypeVar("T")

_NAMES = {alias: spec.name for spec in SPECS for alias in (spec.name, *spec.aliases)}
STYLE_KEYS = ("style", "preset")  # `style=starry_night,wave`: styles from the library, by name
STYLE_NAME = re.compile(r"[a-z0-9_-]{1,32}")


class UsageError(ValueError):
    """The request can't be understood; str(e) says how to ask. `show_usage`: append an example."""

    def __init__(self, message: str, *, show_usage: bool = False) -> None:
        super().__init__(message)
        self.show_usage = show_usage


@dataclass(frozen=True)
class Arguments:
    """The words after the command: image links in order, key=value settings as typed, and the
    names of library styles (bare words, or `style=a,b`) in order."""

    links: tuple[str, ...] = ()
    raw: Mapping[str, str] = field(default_factory=dict)
    names: tuple[str, ...] = ()


def split_arguments(text: str, *, links_allowed: bool = True) -> Arguments:
    """Split on whitespace: http(s) links (optionally <wrapped>) are inputs, key=value are settings,
    `style=a,b` and other bare words are style names (the library says whether they exist)."""
    links: list[str] = []
    raw: dict[str, str] = {}
    names: list[str] = []
    for word in text.split():
        unwrapped = word[1:-1] if word.startswith("<") and word.endswith(">") else word
        if unwrapped.lower().startswith(("http://", "https://")):
            if not links_allowed:
                raise UsageError(f"`{_clip(word)}` is a link, and only key=value settings go here.")
            links.append(unwrapped)
            continue
        key, sep, value = word.partition("=")
        if not sep and STYLE_NAME.fullmatch(word.lower()) and canonical(word) is None:
            names.append(word.lower())
            continue
        if not sep or not key:
            raise UsageError(f"I don't understand `{_clip(word)}` — settings look like key=value "
                             "(e.g. steps=300), and images are attachments or http(s) links.", show_usage=True)
        if _normal(key) in STYLE_KEYS:
            names += style_names(value)
            continue
        if key in raw:
            raise UsageError(f"`{_clip(key)}` was given twice")
        raw[key] = value
    return Arguments(tuple(links), raw, tuple(names))


def style_names(text: str) -> list[str]:
    """`starry_night,wave` → the names, checked for shape only."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    for name in names:
        if not STYLE_NAME.fullmatch(name):
            raise UsageError(f"`{_clip(name)}` is not a style name — names use a-z, 0-9, _ and - "
                             "(`help` has the `styles` command that lists them).")
    if not names:
        raise UsageError("style= needs one or more style names, e.g. style=starry_night,wave")
    return names


def parse_settings(raw: Mapping[str, Any], base: Settings) -> tuple[Settings, frozenset[str]]:
    """Settings.parse on top of `base`, plus the canonical names the user set (to mark in echoes)."""
    settings = Settings.parse(raw, base)
    return settings, frozenset(_NAMES[_normal(key)] for key in raw)


def pick_inputs(replied: Sequence[T], uploads: Sequence[T], links: Sequence[T], *,
                max_styles: int, named: Sequence[T] = ()) -> tuple[T, list[T]]:
    """Content then styles, in order: the replied-to image, then attachments, then links; the
    library styles given by name come first among the styles (style_blend follows this order)."""
    images = [*replied[:1], *uploads, *links]
    if not images or len(images) + len(named) < 2:
        have = "no image" if not images else "only one image"
        raise UsageError(f"I need two pictures, the photo first and then the style, but got {have}.",
                         show_usage=True)
    return images[0], _styles([*named, *images[1:]], max_styles)


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


def check_blend(settings: Settings, styles: int) -> None:
    """style_blend needs one weight per style image (the engine checks too, but later and less kindly)."""
    if settings.style_blend is not None and len(settings.style_blend) != styles:
        raise ParamError(f"style_blend has {len(settings.style_blend)} weights but you gave {styles} "
                         f"style image{'s' if styles > 1 else ''} — give one weight per style image")


def canonical(key: str) -> str | None:
    """The setting's own name for `key` (an alias, any case), None if it names no setting."""
    return _NAMES.get(_normal(key))


def _normal(key: str) -> str:
    """The key as Settings.parse looks it up."""
    return key.strip().lower().replace("-", "_")


def _clip(text: str, limit: int = 40) -> str:
    return (text if len(text) <= limit else text[: limit - 1] + "…").replace("`", "'")
