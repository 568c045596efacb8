"""Shared pytest fixtures.

Discord stand-in fixtures (see tests/discord_standin.py):

* ``fake_discord`` - a started :class:`discord_standin.FakeDiscord` with discord.py pointed at
  it; restored and stopped afterwards. Fails the test if the stand-in itself hit an error.
* ``run_bot`` - ``async with run_bot(bot): ...`` logs a ``commands.Bot`` in against the stand-in,
  waits for READY and closes it cleanly on exit. Create bots with ``guild_ready_timeout=0.05``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import discord_standin  # noqa: E402


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny engine runs on one thread: on a shared 2-core machine OpenMP spinning on busy cores makes
    them up to 20x slower. Modules opt in with pytestmark = pytest.mark.usefixtures(...)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def vgg_loaded() -> None:
    """The engine's model, loaded once per test process before the first test that paints through the bot:
    a cold load took 36 s on the shared 2-core machine under load, longer than a test waits for a picture,
    and it is set-up, not what the test times. Modules opt in like one_torch_thread."""
    from engine.vgg import load_vgg

    load_vgg("cpu")


@pytest.fixture
async def fake_discord():
    async with discord_standin.FakeDiscord() as fake:
        yield fake
    if fake.internal_errors:
        pytest.fail("Discord stand-in errors:\n" + "\n".join(fake.internal_errors))


@pytest.fixture
def run_bot(fake_discord):
    """``run_bot(bot, *, token="fake-token", ready_timeout=5.0)`` async context manager."""
    return discord_standin.run_bot
