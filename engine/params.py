"""Every hyperparameter, declared once.

`Settings` is a frozen dataclass whose fields carry their own spec (type, default, range, choices,
help, aliases). That one declaration drives validation (`Settings.parse`), the CLI flags, the bot's
`key=value` parser, `!stylize help`, the slash-command options and the echo of the values used.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from .vgg import CONTENT_LAYERS, LAYERS, STYLE_LAYERS

# Colours a mask may be painted in (regions=red:1,…); any other colour is written #rrggbb.
COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255), "black": (0, 0, 0), "red": (255, 0, 0), "green": (0, 255, 0),
    "blue": (0, 0, 255), "yellow": (255, 255, 0), "cyan": (0, 255, 255), "magenta": (255, 0, 255),
    "grey": (128, 128, 128), "orange": (255, 128, 0), "purple": (128, 0, 128)}
REGION_TARGETS = "a style number, photo (kept as it is) or blend (the style_blend mix)"


class Names(tuple):
    """Declaration type: a comma-separated list of names from Spec.choices, e.g. relu1_1,relu2_1."""


class Regions(tuple):
    """Declaration type: colour:target pairs, e.g. red:1,blue:2,white:photo — stored as (colour, target)."""


class Pixels(int):
    """Declaration type: a pixel count, plain (262144) or in megapixels (0.25mp = 250000)."""


class ParamError(ValueError):
    """A hyperparameter was refused; the message is written for the user who typed it."""


@dataclass(frozen=True)
class Spec:
    """What one hyperparameter accepts."""

    name: str
    type: type  # int, float, str, bool, tuple (comma-separated floats), Names or Regions
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    optional: bool = False  # None is a valid value ("random seed", "derived from steps")

    def describe_range(self) -> str:
        """'64–2048', 'lbfgs | adam', 'true | false' — for help texts."""
        if self.type is Names:
            return f"comma-separated VGG-19 layers: {self.choices[0]} … {self.choices[-1]}"
        if self.type is Pixels:
            return f"{self.min:,}–{self.max:,} pixels, or in megapixels (0.25mp)"
        if self.type is Regions:
            return f"colour:target,… — colours {', '.join(COLOURS)} or #rrggbb; target {REGION_TARGETS}"
        if self.choices:
            return " | ".join(self.choices)
        if self.type is bool:
            return "true | false"
        if self.min is not None and self.max is not None:
            return f"{format_value(self.min)}–{format_value(self.max)}"
        if self.min is not None:
            return f"≥ {format_value(self.min)}"
        return "any"

    def convert(self, raw: Any) -> Any:
        """Turn user text (or a Python value) into a checked value of this parameter's type."""
        text = raw.strip().lower() if isinstance(raw, str) else raw
        if self.optional and text in (None, "", "none", "random", "auto"):
            return None
        if text in (None, ""):
            raise ParamError(f"{self.name} needs a value ({self.describe_range()})")
        if self.type is bool:
            return _to_bool(self.name, raw)
        if self.type in (tuple, Names, Regions):  # one number (a Python value) is a list of one
            parts = ([p.strip() for p in raw.split(",")] if isinstance(raw, str) else
                     list(raw) if isinstance(raw, (list, tuple)) else [raw])
            if self.type is Names:
                return self._names(parts)
            return self._regions(parts) if self.type is Regions else tuple(self._number(float, p) for p in parts)
        if self.type is Pixels:
            if not (isinstance(raw, str) and text.endswith(("mp", "m"))):
                return self._number(int, text)
            count = self._number(float, text.rstrip("mp").strip(), bounded=False) * 1e6
            if not math.isfinite(count):  # 1e303mp: finite megapixels, but no pixel count
                raise self._outside(count)
            return self._number(int, round(count))
        if self.type is str:
            value = str(raw).strip().lower()
            if self.choices and value not in self.choices:
                raise ParamError(f"{self.name} must be one of {', '.join(self.choices)}, got {_quote(raw)}"
                                 + _suggest(value, self.choices))
            return value
        return self._number(self.type, raw)

    def _names(self, parts: list[Any]) -> tuple[str, ...]:
        names = tuple(str(p).strip().lower() for p in parts)
        for name in names:
            if name not in self.choices:
                raise ParamError(f"{self.name}: {_quote(name)} is not a VGG-19 layer" + _suggest(name, self.choices))
        if len(set(names)) != len(names):
            raise ParamError(f"{self.name} names a layer twice")
        return names

    def _regions(self, parts: list[Any]) -> tuple[tuple[str, str], ...]:
        pairs: list[tuple[str, str]] = []
        for part in parts:
            colour, sep, target = ((part[0], ":", part[1]) if isinstance(part, (tuple, list)) and len(part) == 2
                                   else str(part).partition(":"))
            colour, target = str(colour).strip().lower(), str(target).strip().lower()
            if not sep or not colour or not target:
                raise ParamError(f"{self.name} pairs look like colour:target (e.g. red:1,white:photo), "
                                 f"got {_quote(part)}")
            if colour not in COLOURS and not _is_hex(colour):
                raise ParamError(f"{self.name}: {_quote(colour)} is not a colour I know ({', '.join(COLOURS)} or "
                                 "#rrggbb)"
                                 + _suggest(colour, COLOURS))
            number = target.isascii() and target.isdigit()  # not '²' or '١': isdigit alone takes those
            if target not in ("photo", "blend") and not (number and 1 <= int(target) <= 10):
                raise ParamError(f"{self.name}: the target of {colour} must be {REGION_TARGETS}, got {_quote(target)}")
            if colour in (c for c, _ in pairs):
                raise ParamError(f"{self.name} names {colour} twice")
            pairs.append((colour, str(int(target)) if number else target))
        return tuple(pairs)

    def _number(self, kind: type, raw: Any, bounded: bool = True) -> int | float:
        text = str(raw).strip()
        try:
            number = float(text)
        except ValueError:
            raise ParamError(f"{self.name} must be a number, got {_quote(text)}") from None
        if not math.isfinite(number):
            raise ParamError(f"{self.name} must be a finite number, got {_quote(text)}")
        if bounded and ((self.min is not None and number < self.min) or (self.max is not None and number > self.max)):
            raise self._outside(number)
        if kind is int:
            if number != int(number):
                raise ParamError(f"{self.name} must be a whole number, got {_quote(text)}")
            number = int(number)
        return number

    def _outside(self, number: float) -> ParamError:
        """The refusal of a number outside this parameter's range."""
        whole = math.isfinite(number) and float(number).is_integer() and abs(number) < 1e15
        got = format_value(int(number) if whole else float(number))
        if self.max is None:
            return ParamError(f"{self.name} must be at least {format_value(self.min)}, got {got}")
        return ParamError(f"{self.name} must be between {format_value(self.min)} and {format_value(self.max)}, "
                          f"got {got}")


