"""decode_image: what it accepts, how it normalises pixels, and what it refuses."""

from __future__ import annotations

import os
import struct
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from bot.inputs.images import ImageError, decode_image, limit_pixels

BIG = 10**8
DISPLAY_P3 = (Path(__file__).parent / "data" / "DisplayP3-v4.icc").read_bytes()  # CC0, see data/CREDITS.md
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def noise(size: tuple[int, int] = (64, 64)) -> Image.Image:
    return Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose pixel data is a few junk bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


@pytest.mark.parametrize(
    ("fmt", "tolerance"), [("PNG", 0), ("BMP", 0), ("GIF", 0), ("JPEG", 6), ("WEBP", 6)]
)
def test_each_allowed_format_decodes_to_rgb(fmt: str, tolerance: int) -> None:
    data = encode(Image.new("RGB", (8, 6), (200, 40, 40)), fmt)
    out = decode_image(data, max_pixels=BIG)
    assert (out.mode, out.size) == ("RGB", (8, 6))
    assert close_to(out.getpixel((4, 3)), (200, 40, 40), tolerance)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_yields_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in (RED, BLUE)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], lossless=True)
    with Image.open(BytesIO(data)) as im:
        assert im.n_frames == 2
    assert close_to(decode_image(data, max_pixels=BIG).getpixel((8, 8)), RED, 4)


