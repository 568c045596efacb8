"""The bot's health signal: a small JSON file the running bot keeps fresh, and a probe that reads it.

The bot (one call, in its setup hook) starts a `HealthReporter`, which rewrites the file every
`interval` seconds with ``{"time": <unix time>, "gateway": bool, "worker": bool}``. A container
health check runs ``python -m bot.health``: healthy (exit 0) only if the file is fresh and both
flags are true. The file going stale is itself a signal — a blocked event loop writes nothing.

This module imports neither discord.py nor torch, so the probe costs milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HEALTH_ENV = "STYLIZE_HEALTH_FILE"
DEFAULT_PATH = Path("/tmp/stylize-health.json")
INTERVAL = 15.0
MAX_AGE = 60.0
CLOCK_SLACK = 5.0  # a timestamp this far in the future is not trusted either


def health_path(env: dict[str, str] | None = None) -> Path:
    """The file named by $STYLIZE_HEALTH_FILE, else /tmp/stylize-health.json."""
    value = (os.environ if env is None else env).get(HEALTH_ENV, "").strip()
    return Path(value) if value else DEFAULT_PATH


def gateway_connected(client: Any) -> bool:
    """True when a discord.py Client is logged in, not closed and has a measured heartbeat latency.

    `latency` is NaN without a websocket and infinite until the first heartbeat is acknowledged,
    so a bot stuck reconnecting reads as not connected.
    """
    try:
        return bool(client.is_ready()) and not client.is_closed() and math.isfinite(client.latency)
    except Exception:  # noqa: BLE001 - a probe must answer, not raise
        return False


def write_health(path: Path, *, gateway: bool, worker: bool, now: float | None = None) -> None:
    """Replace `path` atomically (write a sibling temp file, then rename), so a probe never reads half a file."""
    record = {"time": time.time() if now is None else now, "gateway": bool(gateway), "worker": bool(worker)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class HealthReporter:
    """Keeps the health file fresh from an asyncio task.

    ``HealthReporter().start(is_connected=..., worker_alive=...)`` returns the task; cancelling it
    (or the event loop ending) removes the file, so a restarted bot is unhealthy until it has
    connected again rather than inheriting its predecessor's last good report.
    """

    def __init__(self, path: Path | str | None = None, *, interval: float = INTERVAL) -> None:
        self.path = Path(path) if path is not None else health_path()
        self.interval = interval
        self.task: asyncio.Task[None] | None = None

    def start(self, *, is_connected: Callable[[], bool], worker_alive: Callable[[], bool]) -> asyncio.Task[None]:
        """Begin reporting on the running loop; calling it again returns the same task."""
        if self.task is None or self.task.done():
            self._remove()  # a report left by an earlier run must not count for this one
            self.task = asyncio.get_running_loop().create_task(
                self._run(is_connected, worker_alive), name="stylize-health")
        return self.task

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def report(self, *, is_connected: Callable[[], bool], worker_alive: Callable[[], bool]) -> dict[str, bool]:
        """Write one report now; a check that raises counts as False (and is logged)."""
        flags = {"gateway": _ask(is_connected, "gateway"), "worker": _ask(worker_alive, "worker")}
        try:
            write_health(self.path, **flags)
        except OSError as error:
            log.warning("cannot write the health file %s: %s", self.path, error)
        return flags

    async def _run(self, is_connected: Callable[[], bool], worker_alive: Callable[[], bool]) -> None:
        last: dict[str, bool] | None = None
        try:
            while True:
                flags = self.report(is_connected=is_connected, worker_alive=worker_alive)
                if flags != last and last is not None:
                    log.log(logging.INFO if all(flags.values()) else logging.WARNING,
                            "health: gateway %s, worker %s", _word(flags["gateway"]), _word(flags["worker"]))
                last = flags
                await asyncio.sleep(self.interval)
        finally:
            self._remove()

    def _remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _ask(check: Callable[[], bool], what: str) -> bool:
    try:
        return bool(check())
    except Exception:  # noqa: BLE001 - report unhealthy instead of killing the reporter
        log.exception("health check %r raised", what)
        return False


def _word(ok: bool) -> str:
    return "ok" if ok else "DOWN"


_FLAGS = (("gateway", "not connected to the Discord gateway"), ("worker", "the job worker is not running"))


def diagnose(path: Path, *, max_age: float = MAX_AGE, now: float | None = None) -> str | None:
    """None when healthy, else one line saying what is wrong."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no health file at {path} (the bot is starting, or not running)"
    except (OSError, ValueError) as error:
        return f"unreadable health file {path}: {error}"
    if not isinstance(record, dict):
        return f"health file {path} does not hold a JSON object"
    stamp = record.get("time")
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
        return f"health file {path} has no valid time"
    age = (time.time() if now is None else now) - stamp
    if age > max_age:
        return f"health report is {age:.0f} s old (limit {max_age:g} s): the bot's event loop is stuck or it stopped"
    if age < -CLOCK_SLACK:
        return f"health report is dated {-age:.0f} s in the future"
    problems = [what for name, what in _FLAGS if record.get(name) is not True]
    return "; ".join(problems) or None


def probe(path: Path | str | None = None, max_age: float = MAX_AGE, *, now: float | None = None) -> int:
    """Exit code for a health check: 0 if the report is fresh and both flags are true, else 1 (reason printed)."""
    where = Path(path) if path is not None else health_path()
    problem = diagnose(where, max_age=max_age, now=now)
    if problem is None:
        print("healthy")
        return 0
    print(f"unhealthy: {problem}")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.health",
                                     description="Exit 0 if the running bot reports itself healthy, else 1.")
    parser.add_argument("--file", type=Path, default=None,
                        help=f"health file (default: ${HEALTH_ENV}, else {DEFAULT_PATH})")
    parser.add_argument("--max-age", type=float, default=MAX_AGE,
                        help=f"seconds after which a report is stale (default {MAX_AGE:g})")
    args = parser.parse_args(argv)
    return probe(args.file, args.max_age)


if __name__ == "__main__":
    sys.exit(main())
