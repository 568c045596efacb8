"""engine.stamp: the settings a picture was made with travel inside it, and only those."""

from __future__ import annotations

import io

from PIL import Image, PngImagePlugin

from engine import Settings
from engine.stamp import KEY, Stamp, StyleCredit, read, save


def made() -> Stamp:
    settings = Settings.parse({"steps": 7, "size": 64, "seed": 5, "regions": "red:1,white:photo",
                               "style_blend": "2,1", "timelapse": "true"})
    return Stamp(settings, (StyleCredit("starry_night", "The Starry Night — Vincent van Gogh"), StyleCredit()))


def test_png_and_jpeg_carry_the_settings_and_credits() -> None:
    picture = Image.effect_noise((32, 24), 50).convert("RGB")
    for kind in ("PNG", "JPEG"):
        data = save(picture, made(), kind)
        assert read(data) == made() and Image.open(io.BytesIO(data)).format == kind
    assert read(save(picture, None, "PNG")) is None


def test_the_stamp_is_versioned_json_with_nothing_about_people_or_places() -> None:
    text = Image.open(io.BytesIO(save(Image.new("RGB", (8, 8)), made(), "PNG"))).info[KEY]
    assert text.startswith('{"stylize":1,"settings":{') and "van Gogh" in text
    assert not any(word in text for word in ("user", "guild", "channel", "http", "message"))


def test_foreign_or_hostile_stamps_are_ignored() -> None:
    for text in ("not json", '{"stylize":2,"settings":{}}', '{"stylize":1,"settings":{"size":99999}}',
                 '{"stylize":1,"settings":{"size":64,"rm -rf":1}}', '{"stylize":1}', '[1]'):
        info = PngImagePlugin.PngInfo()
        info.add_text(KEY, text)
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=info)
        assert read(buffer.getvalue()) is None, text
    assert read(b"GIF89a not a picture") is None and read(b"") is None
