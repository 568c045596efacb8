"""`stylize-bot [--config PATH]`: load and check the configuration, log to stdout, run until SIGTERM.

`stylize-bot check [--config PATH]` checks an installation instead (bot.check) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

import aiohttp
import discord

from . import check
from .app import StylizeBot
from .config import ConfigError, load_config, old_scale_weights
from .health import HealthReporter
from .inputs.images import limit_pixels

log = logging.getLogger("bot")

DEFAULT_CONFIG = Path("config.toml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stylize-bot", description="Run the Stylize Discord bot.")
    parser.add_argument("--config", type=Path, default=None,
                        help=f"TOML configuration (default: ./{DEFAULT_CONFIG} if it exists); "
                             "see config.example.toml. The token may come from DISCORD_TOKEN or "
                             "DISCORD_TOKEN_FILE instead.")
    commands = parser.add_subparsers(dest="command", metavar="[check]")
    check.add_arguments(commands.add_parser("check", help="check the configuration, token, device and engine, "
                                                          "paint a tiny test picture, and exit"))
    args = parser.parse_args(argv)
    if args.command == "check":
        return check.run_check(None if args.config is None else str(args.config))
    path = args.config if args.config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    try:
        config = load_config(path, os.environ)
    except ConfigError as error:
        print(f"stylize-bot: {error}", file=sys.stderr)
        return 2
    limit_pixels(config.limits.input_pixels)
    discord.utils.setup_logging(handler=logging.StreamHandler(sys.stdout), level=getattr(logging, config.log_level))
    log.info("starting: prefix %r, device %s, %d worker(s), %s jobs", config.prefix, config.device, config.workers,
             config.jobs.backend)
    for warning in old_scale_weights(config):
        log.warning("%s", warning)
    return asyncio.run(serve(StylizeBot(config, health=HealthReporter()), config.token))


async def serve(bot: StylizeBot, token: str) -> int:
    """Run `bot` until it is closed; SIGTERM/SIGINT close it cleanly (running jobs cancelled, users told)."""
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def stop(sig: signal.Signals) -> None:
        log.info("%s received: shutting down", sig.name)
        stopping.append(asyncio.create_task(bot.close()))

    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop, sig)
    try:
        async with bot:
            await bot.start(token)
    except discord.LoginFailure:
        log.error("Discord refused the token: check DISCORD_TOKEN, DISCORD_TOKEN_FILE or `token` in the configuration")
        return 1
    except discord.PrivilegedIntentsRequired:
        log.error("switch on the Message Content intent for this bot in the Discord Developer Portal")
        return 1
    except (aiohttp.ClientConnectionError, TimeoutError) as error:  # logging in; later drops are retried
        log.error("cannot reach Discord (%s) — check this machine's (or container's) DNS, firewall and proxy: "
                  "the bot needs HTTPS, port 443, to discord.com and gateway.discord.gg", check.one_line(error))
        return 1
    finally:
        await asyncio.gather(*stopping)
        for sig in signals:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
