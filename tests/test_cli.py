"""The `stylize` command line, run in-process on tiny images."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from engine import Animation, AnimationProgress, Progress, Result, Settings, cli, stamp
from engine.animate import read_frames, total_steps

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture()
def images(tmp_path: Path) -> tuple[Path, Path]:
    content, style = tmp_path / "c.png", tmp_path / "s.jpg"
    Image.open(EXAMPLES / "chelsea.png").resize((48, 32)).save(content)
    Image.open(EXAMPLES / "starry_night.jpg").resize((64, 40)).save(style)
    return content, style


def test_cli_writes_the_picture_and_intermediates(images: tuple[Path, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.png"
    code = cli.main([str(images[0]), str(images[1]), "-o", str(out), "--size", "64", "--steps", "4",
                     "--scales", "1", "--save-every", "2", "--seed", "3", "--style-weight", "1e3"])
    assert code == 0
    assert Image.open(out).size == (64, 43)
    assert sorted(p.name for p in tmp_path.glob("out_step*.png")) == ["out_step0002.png", "out_step0004.png"]
    printed = capsys.readouterr().out
    assert "seed 3" in printed and "final losses: content" in printed
    written = stamp.read(out.read_bytes())
    assert written is not None and written.settings.seed == 3 and written.settings.steps == 4
    assert written.styles == (stamp.StyleCredit("s"),) and not (tmp_path / "out_timelapse.webp").exists()


def test_cli_writes_a_timelapse_beside_the_picture(images: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.jpg"
    assert cli.main([str(images[0]), str(images[1]), "-o", str(out), "--size", "64", "--steps", "4",
                     "--scales", "1", "--num-epoch", "2", "--timelapse"]) == 0
    assert stamp.read(out.read_bytes()).settings.timelapse is True  # JPEG: in the comment
    movie = Image.open(tmp_path / "out_timelapse.webp")
    assert movie.format == "WEBP" and movie.n_frames == 3 and movie.size == Image.open(out).size  # 0, 2, 4


def test_cli_sizes_by_pixel_count(images: tuple[Path, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.png"
    assert cli.main([str(images[0]), str(images[1]), "-o", str(out), "--pixels", "6144", "--steps", "1",
                     "--scales", "1"]) == 0
    assert Image.open(out).size == (96, 64)  # 48×32 photo: 6144 pixels are 96×64
    assert "1 @ 96 px" in capsys.readouterr().err  # the plan line names the size it derived
    with pytest.raises(SystemExit):
        cli.main([str(images[0]), str(images[1]), "-o", str(out), "--pixels", "0.01mp", "--size", "64"])
    assert "give size (the longest side) or pixels (the pixel count), not both" in capsys.readouterr().err


def test_cli_refuses_bad_hyperparameters(images: tuple[Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([str(images[0]), str(images[1]), "-o", str(tmp_path / "o.png"), "--size", "9000"])
    assert exit_.value.code == 2
    assert "size must be between 64 and 4096, got 9000" in capsys.readouterr().err


def test_cli_refuses_unreadable_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(SystemExit):
        cli.main([str(tmp_path / "notes.txt"), str(tmp_path / "notes.txt"), "-o", str(tmp_path / "o.png")])
    assert "cannot read image" in capsys.readouterr().err


def test_every_hyperparameter_has_a_flag() -> None:
    help_text = cli.build_parser().format_help()
    from engine.params import SPECS
    for spec in SPECS:
        assert f"--{spec.name.replace('_', '-')}" in help_text


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    """A 3-frame GIF, a photo panned 3 px per frame, with three different delays (one under 20 ms)."""
    photo = Image.open(EXAMPLES / "chelsea.png").convert("RGB").resize((72, 44))
    frames = [photo.crop((3 * i, 0, 3 * i + 64, 44)) for i in range(3)]
    path = tmp_path / "clip.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=[40, 120, 10], loop=0)
    return path


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("suffix", [".webp", ".gif"])
def test_cli_paints_every_frame_of_an_animation_keeping_its_timing(
        clip: Path, images: tuple[Path, Path], tmp_path: Path, suffix: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"out{suffix}"
    code = cli.main([str(clip), str(images[1]), "-o", str(out), "--size", "64", "--steps", "1",
                     "--frame-steps", "1", "--scales", "1", "--seed", "3"])
    assert code == 0
    written = Image.open(out)
    assert written.format == suffix[1:].upper() and written.size == (64, 44)
    frames, durations = read_frames(written)
    assert len(frames) == 3 and durations == [40, 120, 100]  # browsers show 10 ms as 100 ms: so it is kept
    assert "3 frames" in capsys.readouterr().out


@pytest.mark.usefixtures("one_torch_thread")
def test_cli_paints_the_first_frame_of_an_animation_written_as_a_still(
        clip: Path, images: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.png"
    code = cli.main([str(clip), str(images[1]), "-o", str(out), "--size", "64", "--steps", "1", "--scales", "1"])
    assert code == 0 and Image.open(out).size == (64, 44)
    assert "painting its first frame only" in capsys.readouterr().err


@pytest.mark.usefixtures("one_torch_thread")
def test_cli_animate_flag_decides_for_an_animated_photo(
        clip: Path, images: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quick = ["--size", "64", "--steps", "1", "--frame-steps", "1", "--scales", "1"]
    out = tmp_path / "out.webp"
    assert cli.main([str(clip), str(images[1]), "-o", str(out), "--no-animate", *quick]) == 0
    assert getattr(Image.open(out), "n_frames", 1) == 1 and "first frame only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([str(clip), str(images[1]), "-o", str(tmp_path / "out.png"), "--animate", *quick])
    assert "--animate needs an animated output" in capsys.readouterr().err


@pytest.mark.usefixtures("one_torch_thread")
def test_yes_no_flags_take_no_value_so_the_photo_after_them_stays_the_photo(
        clip: Path, images: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`stylize --animate clip.gif style.jpg -o out.webp` once read clip.gif as the flag's value."""
    out = tmp_path / "out.webp"
    assert cli.main(["--animate", str(clip), str(images[1]), "-o", str(out), "--size", "64", "--steps", "1",
                     "--frame-steps", "1", "--scales", "1", "--preview"]) == 0
    assert Image.open(out).n_frames == 3
    with pytest.raises(SystemExit):
        cli.main([str(clip), str(images[1]), "-o", str(out), "--animate", "false"])
    assert "unrecognized arguments: false" in capsys.readouterr().err


