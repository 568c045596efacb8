"""decode_image: what it accepts, how it normalises pixels, and what it refuses."""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from io import BytesIO

import pytest
from PIL import Image, PngImagePlugin

from bot.inputs.images import ImageError, decode_image

BIG = 10**8
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


@pytest.mark.parametrize(
    ("width", "height", "max_pixels"),
    [
        (20_000, 20_000, 10**7),  # our own limit
        (10_000, 10_000, 10**12),  # past Pillow's warning threshold
        (20_000, 20_000, 10**12),  # past Pillow's hard limit
    ],
)
def test_decompression_bombs_are_refused_from_the_header(
    width: int, height: int, max_pixels: int
) -> None:
    # Decoding this file would fail as "damaged"; "too large" proves no pixel was decoded.
    filters_before, limit_before = list(warnings.filters), Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError, match="too large"):
        decode_image(png_header_only(width, height), max_pixels=max_pixels)
    assert warnings.filters == filters_before
    assert Image.MAX_IMAGE_PIXELS == limit_before


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
