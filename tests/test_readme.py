"""README.md and docs/ tell the truth: the front door is short and its commands exist, every link leads
somewhere, the hyperparameter table is generated from the declaration, and every file the commands
create is kept out of git."""

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


def test_the_hyperparameter_table_matches_the_declaration() -> None:
    assert table() in ENGINE_PAGE, \
        "docs/engine.md is out of date: paste the output of `uv run python scripts/params_table.py`"


# --- the front door: short, the ten-minute block's commands exist, what they create stays out of git ----

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))
ENGINE_PAGE = (ROOT / "docs" / "engine.md").read_text(encoding="utf-8")
SERVICES = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))["services"]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
VOLUME = f"{COMPOSE['name']}_bot-data"  # the bot's volume as Compose names it: project name + key
# The pages the front door's index promises, in its order.
PAGES = ["install-docker", "install-uv", "configuration", "commands", "troubleshooting", "privacy", "security",
         "engine", "benchmarks", "scaling", "development"]


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


def test_the_front_door_is_short_and_in_the_order_a_newcomer_needs() -> None:
    assert len(README.splitlines()) <= 220, "README.md is the front door: move the depth to a docs/ page"
    headings = re.findall(r"^## (.+)$", README, re.M)
    assert headings == ["What you need", "Your bot in ten minutes", "First use in Discord",
                        "The five settings people change", "Update and back up", "When something is wrong",
                        "Try the engine, run the tests", "Documentation"]
    assert README.index("docs/gallery/contact_sheet.jpg") < README.index("## What you need")
    needs = section("What you need")
    for fact in ("580", "Turing", "GB free", "512 px", "1024 px", "2026-11-25"):
        assert fact in needs, fact
    first = section("Your bot in ten minutes")
    for step in ("Public Bot", "Developer Mode", "Copy Server ID", "oauth2/authorize?client_id=", ".env",
                 "docker compose up -d", "stylize-bot check"):
        assert step in first, step
    assert "!sync" in section("First use in Discord") and "!stylize help" in section("First use in Discord")
    assert "export DISCORD_TOKEN" not in README and "pip install uv" not in README.replace("pipx install uv", "")
    assert "<this repository>" not in README and "https://github.com/OWNER/stylize.git" in README


def test_no_word_only_the_authors_know() -> None:
    for path in [ROOT / "README.md", *DOCS]:
        text = path.read_text(encoding="utf-8")
        for word in ("issue 1", "issue 2", "the lease", "this project's", "seed notebook", "not been measured yet"):
            assert word not in text, f"{path.name}: {word!r}"


def test_the_index_lists_every_page_and_every_link_leads_somewhere() -> None:
    index = section("Documentation")
    assert re.findall(r"\]\(docs/([\w-]+)\.md\)", index) == PAGES
    assert {p.stem for p in DOCS} == set(PAGES)
    for path in [ROOT / "README.md", *DOCS, ROOT / "CHANGELOG.md"]:
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            where = (path.parent / file).resolve() if file else path
            assert where.exists(), f"{path.name}: link to {target}: no such file"
            if anchor and where.suffix == ".md":
                assert anchor in anchors(where), f"{path.name}: link to {target}: no such heading"


