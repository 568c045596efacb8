"""README.md tells the truth: the hyperparameter table is generated from the declaration, the first screen's
commands exist, and every file its commands create is kept out of git."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from params_table import table  # noqa: E402


def test_readme_hyperparameter_table_matches_the_declaration() -> None:
    assert table() in (ROOT / "README.md").read_text(encoding="utf-8"), \
        "README.md is out of date: paste the output of `uv run python scripts/params_table.py`"


# --- the first screen: the ten-minute block's commands exist, and what they create stays out of git ----

README = (ROOT / "README.md").read_text(encoding="utf-8")
SERVICES = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))["services"]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]


def section(title: str, text: str = README) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def shell_lines(text: str) -> list[str]:
    """The commands of every ```sh block in `text`, comments and continuation lines joined."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def test_the_first_screen_is_the_bot_then_the_engine_then_the_gallery() -> None:
    headings = re.findall(r"^## (.+)$", README, re.M)
    assert headings[:3] == ["Your bot in ten minutes", "Try the engine, run the tests", "Gallery"]
    first = section("Your bot in ten minutes")
    for step in ("Public Bot", "Developer Mode", "Copy Server ID", "oauth2/authorize?client_id=", ".env",
                 "docker compose up -d", "!sync", "!stylize help"):
        assert step in first, step
    assert "export DISCORD_TOKEN" not in README and "pip install uv" not in README.replace("pipx install uv", "")
    assert "<this repository>" not in README and "https://github.com/OWNER/stylize.git" in README


def test_the_ten_minute_commands_exist() -> None:
    commands = shell_lines(section("Your bot in ten minutes"))
    assert commands, "no ```sh block in the ten-minute section"
    compose = [c for c in commands if c.startswith("docker compose ")]
    assert compose, "the block names no docker compose command"
    for command in compose:
        words = [w for w in command.split()[2:] if not w.startswith("-")]
        assert words[0] in ("up", "down", "logs", "restart", "ps", "run", "build"), command
        assert all(w in SERVICES for w in words[1:]), f"{command}: no such service in compose.yaml"
    for command in commands:
        for source, _ in re.findall(r"\bcp (\S+) (\S+)", command):
            assert (ROOT / source).is_file(), f"{command}: {source} is not in the repository"
    profiles = {p for service in SERVICES.values() for p in service.get("profiles", [])}
    named = re.findall(r"COMPOSE_PROFILES=(\w+(?:,\w+)*)", section("Your bot in ten minutes"))
    chooser = re.search(r"`COMPOSE_PROFILES` in `\.env` chooses the stack \(([^)]*)\)", README)
    assert chooser, "the ten-minute block no longer says which stacks COMPOSE_PROFILES chooses"
    named += re.findall(r"`([\w,]+)`", chooser.group(1))
    assert set(named) >= {"gpu", "cpu"} and all(set(n.split(",")) <= profiles for n in named), named


def test_the_engine_and_test_commands_exist() -> None:
    commands = shell_lines(section("Try the engine, run the tests"))
    assert [c.split()[:3] for c in commands] == [["uv", "run", "stylize"], ["uv", "run", "pytest"]]
    for command in shell_lines(README):
        if command.startswith("uv run "):
            words = re.sub(r"--(group|env-file|with) \S+", "", command).split()[2:]
            program = next(w for w in words if not w.startswith("-"))
            assert program in SCRIPTS or program in ("pytest", "python"), command


def test_the_bot_commands_the_block_names_exist() -> None:
    admin = (ROOT / "bot" / "cogs" / "admin.py").read_text(encoding="utf-8")
    cog = (ROOT / "bot" / "cogs" / "stylize.py").read_text(encoding="utf-8")
    assert '@commands.command(name="sync"' in admin
    assert '@commands.hybrid_group(name="stylize"' in cog and '@stylize.command(name="help"' in cog


def created_files() -> set[str]:
    """Every file that the README's (and docs/'s) commands tell users to create in the checkout."""
    text = README + "".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    files: set[str] = set()
    for command in shell_lines(text):
        files.update(destination for _, destination in re.findall(r"\bcp (\S+) (\S+)", command))
        files.update(re.findall(r"(?:\s-o|>)\s*([\w./-]+\.\w+)", command))
        for output in re.findall(r"\s-o\s+([\w-]+)\.png\b.*--save-every", command):
            files.add(f"{output}_step0050.png")
    files.update(re.findall(r"in a `([\w.-]+)` next to `compose\.yaml`", text))
    return {f for f in files if not f.startswith(("/", "$"))}


def ignored_of(paths: set[str] | list[str]) -> set[str]:
    """The paths that .gitignore keeps out of git (as `git check-ignore` says)."""
    return set(subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", "--stdin"], text=True,
                              input="\n".join(sorted(paths)), capture_output=True).stdout.split())


def test_gitignore_covers_every_file_the_readme_tells_users_to_create() -> None:
    files = created_files()
    assert {".env", "config.toml", "out.png", "scream.png", "mix.png", "cat.png", "cat_step0050.png",
            "compose.override.yaml"} <= files, files
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a checkout")
    assert sorted(files - ignored_of(files)) == []
    assert "data/x.json" in ignored_of(["data/x.json"])  # the bot's files ([storage] data_dir, default ./data)
    assert not ignored_of(["config.example.toml", ".env.example", "examples/chelsea.png", "tests/data/CREDITS.md",
                           "docs/gallery/contact_sheet.jpg"])
