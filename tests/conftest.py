"""Shared pytest fixtures.

Discord stand-in fixtures (see tests/discord_standin.py):

* ``fake_discord`` - a started :class:`discord_standin.FakeDiscord` with discord.py pointed at
  it; restored and stopped afterwards. Fails the test if the stand-in itself hit an error.
* ``run_bot`` - ``async with run_bot(bot): ...`` logs a ``commands.Bot`` in against the stand-in,
  waits for READY and closes it cleanly on exit. Create bots with ``guild_ready_timeout=0.05``.

Races: a bot test waits for its own answer (``fake_discord.response_to(interaction)``, a reply to its
request), never "the next message". ``pytest --jitter 50 -n 4 tests/test_bot_*.py tests/test_standin.py``
delays the bot's requests at random and shows a test that does not within a few runs.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import discord_standin  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--jitter", type=float, default=0.0, metavar="MS",
                     help="delay each of the bot's Discord requests by 0–MS ms before it is sent and again after "
                          "its answer, at random: the orders of a busy or a fast machine, on any machine")


def pytest_configure(config: pytest.Config) -> None:
    """--jitter: bot tests that wait for "the next" event instead of their own fail within a few runs."""
    most = config.getoption("--jitter") / 1000
    if most > 0:
        import random

        import discord.http

        request = discord.http.HTTPClient.request

        async def jittery(self: discord.http.HTTPClient, *args: object, **kwargs: object) -> object:
            await asyncio.sleep(random.uniform(0, most))
            answer = await request(self, *args, **kwargs)
            await asyncio.sleep(random.uniform(0, most))
            return answer

        discord.http.HTTPClient.request = jittery  # type: ignore[method-assign]


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
