"""engine.movie: every distinct frame and its duration survive a round trip through WebP and GIF."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageDraw

from engine.movie import AnimationTooLarge, distinct, encode, gif, webp


def frames(count: int, size: tuple[int, int] = (48, 32)) -> list[Image.Image]:
    """Distinct frames: a bar that grows and changes colour, like a picture developing."""
    out = []
    for i in range(count):
        image = Image.new("RGB", size, (20, 30, 40))
        ImageDraw.Draw(image).rectangle((0, 0, 6 * (i + 1), size[1] - 1), fill=(40 * i % 256, 200, 255 - 30 * i))
        out.append(image)
    return out


def read(data: bytes) -> tuple[str, list[int], list[Image.Image]]:
    image = Image.open(io.BytesIO(data))
    durations, pictures = [], []
    for index in range(image.n_frames):
        image.seek(index)
        pictures.append(image.convert("RGB"))  # WebP reports a frame's duration once it is loaded
        durations.append(image.info["duration"])
    return image.format, durations, pictures


@pytest.mark.parametrize(("encoder", "kind"), [(webp, "WEBP"), (gif, "GIF")])
def test_frames_and_durations_survive_a_round_trip(encoder, kind) -> None:
    shown, times = frames(5), [100, 250, 40, 600, 1500]
    found, durations, pictures = read(encoder(shown, times))
    assert found == kind and durations == times and len(pictures) == 5
    assert all(ImageChops.difference(a, b).getbbox() is not None for a, b in zip(pictures, pictures[1:]))


def test_gif_rounds_delays_to_what_browsers_show() -> None:
    assert read(gif(frames(3), [104, 5, 37]))[1] == [100, 20, 40]


def test_identical_neighbours_merge_into_one_longer_frame() -> None:
    a, b = frames(2)
    shown, times = distinct([a, a.copy(), b, b, a], [100, 50, 70, 30, 200])
    assert times == [150, 100, 200] and len(shown) == 3
    data, kind = encode([a, a.copy(), b, b, a], [100, 50, 70, 30, 200])
    assert read(data)[1] == [150, 100, 200]


def test_encode_returns_the_smaller_that_fits() -> None:
    shown, times = frames(6), [80] * 6
    sizes = {"webp": len(webp(shown, times)), "gif": len(gif(shown, times))}
    data, kind = encode(shown, times)
    assert len(data) == min(sizes.values()) and sizes[kind] == len(data)
    assert read(data)[0].lower() == kind and len(read(data)[1]) == 6
    assert encode(shown, times, max_bytes=len(data))[1] == kind
    with pytest.raises(AnimationTooLarge, match="does not fit 100 bytes") as error:
        encode(shown, times, max_bytes=100)
    assert isinstance(error.value, ValueError) and error.value.sizes == sizes


def test_bad_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="one duration per frame"):
        encode(frames(2), [100])
    with pytest.raises(ValueError, match="positive"):
        encode(frames(2), [100, 0])
    with pytest.raises(ValueError, match="same size"):
        encode([*frames(1), *frames(1, (32, 32))], [100, 100])