def anchors(path: Path) -> set[str]:
    """GitHub's ids of the headings of a Markdown file."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", text, re.M)}


def test_the_ten_minute_commands_exist() -> None:
    commands = shell_lines(section("Your bot in ten minutes")) + shell_lines(section("Update and back up"))
    compose = [c for c in commands if c.startswith("docker compose ")]
    assert compose, "the block names no docker compose command"
    for command in compose:
        words = [w for w in command.split("docker compose ", 1)[1].split() if not w.startswith("-")]
        assert words[0] in ("up", "down", "logs", "restart", "ps", "run", "build"), command
        named = words[1:2] if words[0] == "run" else words[1:]  # run SERVICE COMMAND…
        assert all(w in SERVICES for w in named), f"{command}: no such service in compose.yaml"
    for command in commands:
        for source, _ in re.findall(r"\bcp (\S+) (\S+)", command):
            assert (ROOT / source).is_file(), f"{command}: {source} is not in the repository"
    profiles = {p for service in SERVICES.values() for p in service.get("profiles", [])}
    named = re.findall(r"COMPOSE_PROFILES=(\w+(?:,\w+)*)", section("Your bot in ten minutes"))
    chooser = re.search(r"`COMPOSE_PROFILES` in `\.env` chooses the stack \(([^)]*)\)", README)
    assert chooser, "the ten-minute block no longer says which stacks COMPOSE_PROFILES chooses"
    named += re.findall(r"`([\w,]+)`", chooser.group(1))
    assert set(named) >= {"gpu", "cpu"} and all(set(n.split(",")) <= profiles for n in named), named


def test_the_check_line_of_each_profile_stays_in_that_profile() -> None:
    """`docker compose run bot …` switches the gpu profile on even with COMPOSE_PROFILES=cpu: each line
    must name a service of its own profile, and only the gpu line may reserve a GPU."""
    lines = {}
    for command in shell_lines(section("Your bot in ten minutes")):
        if " stylize-bot check" in command:
            service = next(w for w in command.split()[3:] if not w.startswith("-"))
            profile = re.search(r"#\s*(\w+)\s*$", next(line for line in README.splitlines()
                                                      if line.startswith(command[:60])))
            assert profile, command
            lines[profile.group(1)] = service
            assert "--config /config/config.toml" in command
    assert set(lines) == {"gpu", "cpu", "celery"}, lines
    for profile, service in lines.items():
        assert profile in SERVICES[service]["profiles"], (profile, service)
        assert ("deploy" in SERVICES[service]) == (profile == "gpu"), service
    backup = next(c for c in shell_lines(section("Update and back up")) if " tar " in c)
    image = next(s["image"] for s in SERVICES.values() if s.get("build"))
    assert f"-v {VOLUME}:/data:ro {image} " in backup and "docker compose" not in backup  # no build on stdout


def test_updating_says_what_keeps_the_data_and_what_deletes_it() -> None:
    update = section("Update and back up")
    assert "CHANGELOG.md" in update and "down -v" in update and "compose.override.yaml" in update
    assert f"`{VOLUME}`" in update and "bot-data" in COMPOSE["volumes"]


def test_the_engine_and_test_commands_exist() -> None:
    commands = shell_lines(section("Try the engine, run the tests"))
    assert [c.split()[:3] for c in commands] == [["uv", "run", "stylize"], ["uv", "run", "pytest"]]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^uv run pytest$", ci, re.M), "the README's test command is no longer what CI runs"
    assert "apt-get" not in ci  # the dev group brings everything the tests need
    for command in shell_lines(README) + [c for p in DOCS for c in shell_lines(p.read_text(encoding="utf-8"))]:
        if command.startswith("uv run "):
            words = re.sub(r"--(group|env-file|with) \S+", "", command).split()[2:]
            program = next(w for w in words if not w.startswith("-"))
            assert program in SCRIPTS or program in ("pytest", "python"), command


def declared_commands() -> tuple[set[str], set[str]]:
    """The prefix and the slash commands that bot/cogs/*.py declare, as typed: ({"!sync", "!stylize help", …},
    {"/stylize", "/stylize paint", "/stylize help", "/stylize-defaults", …})."""
    prefix: set[str] = set()
    slash: set[str] = set()
    for path in sorted((ROOT / "bot" / "cogs").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for kind, name, rest in re.findall(r'@commands\.(command|hybrid_command|hybrid_group)\(name="([\w-]+)"(.*)', text):
            prefix.add(f"!{name}")
            if kind != "command":
                slash.add(f"/{name}")
            slash.update(f"/{name} {fallback}" for fallback in re.findall(r'fallback="(\w+)"', rest))
        for group, name, rest in re.findall(r'@(?!commands\.)(\w+)\.command\(name="([\w-]+)"(.*)', text):
            prefix.add(f"!{group} {name}")
            if f"/{group}" in slash and "with_app_command=False" not in rest:
                slash.add(f"/{group} {name}")
    return prefix, slash


def test_the_bot_commands_the_docs_name_exist() -> None:
    """Every command the front door and docs/commands.md name is declared by a cog, as a prefix or as a slash
    command as written; and every command bot/library_commands.py carries out is declared."""
    prefix, slash = declared_commands()
    assert {"!sync", "!stylize help", "/stylize paint", "/stylize-defaults"} <= prefix | slash
    styles = {p.stem for p in (ROOT / "bot" / "styles").glob("*.jpg")}
    commands_page = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([!/][\w-]+(?: [a-z_]+)?)`", README))
    named |= set(re.findall(r"\*\*`([!/][\w-]+(?: [a-z_]+)?)`\*\*", commands_page))
    named = {n for n in named if n.split(" ")[-1] not in styles}  # `!stylize starry_night` paints a style
    assert {"!stylize last", "/stylize last", "!stylize forget"} <= named, "docs/commands.md lost its entries"
    for command in sorted(named):
        assert command in (slash if command.startswith("/") else prefix), f"{command}: no cog declares it"
    library = (ROOT / "bot" / "library_commands.py").read_text(encoding="utf-8")
    for name in re.findall(r"^async def ([a-z]\w*)\(bot", library, re.M):  # not the private helpers
        assert f"!stylize {name}" in prefix, f"bot/library_commands.py's {name}: no cog declares it"


def created_files() -> set[str]:
    """Every file that the README's (and docs/'s) commands tell users to create in the checkout."""
    text = README + "".join(p.read_text(encoding="utf-8") for p in DOCS)
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
