"""bot.health: the report the bot keeps fresh and the probe a container health check runs."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot import health
from bot.health import HealthReporter, diagnose, gateway_connected, probe, write_health


def test_fresh_report_with_both_flags_is_healthy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "h.json"
    write_health(path, gateway=True, worker=True, now=1000.0)
    assert json.loads(path.read_text()) == {"time": 1000.0, "gateway": True, "worker": True}
    assert probe(path, max_age=60, now=1059.0) == 0
    assert capsys.readouterr().out.strip() == "healthy"


@pytest.mark.parametrize(("record", "now", "says"), [
    ({"time": 1000.0, "gateway": False, "worker": True}, 1001.0, "not connected to the Discord gateway"),
    ({"time": 1000.0, "gateway": True, "worker": False}, 1001.0, "job worker is not running"),
    ({"time": 1000.0, "gateway": True}, 1001.0, "job worker is not running"),
    ({"time": 1000.0, "gateway": "yes", "worker": 1}, 1001.0, "not connected"),
    ({"time": 1000.0, "gateway": True, "worker": True}, 1061.0, "61 s old"),
    ({"time": 1000.0, "gateway": True, "worker": True}, 900.0, "in the future"),
    ({"time": "noon", "gateway": True, "worker": True}, 1001.0, "no valid time"),
    ({"time": True, "gateway": True, "worker": True}, 1001.0, "no valid time"),
    ({"gateway": True, "worker": True}, 1001.0, "no valid time"),
    ([1, 2], 1001.0, "JSON object"),
])
def test_unhealthy_reports_say_why(tmp_path: Path, record: object, now: float, says: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "h.json"
    path.write_text(json.dumps(record))
    assert probe(path, max_age=60, now=now) == 1
    out = capsys.readouterr().out
    assert out.startswith("unhealthy: ") and says in out


def test_both_flags_down_are_both_named(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    write_health(path, gateway=False, worker=False, now=5.0)
    problem = diagnose(path, now=6.0)
    assert problem is not None and "gateway" in problem and "worker" in problem


def test_missing_or_garbled_file_is_unhealthy(tmp_path: Path) -> None:
    assert "no health file" in (diagnose(tmp_path / "absent.json") or "")
    garbled = tmp_path / "g.json"
    garbled.write_text('{"time": 1')
    assert "unreadable" in (diagnose(garbled) or "")


def test_path_comes_from_the_environment() -> None:
    assert health.health_path({"STYLIZE_HEALTH_FILE": "/run/x.json"}) == Path("/run/x.json")
    assert health.health_path({"STYLIZE_HEALTH_FILE": " "}) == Path("/tmp/stylize-health.json")
    assert health.health_path({}) == Path("/tmp/stylize-health.json")


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "h.json"
    for n in range(3):
        write_health(path, gateway=True, worker=n % 2 == 0)
    assert [p.name for p in path.parent.iterdir()] == ["h.json"]


@pytest.mark.parametrize(("ready", "closed", "latency", "ok"), [
    (True, False, 0.042, True),
    (False, False, 0.042, False),  # still logging in
    (True, True, 0.042, False),  # closed
    (True, False, math.inf, False),  # no heartbeat acknowledged yet
    (True, False, math.nan, False),  # no websocket
])
def test_gateway_connected(ready: bool, closed: bool, latency: float, ok: bool) -> None:
    client = SimpleNamespace(is_ready=lambda: ready, is_closed=lambda: closed, latency=latency)
    assert gateway_connected(client) is ok


def test_gateway_connected_is_false_when_the_client_raises() -> None:
    def boom() -> bool:
        raise RuntimeError("no")
    assert gateway_connected(SimpleNamespace(is_ready=boom, is_closed=lambda: False, latency=0.1)) is False


async def test_reporter_keeps_the_file_fresh_and_removes_it_when_stopped(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"time": time.time(), "gateway": True, "worker": True}))  # a previous run's
    state = {"gateway": False, "worker": True}
    reporter = HealthReporter(path, interval=0.01)
    task = reporter.start(is_connected=lambda: state["gateway"], worker_alive=lambda: state["worker"])
    assert reporter.start(is_connected=lambda: True, worker_alive=lambda: True) is task  # idempotent
    await asyncio.sleep(0.05)
    assert diagnose(path) == "not connected to the Discord gateway"
    state["gateway"] = True
    await asyncio.sleep(0.05)
    assert diagnose(path) is None
    await reporter.stop()
    assert task.done() and not path.exists()


async def test_a_raising_check_reports_unhealthy_and_the_reporter_lives_on(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    calls = []

    def worker() -> bool:
        calls.append(1)
        raise RuntimeError("backend gone")

    reporter = HealthReporter(path, interval=0.01)
    reporter.start(is_connected=lambda: True, worker_alive=worker)
    await asyncio.sleep(0.05)
    assert len(calls) > 1
    assert diagnose(path) == "the job worker is not running"
    await reporter.stop()


async def test_unwritable_path_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    reporter = HealthReporter(blocker / "h.json", interval=0.01)  # parent is a file: cannot write
    assert reporter.report(is_connected=lambda: True, worker_alive=lambda: True) == {"gateway": True, "worker": True}
    assert "cannot write the health file" in caplog.text


def test_module_entry_point_is_the_probe(tmp_path: Path) -> None:
    """`python -m bot.health` is what the Dockerfile's HEALTHCHECK runs; it must not import discord or torch."""
    path = tmp_path / "h.json"
    write_health(path, gateway=True, worker=True)
    code = ("import sys, runpy; sys.argv = ['x', '--file', sys.argv[1]]\n"
            "try: runpy.run_module('bot.health', run_name='__main__')\n"
            "except SystemExit as e: code = e.code\n"
            "print('heavy' if {'torch', 'discord'} & set(sys.modules) else 'light'); sys.exit(code)")
    ok = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.split() == ["healthy", "light"]
    stale = subprocess.run([sys.executable, "-m", "bot.health", "--file", str(path), "--max-age", "-1"],
                           capture_output=True, text=True, timeout=60)
    assert stale.returncode == 1 and "old" in stale.stdout


async def test_gateway_connected_follows_a_real_discord_client(fake_discord: object, tmp_path: Path) -> None:
    """Against the loopback Discord stand-in: unhealthy before login, healthy once READY, unhealthy after close."""
    import discord
    from discord_standin import run_bot

    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    path = tmp_path / "h.json"
    reporter = HealthReporter(path, interval=0.01)
    reporter.start(is_connected=lambda: gateway_connected(client), worker_alive=lambda: True)
    await asyncio.sleep(0.03)
    assert diagnose(path) == "not connected to the Discord gateway"
    async with run_bot(client):
        for _ in range(200):  # the first heartbeat is sent on HELLO; wait for its acknowledgement
            if gateway_connected(client):
                break
            await asyncio.sleep(0.01)
        assert gateway_connected(client)
        await asyncio.sleep(0.03)
        assert diagnose(path) is None
    assert not gateway_connected(client)
    await asyncio.sleep(0.03)
    assert diagnose(path) == "not connected to the Discord gateway"
    await reporter.stop()
