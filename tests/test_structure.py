"""The house's direction (README, developers' brief): cogs → painting → jobs / inputs / storage → engine, and
the engine knows nothing of Discord. Read from the code's own imports — type-only ones included, since a
circle of types is still a circle to whoever reads the code."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from bot.app import StylizeBot
from bot.config import parse_config
from bot.painting.host import Host

ROOT = Path(__file__).resolve().parent.parent


def _imports() -> dict[str, set[str]]:
    """Each module of bot/ and engine/ (dotted name) → the modules of the project it imports."""
    found: dict[str, set[str]] = {}
    for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("engine/**/*.py")]:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        package = parts[:-1]
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names = found.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return {name: {i for i in imported if i.split(".")[0] in ("bot", "engine")} for name, imported in found.items()}


def _under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


RULES = [  # (who, may not import, why)
    (("engine",), ("bot",), "the engine is a plain PyTorch library: no Discord in it"),
    (("bot.painting",), ("bot.app", "bot.cogs"), "the painting service sits below the bot and its cogs"),
    (("bot.jobs", "bot.inputs", "bot.storage"), ("bot.painting", "bot.cogs", "bot.app"),
     "the queue, untrusted input and the store sit below the painting service"),
]


@pytest.mark.parametrize("who, banned, why", RULES, ids=[rule[0][0] for rule in RULES])
def test_imports_run_downward(who: tuple[str, ...], banned: tuple[str, ...], why: str) -> None:
    wrong = sorted(f"{module} imports {target}" for module, targets in _imports().items() if _under(module, *who)
                   for target in targets if _under(target, *banned))
    assert not wrong, f"{why}: {wrong}"


def test_no_cog_imports_another() -> None:
    """One cog per feature; they meet only in the painting service and the bot."""
    wrong = sorted(f"{module} imports {target}" for module, targets in _imports().items()
                   if module.startswith("bot.cogs.") for target in targets
                   if target.startswith("bot.cogs.") and not target.startswith(module))
    assert not wrong


def test_the_bot_is_what_the_painting_service_takes_as_its_host(tmp_path: Path) -> None:
    """bot.painting names what it uses of the bot (painting.host.Host) instead of importing the bot's class:
    the one real host must have all of it."""
    async def make() -> StylizeBot:
        bot = StylizeBot(parse_config({"token": "fake-token", "device": "cpu",
                                       "storage": {"data_dir": str(tmp_path)}}))
        await bot.backend.close()
        return bot

    bot = asyncio.run(make())
    members = {*Host.__annotations__, *(name for name in vars(Host) if not name.startswith("_"))}
    missing = sorted(name for name in members if not hasattr(bot, name))
    assert not missing and len(members) >= 12
