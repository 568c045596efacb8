"""bot.check (`stylize-bot check`): says what it found, lists every problem, exits 0/1, never shows the token."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

import engine
from bot import check
from bot.check import run_check
from bot.config import load_config
from engine import EngineError, Result, Settings
from engine.memory import predict_peak_bytes

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
TOKEN = "MTIzNDU2Nzg5.GabcDE.secret-part-of-the-token"


def run(config: str | None, env: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check(config, env={} if env is None else env, out=out)
    return code, out.getvalue()


def auto() -> str:
    """The device `auto` resolves to on this machine, as check names it (so the tests hold on a GPU host:
    cuda:0 there). A function, not a constant: CUDA is not initialised when the module is collected."""
    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()}"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


class FakeEngine:
    """Stands in for engine.stylize: records the call, returns a plausible result (or raises)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def __call__(self, content: Image.Image, styles: list[Image.Image], settings: Settings, *,
                 device: Any = None, **_: Any) -> Result:
        self.calls.append({"content": content, "styles": styles, "settings": settings, "device": device})
        if self.error is not None:
            raise self.error
        return Result(image=Image.new("RGB", (64, 43)), settings=settings, device=str(device), elapsed=0.01,
                      steps=settings.steps, losses={"content": 1.0, "style": 2.0, "tv": 3.0, "total": 6.0})


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(engine, "stylize", fake)
    return fake


@pytest.fixture(autouse=True)
def _health_file_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray ./config.toml from the repository's working directory


def test_a_ready_installation_passes_with_a_real_tiny_run(tmp_path: Path) -> None:
    config = write(tmp_path, 'device = "cpu"\n')
    code, out = run(config, {"DISCORD_TOKEN": TOKEN, "STYLIZE_HEALTH_FILE": str(tmp_path / "h.json")})
    assert code == 0, out
    assert out.rstrip().endswith("OK: ready to run the bot")
    for label in ("config", "token", "python", "torch", "device", "weights", "test run"):
        assert f"\n  {label} " in out
    assert f"{config}: ok (prefix '!', device cpu, 1 worker" in out
    assert "set (from $DISCORD_TOKEN; not shown)" in out
    assert torch.__version__ in out and "cpu — " in out
    assert "64×43 px, 3 steps" in out and "chelsea.png × starry_night.jpg" in out
    assert "secret" not in out and "MTIz" not in out


def test_the_test_run_uses_the_servers_defaults_but_stays_tiny(tmp_path: Path, fake_engine: FakeEngine) -> None:
    config = write(tmp_path, '[defaults]\nsize = 768\nsteps = 500\npooling = "avg"\nstyle_blend = "2,1"\n'
                             'precision = "fp32"\npreview = true\n')
    code, out = run(config, {"DISCORD_TOKEN": TOKEN})
    assert code == 0, out
    (call,) = fake_engine.calls
    settings = call["settings"]
    assert (settings.size, settings.steps, settings.scales, settings.seed) == (64, 3, 1, 0)
    assert (settings.pooling, settings.precision) == ("avg", "fp32")
    assert settings.style_blend is None and settings.preview is False
    assert len(call["styles"]) == 1 and str(call["device"]) == auto()


def test_missing_token_is_a_problem_and_the_rest_is_still_checked(tmp_path: Path, fake_engine: FakeEngine) -> None:
    code, out = run(write(tmp_path, 'prefix = "?"\n'))
    assert code == 1
    assert re.search(r"\n  token +NOT SET\n", out) and "prefix '?'" in out
    assert "1 problem:\n  - " in out and "no bot token — set the DISCORD_TOKEN environment variable" in out
    assert len(fake_engine.calls) == 1  # the engine was still tried


def test_token_from_the_file_is_reported_but_never_shown(tmp_path: Path, fake_engine: FakeEngine) -> None:
    code, out = run(write(tmp_path, f'token = "{TOKEN}"\n'))
    assert code == 0, out
    assert "set (from the configuration file; not shown)" in out
    assert TOKEN not in out and "secret" not in out


@pytest.mark.parametrize("token", ["paste-the-token-here", "0123456789abcdef0123456789abcdef",
                                   "MTIzNDU2Nzg5.GabcDE", "bm90LWFuLWlk.GabcDE.part", "MTIz NDU2.GabcDE.part",
                                   "MTIzNDU2Nzg5..part"])
def test_a_placeholder_or_malformed_token_is_a_problem(token: str, fake_engine: FakeEngine) -> None:
    code, out = run(None, {"DISCORD_TOKEN": token})
    assert code == 1
    assert re.search(r"\n  token +set \(from \$DISCORD_TOKEN; not shown\): NOT A BOT TOKEN\n", out)
    assert "1 problem:\n  - the token is not a bot token (three base64url parts" in out
    assert token not in out and token.split(".")[0] not in out


def test_a_well_formed_token_names_the_bot_it_belongs_to(fake_engine: FakeEngine) -> None:
    code, out = run(None, {"DISCORD_TOKEN": TOKEN})
    assert code == 0 and "for the bot with id 123456789" in out and "MTIz" not in out


