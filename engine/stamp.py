"""Settings inside the picture: a result's effective settings as versioned JSON in the file itself.

PNG keeps them in a text chunk (`stylize`), JPEG in its comment. The stamp holds the settings as run
and the styles' library names and credits — never who asked, where, or from which links — so a
picture shared anywhere still says how it was made. `read` takes any image bytes and trusts nothing:
the settings go through `Settings.parse`, a stamp it cannot use is None.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from typing import Any

from PIL import Image, PngImagePlugin

from .params import ParamError, Settings

KEY = "stylize"  # PNG text chunk keyword
VERSION = 1
MAX_TEXT = 64 * 1024  # a stamp is a few hundred bytes; anything far larger is not ours


@dataclass(frozen=True)
class StyleCredit:
    """A style as the stamp names it: a library style's name and credit, or None for an uploaded picture."""

    name: str | None = None
    credit: str | None = None


@dataclass(frozen=True)
class Stamp:
    settings: Settings
    styles: tuple[StyleCredit, ...] = ()

    def to_json(self) -> str:
        return json.dumps({"stylize": VERSION, "settings": dataclasses.asdict(self.settings),
                           "styles": [dataclasses.asdict(s) for s in self.styles]}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Stamp | None:
        """The stamp in `text`, or None when it is not a stamp of a version this code reads."""
        try:
            values = json.loads(text)
        except ValueError:
            return None
        if not isinstance(values, dict) or values.get("stylize") != VERSION:
            return None
        return cls.from_values(values.get("settings"), values.get("styles", []))

    @classmethod
    def from_values(cls, settings: Any, styles: Any) -> Stamp | None:
        """A stamp from JSON values (`dataclasses.asdict` of Settings and StyleCredits), checked; None if unusable."""
        try:
            raw = {k: v for k, v in settings.items() if v is not None}
            credits = tuple(StyleCredit(_text(s.get("name")), _text(s.get("credit"))) for s in styles)
            return cls(Settings.parse(raw), credits)
        except (ValueError, TypeError, AttributeError, ParamError):
            return None


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None


def save(image: Image.Image, stamp: Stamp | None, format: str, **options: Any) -> bytes:
    """`image` encoded as PNG or JPEG (Pillow `options` passed on) with `stamp` inside."""
    buffer = io.BytesIO()
    if stamp is not None and format == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt(KEY, stamp.to_json())  # iTXt: UTF-8, credits may have accents
        options["pnginfo"] = info
    elif stamp is not None and format == "JPEG":
        options["comment"] = stamp.to_json().encode()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def read(data: bytes) -> Stamp | None:
    """The stamp inside PNG or JPEG bytes, or None (no stamp, or not a picture)."""
    try:
        with Image.open(io.BytesIO(data), formats=["PNG", "JPEG"]) as image:
            text = image.info.get(KEY if image.format == "PNG" else "comment")  # our chunk precedes the pixels
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return Stamp.from_json(text) if isinstance(text, str) and len(text) <= MAX_TEXT else None
