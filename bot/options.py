"""The `stylize` command's options (bot/cogs/stylize.py), generated from engine.params.SPECS.

Design of the slash options: the group's callback takes the three attachments as ordinary
parameters and everything else as one `StylizeOptions` flag parameter. `StylizeOptions` is a
`commands.FlagConverter` *generated* from engine.params.SPECS at import: the settings named in TYPED
get a flag each, annotated with `app_commands.Range[int|float, min, max]`, `Literal[*choices]` or
`bool` and described by the Spec's help, so Discord enforces their ranges and offers their choices;
every other setting goes into one free-text `settings` flag (Discord allows 25 options per command),
and `preset` names library styles (with autocomplete). discord.py's hybrid machinery flattens a
FlagConverter into separate slash options. On the prefix path the stock FlagConverter parser (which
silently drops unknown keys) is replaced by our own: the rest of the message is split into links,
style names and key=value pairs (bot.parsing) — the same parser that reads the slash `settings`
text — and handed to Settings.parse, which refuses unknown keys with a suggestion. Both paths end in
the same Settings.parse call on top of the server's defaults. A hybrid group (rather than a lone
hybrid command) is what lets `!stylize help`, `!stylize cancel` and the rest exist beside
`!stylize <images> key=value…`; slash commands cannot take options and have subcommands at once, so
the painting itself is the group's `paint` fallback subcommand.
"""

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