def test_a_mistake_is_one_line_without_the_usage(images: tuple[Path, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([str(images[0])], [str(tmp_path / "missing.jpg"), str(images[1]), "-o", str(tmp_path / "o.png")]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1 and "usage:" not in err, err
        assert err.startswith("stylize: ") and err.rstrip().endswith("(`stylize --help` lists the options)")


def test_fewer_steps_than_passes_paints_the_last_pass_only(images: tuple[Path, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.png"
    assert cli.main([str(images[0]), str(images[1]), "-o", str(out), "--size", "64", "--steps", "1"]) == 0
    err = capsys.readouterr().err
    assert "plan: 1 @ 64 px\n" in err and "0 @" not in err and "painting in 1 pass (scales=1)" in err
    assert stamp.read(out.read_bytes()).settings.scales == 1


def test_a_picture_too_large_for_the_memory_is_refused_before_it_starts(
        images: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "machine_bytes", lambda: 2e9)  # a container limited to 2 GB
    monkeypatch.setattr(cli, "stylize", lambda *a, **k: pytest.fail("painting started"))
    out = tmp_path / "out.png"
    assert cli.main([str(images[0]), str(images[1]), "-o", str(out), "--size", "2048", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"^stylize: this picture would need about \d+\.\d GB of memory, more than the 2\.0 GB this "
                     r"machine \(or its container\) has — ask for --size (\d+) or less$", err, re.M), err
    assert not out.exists()


class CountedLosses(Mapping[str, float]):
    """A step's losses that count their reads: in the engine (engine.transfer.Losses) each read of a step's
    losses waits for the device — a host sync the optimiser itself never makes."""

    def __init__(self, total: float, reads: list[float]) -> None:
        self.total, self.reads = total, reads

    def __getitem__(self, name: str) -> float:
        self.reads.append(self.total)
        return {"total": self.total}[name]

    def __iter__(self) -> Iterator[str]:
        return iter(("total",))

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize("animated", [False, True], ids=["still", "animation"])
def test_the_progress_bar_reads_the_loss_only_when_it_redraws_it(
        clip: Path, images: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], animated: bool) -> None:
    """50 steps, 0.1 s apart on the CLI's clock: the step count follows each one, but the loss (a device→host
    copy each time it is read) is read about every half second, and the last step's is shown."""
    now, reads = [0.0], []
    monkeypatch.setattr(cli, "monotonic", lambda: now[0])

    def painted(total: int) -> Iterator[Progress]:
        for step in range(1, total + 1):
            now[0] += 0.1
            yield Progress(step, total, 1, 1, (64, 44), CountedLosses(step + 0.5, reads), now[0])

    def fake_stylize(content: Image.Image, styles: list[Image.Image], settings: Settings, progress: Any,
                     **_: Any) -> Result:
        for report in painted(settings.steps):
            progress(report)
        return Result(content.convert("RGB"), settings, "cpu", now[0], settings.steps)

    def fake_animate(frames: list[Image.Image], durations: list[int], styles: list[Image.Image],
                     settings: Settings, progress: Any, **_: Any) -> Animation:
        total = total_steps(settings, len(frames))
        for report in painted(total):
            progress(AnimationProgress(1, len(frames), report.step, total, report.elapsed, report))
        return Animation(frames, durations, settings, "cpu", now[0], total, [{}] * len(frames))

    monkeypatch.setattr(cli, "stylize", fake_stylize)
    monkeypatch.setattr(cli, "animate", fake_animate)
    steps = ["--steps", "20", "--frame-steps", "15"] if animated else ["--steps", "50"]
    photo, out = (clip, tmp_path / "out.webp") if animated else (images[0], tmp_path / "out.png")
    assert cli.main([str(photo), str(images[1]), "-o", str(out), "--size", "64", *steps]) == 0
    assert 5 <= len(reads) <= 12 and reads[-1] == 50.5  # every ~5th step, and the last
    last = capsys.readouterr().err.splitlines()[-1]
    assert "50/50" in last and "loss 50.5" in last
