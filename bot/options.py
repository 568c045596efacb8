"""The `stylize` command's options, generated from engine.params.SPECS: the slash command gets typed options
for the settings people change most (Discord enforces their ranges and offers their choices) and one free-text
`settings` option for the rest; the prefix command reads the same words through bot.parsing (see
bot/cogs/stylize.py for why it is one hybrid group)."""

from __future__ import annotations

import types
from typing import Any, Literal, Self

from discord import app_commands
from discord.ext import commands

from engine import SPECS, Spec
from engine.params import SPEC

from .parsing import Arguments, UsageError, canonical, split_arguments, style_names

SLASH_DESCRIPTION = 100  # Discord's limit for option descriptions


class _OptionsBase(commands.FlagConverter):
    """The flags half of the command; subclassed below with one flag per Spec."""

    _parsed = None  # Arguments, set on the prefix path (no annotation: FlagsMeta would make it a flag)

    @classmethod
    async def convert(cls, ctx: commands.Context[Any], argument: str) -> Self:
        """Prefix path: links and key=value pairs, unknown keys kept for Settings.parse to refuse."""
        options = await cls._construct_default(ctx)
        options._parsed = split_arguments(argument)
        return options

    def arguments(self) -> Arguments:
        """What the user gave, whichever path it came by (slash: the typed options that were set, plus
        the `settings` text through the prefix parser, and the `preset` names)."""
        if self._parsed is not None:
            return self._parsed
        extra = split_arguments(self.settings or "", links_allowed=False)  # type: ignore[attr-defined]
        if extra.names:
            raise UsageError(f"`settings` takes key=value words only (`{extra.names[0]}` is not one); "
                             "styles go in `preset`.")
        raw = {name: getattr(self, name) for name in TYPED if getattr(self, name) is not None}
        for key, value in extra.raw.items():
            if canonical(key) in raw:
                raise UsageError(f"`{key}` was given twice (as an option and in `settings`)")
            raw[key] = value
        preset = self.preset  # type: ignore[attr-defined]
        return Arguments(raw=raw, names=tuple(style_names(preset)) if preset else ())


def _annotation(spec: Spec) -> Any:
    """The slash option type for one hyperparameter: ranges and choices straight from its Spec."""
    if spec.choices:
        return Literal[spec.choices]
    if spec.type is bool:
        return bool
    if spec.type in (int, float) and (spec.min is not None or spec.max is not None):
        lo, hi = (None if bound is None else spec.type(bound) for bound in (spec.min, spec.max))
        return app_commands.Range[spec.type, lo, hi]
    if spec.type in (int, float):
        return spec.type
    return str  # tuples, e.g. style_blend "2,1"


def _declare(namespace: dict[str, Any]) -> None:
    annotations: dict[str, Any] = {"content_link": str, "style_link": str, "preset": str, "settings": str}
    namespace["content_link"] = commands.flag(default=None, description="link to the photo, instead of attaching it")
    namespace["style_link"] = commands.flag(default=None, description="link to a style picture")
    namespace["preset"] = commands.flag(default=None, description="a style from the library (several: a,b)")
    for name in TYPED:
        annotations[name] = _annotation(SPEC[name])
        namespace[name] = commands.flag(default=None, description=SPEC[name].help[:SLASH_DESCRIPTION])
    namespace["settings"] = commands.flag(default=None, description=_settings_help())
    namespace["__annotations__"] = annotations


TYPED = ("size", "steps", "style_weight", "preserve_color", "seed")
"""The settings people change most get typed slash options (Discord checks ranges and offers choices);
every other one goes into the free-text `settings` option. Discord allows 25 options per command."""


def _settings_help(limit: int = SLASH_DESCRIPTION) -> str:
    """'key=value for the others: num_epoch, …' — as many names as fit Discord's description limit."""
    text = "key=value for the other settings:"
    for spec in SPECS:
        if spec.name not in TYPED:
            if len(text) + len(spec.name) + 3 > limit:
                return text + " …"
            text += f" {spec.name}"
    return text


StylizeOptions = types.new_class("StylizeOptions", (_OptionsBase,), {}, _declare)