def test_open_access_is_warned_about_and_a_guild_list_is_not(tmp_path: Path, fake_engine: FakeEngine) -> None:
    code, out = run(None, {"DISCORD_TOKEN": TOKEN})
    assert code == 0
    assert "note: [access] guilds is empty: the bot answers in every server that adds it" in out
    assert "Copy Server ID" in out and "Public Bot off" in out
    code, out = run(write(tmp_path, "[access]\nguilds = [123456789012345678]\n"), {"DISCORD_TOKEN": TOKEN})
    assert code == 0 and "guilds is empty" not in out


def test_a_broken_configuration_is_reported_and_checking_goes_on(tmp_path: Path, fake_engine: FakeEngine) -> None:
    code, out = run(write(tmp_path, "max_step = 50\n"), {"DISCORD_TOKEN": TOKEN})
    assert code == 1
    assert "NOT USABLE" in out and "unknown key 'max_step'" in out
    assert "unknown (the configuration" not in out and "set (from $DISCORD_TOKEN; not shown)" in out
    assert len(fake_engine.calls) == 1 and str(fake_engine.calls[0]["device"]) == auto()  # the default, "auto"


def test_a_missing_configuration_file_is_a_problem(tmp_path: Path, fake_engine: FakeEngine) -> None:
    code, out = run(str(tmp_path / "nope.toml"), {"DISCORD_TOKEN": TOKEN})
    assert code == 1 and "no such file (copy config.example.toml to start)" in out


def test_without_a_path_it_reads_config_toml_like_the_bot(tmp_path: Path, fake_engine: FakeEngine) -> None:
    code, out = run(None, {"DISCORD_TOKEN": TOKEN})
    assert code == 0 and "no ./config.toml, built-in defaults: ok" in out
    (tmp_path / "config.toml").write_text('prefix = "$"\n')
    code, out = run(None, {"DISCORD_TOKEN": TOKEN})
    assert code == 0 and "config.toml: ok (prefix '$'" in out


def test_the_example_configuration_passes(fake_engine: FakeEngine) -> None:
    code, out = run(str(EXAMPLE), {"DISCORD_TOKEN": TOKEN})
    assert code == 0, out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_asked_for_but_not_visible_explains_the_gpu_setup(tmp_path: Path, fake_engine: FakeEngine) -> None:
    code, out = run(write(tmp_path, 'device = "cuda"\n'), {"DISCORD_TOKEN": TOKEN})
    assert code == 1
    assert re.search(r"\n  device +cuda: NOT USABLE\n", out)
    assert "PyTorch sees no CUDA GPU" in out and "NVIDIA Container Toolkit" in out and "--gpus all" in out
    assert fake_engine.calls == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_auto_on_a_cpu_machine_notes_the_cpu_fallback(fake_engine: FakeEngine) -> None:
    code, out = run(None, {"DISCORD_TOKEN": TOKEN})
    assert code == 0
    assert "note: no GPU is visible, so pictures are painted on the CPU" in out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_device_is_described() -> None:
    code, out = run(None, {"DISCORD_TOKEN": TOKEN})
    assert code == 0, out
    assert "cuda:0 — " in out and "GiB memory" in out and "compute capability" in out


def test_an_engine_failure_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "stylize", FakeEngine(EngineError("the CPU ran out of memory at size=64")))
    code, out = run(None, {"DISCORD_TOKEN": TOKEN})
    assert code == 1
    assert re.search(rf"\n  test run +64 px, 3 steps on {auto()}: FAILED\n", out)
    assert f"could not be painted on {auto()}: the CPU ran out of memory at size=64" in out


def test_without_the_examples_it_paints_generated_pictures(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          fake_engine: FakeEngine) -> None:
    monkeypatch.setattr(check, "_example_folders", lambda env: [tmp_path / "missing"])
    code, out = run(None, {"DISCORD_TOKEN": TOKEN})
    assert code == 0 and "generated pictures (examples/ not found)" in out
    assert fake_engine.calls[0]["content"].size == (96, 96)


def test_examples_folder_can_be_named(tmp_path: Path, fake_engine: FakeEngine) -> None:
    folder = tmp_path / "ex"
    folder.mkdir()
    Image.new("RGB", (30, 20), "red").save(folder / "chelsea.png")
    Image.new("RGB", (20, 20), "blue").save(folder / "starry_night.jpg")
    code, _ = run(None, {"DISCORD_TOKEN": TOKEN, "STYLIZE_EXAMPLES": str(folder)})
    assert code == 0 and fake_engine.calls[0]["content"].size == (30, 20)


def test_an_unwritable_health_file_location_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         fake_engine: FakeEngine) -> None:
    target = tmp_path / "ro" / "deeper" / "h.json"  # missing folders: the nearest existing one is asked
    (tmp_path / "ro").mkdir()
    asked: list[Path] = []
    monkeypatch.setattr(check.os, "access", lambda path, mode: asked.append(Path(path)) or False)
    code, out = run(None, {"DISCORD_TOKEN": TOKEN, "STYLIZE_HEALTH_FILE": str(target)})
    assert code == 1 and asked == [tmp_path / "ro"]
    assert f"the health file {target} cannot be written" in out and "STYLIZE_HEALTH_FILE" in out