def _to_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on", "y"):
        return True
    if text in ("0", "false", "no", "off", "n"):
        return False
    raise ParamError(f"{name} must be true or false, got {_quote(raw)}")


def _quote(raw: Any, longest: int = 40) -> str:
    """User input quoted in a refusal, clipped: a 400-digit number is not echoed whole."""
    text = str(raw)
    return repr(text if len(text) <= longest else text[: longest - 1] + "…")


def _is_hex(text: str) -> bool:
    return len(text) == 7 and text[0] == "#" and all(c in "0123456789abcdef" for c in text[1:])


def _suggest(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" — did you mean {close[0]}?" if close else ""


def format_value(value: Any) -> str:
    """Short human form: 1e5 stays 100000 → '1e+05' style only for very large/small floats."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(":".join(v) if isinstance(v, tuple) else format_value(v) for v in value)
    return str(value)


def param(default: Any, help: str, **spec: Any) -> Any:
    """Declare a Settings field together with its Spec (completed in `_specs`)."""
    return field(default=default, metadata={"spec": (help, spec)})


@dataclass(frozen=True)
class Settings:
    """The hyperparameters of one stylization. Defaults are the product's recommended ones."""

    size: int = param(512, "longest side of the output, in pixels", min=64, max=4096,
                      aliases=("image_size", "max_size"))
    pixels: Pixels | None = param(None, "pixel count of the output instead of its longest side, so wide and tall "
                                  "pictures get their share, e.g. 0.25mp or 262144 (give size or pixels)",
                                  min=64 * 64, max=4096 * 4096, optional=True)
    steps: int = param(300, "optimisation steps in total, over all scales", min=1, max=5000,
                       aliases=("iterations", "num_steps", "num_iterations"))
    num_epoch: int = param(10, "progress reports (and previews) per run; steps = num_epoch × steps_per_epoch",
                           min=1, max=100)
    steps_per_epoch: int | None = param(None, "steps between progress reports (default: steps / num_epoch)",
                                        min=1, max=5000, optional=True)
    content_weight: float = param(1.0, "how strongly the picture keeps the photo's content", min=0, max=1e9)
    style_weight: float = param(10.0, "how strongly the picture takes on the painting's style", min=0, max=1e12)
    tv_weight: float = param(5.0, "smoothness: suppresses pixel noise (too much looks muddy)", min=0, max=1e6)
    scales: int = param(2, "coarse-to-fine passes, each at twice the previous resolution", min=1, max=5)
    style_scale: float = param(1.0, "size of the painting's brush strokes relative to the output", min=0.1, max=4)
    style_blend: tuple | None = param(None, "weights of several style images, e.g. 2,1 (default: equal)",
                                      optional=True, min=0, max=1000)
    preserve_color: str = param("none", "keep the photo's colours: luminance transfer or histogram matching",
                                choices=("none", "luminance", "histogram"), aliases=("color", "colour", "preserve_colour"))
    regions: Regions | None = param(
        None, "with a mask: which colour gets which style, e.g. red:1,blue:2,white:photo (default: white → "
        "style 1, black → style 2, or the photo with one style)", optional=True)
    feather: float = param(8.0, "with a mask: soft edges between regions, in pixels of the output", min=0, max=256)
    erode: bool = param(True, "with a mask: leave features at a region's edge out of its style, against bleeding")
    fine_style: int | None = param(None, "scale control: the style (1, 2, …) whose brushwork paints the fine layers "
                                   "relu1/relu2; the others give the composition", min=1, max=10, optional=True)
    init: str = param("content", "starting picture: the photo or random noise", choices=("content", "noise"))
    optimizer: str = param("lbfgs", "L-BFGS (best pictures) or Adam (less memory)", choices=("lbfgs", "adam"))
    lr: float = param(5.0, "Adam step size in 0–255 pixel units (ignored by L-BFGS)", min=1e-4, max=100)
    pooling: str = param("max", "VGG pooling: max, or avg as in the paper", choices=("max", "avg"))
    content_layers: Names = param(CONTENT_LAYERS, "VGG-19 layers the content is compared at",
                                  choices=tuple(LAYERS))
    style_layers: Names = param(STYLE_LAYERS, "VGG-19 layers the style (Gram matrices) is compared at",
                                choices=tuple(LAYERS))
    style_layer_weights: tuple | None = param(
        None, "weight of each style layer, e.g. 256,64,16,4,1 (default: equal; normalised, so style_weight "
        "keeps its meaning)", optional=True, min=0, max=1e6)
    precision: str = param("auto", "VGG arithmetic: bf16 is faster where the hardware has it; auto picks",
                           choices=("auto", "fp32", "bf16"))
    seed: int | None = param(None, "random seed for repeatable results (default: random; on a GPU or in "
                             "batches, deterministic=true)",
                             min=0, max=2**31 - 1, optional=True)
    deterministic: bool = param(False, "same seed, same picture on a GPU too, and never painted in a batch "
                                "(PyTorch's deterministic mode: 1–15 % slower on an H200); CPU jobs painted alone "
                                "repeat without it")
    preview: bool = param(False, "show a preview image at every progress report")
    # Animations (engine/animate.py): frame 1 takes `steps`; later frames start from the previous one.
    animate: bool = param(False, "paint every frame of an animated photo (GIF, APNG, WebP), not only its "
                          "first (the CLI does when the output is .webp or .gif, unless told false)")
    frame_steps: int = param(100, "animations: steps for each frame after the first, which starts from the "
                             "previous painted frame warped by optical flow", min=1, max=5000)
    temporal_weight: float = param(200.0, "animations: how strongly each frame keeps the previous "
                                   "painted frame where the motion is known (against flicker)", min=0, max=1e6)
    occlusion: str = param("full", "animations: pixels the temporal loss leaves free — full: occluded and on "
                           "motion boundaries (Ruder et al.), consistency: occluded only, off: none",
                           choices=("full", "consistency", "off"))
    timelapse: bool = param(False, "also make an animation of the picture developing, a frame per progress report")

    @property
    def epoch_length(self) -> int:
        """Steps between progress reports."""
        return self.steps_per_epoch or max(1, math.ceil(self.steps / self.num_epoch))

    @classmethod
    def parse(cls, raw: Mapping[str, Any], base: Settings | None = None) -> Settings:
        """Validate user input (names may be aliases) on top of `base` (or the defaults)."""
        lookup = {name: spec for spec in SPECS for name in (spec.name, *spec.aliases)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name = key.strip().lower().replace("-", "_")
            spec = lookup.get(name)
            if spec is None:
                raise ParamError(f"unknown setting {_quote(key)}" + _suggest(name, lookup) +
                                 " (see `help` for the list)")
            if spec.name in values:
                raise ParamError(f"{spec.name} was given twice")
            values[spec.name] = spec.convert(value)
        if "size" in values and "pixels" in values:
            raise ParamError("give size (the longest side) or pixels (the pixel count), not both")
        if "size" in values:  # the user's size wins over a default pixel count
            values.setdefault("pixels", None)
        settings = dataclasses.replace(base or cls(), **values)
        if "steps_per_epoch" in values and values["steps_per_epoch"] is not None:
            implied = settings.num_epoch * settings.steps_per_epoch
            if "steps" in values and values["steps"] != implied:
                raise ParamError(f"steps={values['steps']} disagrees with num_epoch × steps_per_epoch = {implied}; "
                                 "give one or the other")
            settings = dataclasses.replace(settings, steps=SPEC["steps"].convert(implied))
        elif "steps" in values or "num_epoch" in values:
            settings = dataclasses.replace(settings, steps_per_epoch=None)
        weights = settings.style_layer_weights
        if weights is not None and len(weights) != len(settings.style_layers):
            raise ParamError(f"style_layer_weights has {len(weights)} weights for {len(settings.style_layers)} "
                             "style_layers — give one weight per layer")
        if weights is not None and sum(weights) <= 0:
            raise ParamError("style_layer_weights must not all be zero")
        return settings

    def long_side(self, shape: tuple[int, int]) -> int:
        """The output's longest side for a photo of `shape` (width, height): `size`, or the side whose
        picture of that shape has `pixels` pixels (within size's range)."""
        if self.pixels is None:
            return self.size
        side = round(math.sqrt(self.pixels * max(shape) / min(shape)))
        return int(min(max(side, SPEC["size"].min), SPEC["size"].max))

    def for_shape(self, shape: tuple[int, int]) -> Settings:
        """These settings with `size` set to the longest side used for a photo of `shape` (see long_side)."""
        return self if self.pixels is None else dataclasses.replace(self, size=self.long_side(shape))

    def items(self) -> list[tuple[Spec, Any]]:
        """(spec, value) in declaration order, with derived values filled in — for echoes."""
        shown = dataclasses.replace(self, steps_per_epoch=self.epoch_length)
        return [(spec, getattr(shown, spec.name)) for spec in SPECS]


def _specs() -> tuple[Spec, ...]:
    out = []
    for f in fields(Settings):
        help_text, extra = f.metadata["spec"]
        kind = {"int": int, "float": float, "str": str, "bool": bool, "Names": Names, "Regions": Regions,
                 "Pixels": Pixels}.get(
            str(f.type).split(" |")[0], tuple)
        out.append(Spec(name=f.name, type=kind, default=f.default, help=help_text, **extra))
    return tuple(out)


SPECS: tuple[Spec, ...] = _specs()
SPEC: dict[str, Spec] = {spec.name: spec for spec in SPECS}