def test_exif_orientation_is_applied_and_metadata_dropped() -> None:
    im = Image.new("RGB", (40, 20), RED)
    im.paste(BLUE, (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    out = decode_image(encode(im, "JPEG", exif=exif, quality=95), max_pixels=BIG)
    assert out.size == (20, 40)
    assert close_to(out.getpixel((10, 5)), RED, 8)  # the left edge is now the top
    assert close_to(out.getpixel((10, 34)), BLUE, 8)
    assert out.info == {}


def srgb_from_display_p3(rgb: tuple[int, int, int]) -> tuple[int, ...]:
    """The published conversion, independent of littlecms: both spaces share D65 white and the sRGB curve,
    so it is decode curve → P3-to-XYZ matrix → XYZ-to-sRGB matrix → encode curve."""
    p3_to_xyz = np.array([[0.4865709, 0.2656677, 0.1982173],
                          [0.2289746, 0.6917385, 0.0792869],
                          [0.0000000, 0.0451134, 1.0439444]])
    xyz_to_srgb = np.array([[3.2404542, -1.5371385, -0.4985314],
                            [-0.9692660, 1.8760108, 0.0415560],
                            [0.0556434, -0.2040259, 1.0572252]])
    v = np.array(rgb) / 255
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    out = np.clip(xyz_to_srgb @ p3_to_xyz @ linear, 0, 1)
    encoded = np.where(out <= 0.0031308, out * 12.92, 1.055 * out ** (1 / 2.4) - 0.055)
    return tuple(int(round(c * 255)) for c in encoded)


@pytest.mark.parametrize(("fmt", "tolerance"), [("PNG", 2), ("JPEG", 5)])
def test_display_p3_photos_keep_their_colours(fmt: str, tolerance: int) -> None:
    p3 = (180, 60, 60)  # inside sRGB's gamut, so nothing clips
    expected = srgb_from_display_p3(p3)
    assert not close_to(expected, p3, 10)  # read as sRGB, the colour would be visibly off
    extra = {"quality": 98, "subsampling": 0} if fmt == "JPEG" else {}
    out = decode_image(encode(Image.new("RGB", (8, 8), p3), fmt, icc_profile=DISPLAY_P3, **extra), max_pixels=BIG)
    assert close_to(out.getpixel((4, 4)), expected, tolerance), (out.getpixel((4, 4)), expected)
    assert out.info == {}


def test_text_chunks_and_icc_profile_are_dropped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "hello")
    data = encode(Image.new("RGB", (4, 4)), "PNG", pnginfo=info, icc_profile=b"not really icc")
    with Image.open(BytesIO(data)) as im:
        assert {"Comment", "icc_profile"} <= im.info.keys()
    assert decode_image(data, max_pixels=BIG).info == {}


def _palette_with_transparent_index() -> Image.Image:
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    im.info["transparency"] = 0
    return im


@pytest.mark.parametrize(
    ("im", "expected"),
    [
        (Image.new("RGBA", (4, 4), (255, 0, 0, 0)), WHITE),
        (Image.new("RGBA", (4, 4), (255, 0, 0, 255)), RED),
        (Image.new("RGBA", (4, 4), (0, 0, 0, 128)), (127, 127, 127)),
        (Image.new("LA", (4, 4), (0, 0)), WHITE),
        (Image.new("LA", (4, 4), (0, 255)), (0, 0, 0)),
        (Image.new("L", (4, 4), 77), (77, 77, 77)),
        (Image.new("1", (4, 4), 1), WHITE),
        (_palette_with_transparent_index(), WHITE),
        (Image.new("I;16", (4, 4), 65535), WHITE),
        (Image.new("I;16", (4, 4), 32768), (128, 128, 128)),
        (Image.new("I;16", (4, 4), 1000), (4, 4, 4)),
        (Image.new("I;16", (4, 4), 0), (0, 0, 0)),
    ],
    ids=lambda v: v.mode if isinstance(v, Image.Image) else str(v),
)
def test_modes_flatten_to_rgb(im: Image.Image, expected: tuple[int, int, int]) -> None:
    out = decode_image(encode(im, "PNG"), max_pixels=BIG)
    assert out.mode == "RGB"
    assert close_to(out.getpixel((1, 1)), expected, 1)


def test_16_bit_grey_with_a_transparent_colour_goes_on_white() -> None:
    im = Image.new("I;16", (4, 4), 1000)
    im.putpixel((0, 0), 5000)
    data = encode(im, "PNG", transparency=1000)
    with Image.open(BytesIO(data)) as check:
        assert (check.mode, check.info["transparency"]) == ("I;16", 1000)
    out = decode_image(data, max_pixels=BIG)
    assert out.getpixel((1, 1)) == WHITE
    assert close_to(out.getpixel((0, 0)), (19, 19, 19), 1)


def test_rgba_is_pasted_on_white_through_its_alpha() -> None:
    im = Image.new("RGBA", (3, 1))
    im.putdata([(255, 0, 0, 255), (0, 0, 255, 0), (0, 0, 0, 128)])
    out = decode_image(encode(im, "PNG"), max_pixels=BIG)
    assert [out.getpixel((x, 0)) for x in range(3)] == [RED, WHITE, (127, 127, 127)]


@pytest.mark.parametrize(
    ("size", "long_side", "short_side", "expected"),
    [
        ((800, 500), 64, 0, (64, 40)),  # a photo: the job's size
        ((500, 800), 64, 0, (40, 64)),
        ((1000, 100), 64, 32, (320, 32)),  # a style: also no shorter than the painter's minimum
        ((60, 40), 64, 32, (60, 40)),  # never enlarged
        ((800, 500), None, 0, (800, 500)),  # no target: full size
    ],
)
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_downscales_right_after_decoding(size: tuple[int, int], long_side: int | None, short_side: int,
                                         expected: tuple[int, int], fmt: str) -> None:
    data = encode(Image.new("RGB", size, (200, 40, 40)), fmt)
    out = decode_image(data, max_pixels=BIG, long_side=long_side, short_side=short_side)
    assert (out.mode, out.size) == ("RGB", expected)
    assert close_to(out.getpixel((expected[0] // 2, expected[1] // 2)), (200, 40, 40), 6)


@pytest.mark.parametrize(("size", "pixels", "expected"), [((800, 500), 4000, (80, 50)), ((500, 1000), 5000, (50, 100)),
                                                      ((60, 40), 5000, (60, 40))])
def test_downscales_to_a_pixel_count(size: tuple[int, int], pixels: int, expected: tuple[int, int]) -> None:
    assert decode_image(encode(Image.new("RGB", size, RED), "PNG"), max_pixels=BIG, pixels=pixels).size == expected


def test_downscaling_follows_exif_rotation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.new("RGB", (800, 400), RED), "JPEG", exif=exif)
    assert decode_image(data, max_pixels=BIG, long_side=100).size == (50, 100)


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95)
    with Image.open(BytesIO(data)) as im:
        assert im.mode == "CMYK"
    out = decode_image(data, max_pixels=BIG)
    assert out.mode == "RGB"
    assert close_to(out.getpixel((4, 4)), RED, 8)


def test_max_pixels_is_an_inclusive_limit() -> None:
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    assert decode_image(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ImageError, match="too large"):
        decode_image(data, max_pixels=9_999)


@pytest.fixture
def pixel_limit() -> Iterator[Callable[[int], None]]:
    """limit_pixels as the bot calls it at start-up; Pillow's global and the warning filters restored after."""
    before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        yield limit_pixels
    Image.MAX_IMAGE_PIXELS = before


@pytest.mark.parametrize(
    ("width", "height", "configured", "max_pixels"),
    [
        (20_000, 20_000, 10**7, 10**7),  # our own limit
        (5_000, 3_000, 10**7, 10**7),  # between Pillow's warning and error thresholds: ours refuses
        (20_000, 20_000, 10**7, 10**12),  # past Pillow's hard limit (twice the configured one)
    ],
)
def test_decompression_bombs_are_refused_from_the_header(
    pixel_limit: Callable[[int], None], width: int, height: int, configured: int, max_pixels: int
) -> None:
    # Decoding this file would fail as "damaged"; "too large" proves no pixel was decoded.
    pixel_limit(configured)
    filters_before = list(warnings.filters)
    with pytest.raises(ImageError, match="too large"):
        decode_image(png_header_only(width, height), max_pixels=max_pixels)
    assert warnings.filters == filters_before  # decode_image itself never touches the process-wide filters


def test_a_configured_limit_above_pillows_default_is_reachable(pixel_limit: Callable[[int], None]) -> None:
    pixel_limit(200_000_000)  # input_pixels = 200 MP; Pillow's own default stops at 89.5 MP
    with pytest.raises(ImageError, match="damaged"):  # past every size check: only the junk pixels fail
        decode_image(png_header_only(10_000, 10_000), max_pixels=200_000_000)
    with pytest.raises(ImageError, match="too large"):
        decode_image(png_header_only(15_000, 15_000), max_pixels=200_000_000)


def test_parallel_decodes_leave_warning_filters_alone(pixel_limit: Callable[[int], None]) -> None:
    pixel_limit(10**6)
    bomb = png_header_only(1_500, 1_000)  # 1.5 MP: Pillow warns, decode_image refuses
    filters = warnings.filters
    seen: list[bool] = []

    def decode_many() -> None:
        for _ in range(50):
            with pytest.raises(ImageError, match="too large"):
                decode_image(bomb, max_pixels=10**6)
            seen.append(warnings.filters is filters)

    threads = [threading.Thread(target=decode_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 200 and all(seen)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_refused(fmt: str) -> None:
    data = encode(noise(), fmt)
    assert decode_image(data, max_pixels=BIG).size == (64, 64)
    with pytest.raises(ImageError, match="damaged"):
        decode_image(data[: len(data) // 2], max_pixels=BIG)


def test_corrupt_png_chunk_is_refused() -> None:
    data = bytearray(encode(noise(), "PNG"))
    data[40:48] = b"garbage!"  # inside the first IDAT, so its CRC no longer matches
    with pytest.raises(ImageError):
        decode_image(bytes(data), max_pixels=BIG)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"just some text, saved as cat.png\n",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    ],
    ids=["empty", "text", "pdf", "svg"],
)
def test_non_images_are_refused(data: bytes) -> None:
    with pytest.raises(ImageError, match="isn't an image I can read"):
        decode_image(data, max_pixels=BIG)


@pytest.mark.parametrize("fmt", ["TIFF", "PPM", "ICO", "TGA"])
def test_formats_pillow_knows_but_we_do_not_allow_are_refused(fmt: str) -> None:
    data = encode(Image.new("RGB", (16, 16), RED), fmt)
    with Image.open(BytesIO(data)) as im:  # Pillow itself would happily read it
        assert im.format == fmt
    with pytest.raises(ImageError, match="isn't an image I can read"):
        decode_image(data, max_pixels=BIG)