def test_main_takes_the_config_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_engine: FakeEngine,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    assert check.main(["--config", write(tmp_path, 'prefix = "%"\n')]) == 0
    assert "prefix '%'" in capsys.readouterr().out


def test_stylize_bot_check_takes_the_config_before_or_after_the_subcommand(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_engine: FakeEngine,
        capsys: pytest.CaptureFixture[str]) -> None:
    from bot.__main__ import main as stylize_bot

    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    (tmp_path / "elsewhere").mkdir()
    config = write(tmp_path / "elsewhere", 'prefix = "%"\n')
    for argv in (["check", "--config", config], ["--config", config, "check"]):
        assert stylize_bot(argv) == 0
        assert "prefix '%'" in capsys.readouterr().out, argv
    assert stylize_bot(["check"]) == 0  # no ./config.toml here: the defaults
    assert "no ./config.toml, built-in defaults: ok" in capsys.readouterr().out


def test_storage_is_reported(tmp_path: Path, fake_engine: FakeEngine) -> None:
    env = {"DISCORD_TOKEN": TOKEN, "STYLIZE_HEALTH_FILE": str(tmp_path / "h.json")}
    code, out = run(write(tmp_path, '[storage]\ndata_dir = "kept"\n'), env)
    assert code == 0 and re.search(r"\n  storage +kept: writable\n", out) and (tmp_path / "kept" / "stylize.db").is_file()
    (tmp_path / "blocked").write_text("a file where the folder should be")
    code, out = run(write(tmp_path, 'device = "cpu"\n'), {**env, "STYLIZE_DATA_DIR": str(tmp_path / "blocked" / "d")})
    assert code == 1 and re.search(r"\n  storage +\S+/d: unavailable \(cannot write there", out)
    assert "server styles, per-server defaults and kept job inputs cannot be changed" in out


def test_the_largest_size_that_fits_the_memory_is_printed(tmp_path: Path, fake_engine: FakeEngine) -> None:
    budget = predict_peak_bytes(Settings.parse({"size": 700, "precision": "fp32"}), (1, 1), 1, "cpu")
    assert budget is not None
    config = write(tmp_path, f'device = "cpu"\n[limits]\nmemory_gb = {budget / 1e9}\n[defaults]\nprecision = "fp32"\n')
    code, out = run(config, {"DISCORD_TOKEN": TOKEN})
    assert code == 0, out
    assert "\n  memory " in out
    assert (f"{budget / 1e9:.1f} GB per job ([limits] memory_gb): the largest size that fits is 700 px "
            "(the defaults, a square photo, one style)") in out
    code, out = run(write(tmp_path, f'device = "cpu"\n[limits]\nmemory_gb = {budget / 1e9}\n[defaults]\n'
                                    'precision = "fp32"\nsize = 1024\n'), {"DISCORD_TOKEN": TOKEN})
    assert code == 1 and "a job at the default size=1024 would not fit" in out


def test_weights_on_the_old_scale_get_a_note_not_a_problem(tmp_path: Path, fake_engine: FakeEngine) -> None:
    code, out = run(write(tmp_path, "[defaults]\nstyle_weight = 1000\n"), {"DISCORD_TOKEN": TOKEN})
    assert code == 0, out
    assert "note: [defaults] style_weight = 1000 looks like the scale before version 1.0.0" in out
    assert "divide it by 10" in out and "CHANGELOG.md" in out


def test_every_config_mistake_is_its_own_problem(tmp_path: Path, fake_engine: FakeEngine) -> None:
    config = write(tmp_path, 'prefx = "?"\nprogress_interval = 0.5\n')
    code, out = run(config, {"DISCORD_TOKEN": TOKEN})
    assert code == 1
    assert f"2 problems:\n  - {config}: unknown key 'prefx' — did you mean prefix?\n" \
           f"  - {config}: progress_interval must be at least 2" in out


def test_the_largest_size_that_fits_the_gpu_is_printed(tmp_path: Path) -> None:
    """On a CUDA device the GPU budget ([limits] gpu_memory_gb) and the CUDA model apply, not the CPU's."""
    budget = predict_peak_bytes(Settings.parse({"size": 1500}), (1, 1), 1, "cuda")
    assert budget is not None
    config = load_config(Path(write(tmp_path, f"[limits]\nmemory_gb = 0.5\ngpu_memory_gb = {budget / 1e9}\n")),
                         {"DISCORD_TOKEN": TOKEN})
    report = check.Report()
    check._check_memory(report, torch.device("cuda"), config)
    assert report.lines == [("memory", f"{budget / 1e9:.1f} GB per job on the GPU ([limits] gpu_memory_gb): the "
                                       "largest size that fits is 1500 px (the defaults, a square photo, one style)")]
    assert not report.problems
    assert config.limits.job_memory(1, "cpu") == 0.5e9
